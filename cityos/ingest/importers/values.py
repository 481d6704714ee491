"""Cell values of real Japanese open-data files turned into typed NGSI-LD values.

Published files write numbers with thousands separators and full-width digits, dates as
``2026/4/1``, ``2026年4月1日`` or in the Japanese era (``令和8年4月1日``), and times as ``9:00`` or
``9時30分``.  Everything is normalised with NFKC first (full-width → ASCII) so one set of rules
covers them.  Times and date-times without an offset are Japan Standard Time, written ``+09:00``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

JST = "+09:00"
KINDS = ("text", "number", "integer", "boolean", "date", "time", "datetime", "url", "auto")


class Rejected(Exception):
    """A row cannot become an entity; the message is the reason shown in the report."""


def clean(cell: Any) -> str:
    """A cell as NFKC text without surrounding (also full-width) spaces."""
    return unicodedata.normalize("NFKC", str(cell)).strip()


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_AUTO_NUMBER = re.compile(r"-?(0|[1-9]\d{0,14})(\.\d+)?")   # no leading zeros: codes stay text


def to_number(cell: Any, column: str) -> int | float:
    """``1,234`` → 1234, ``１２．５`` → 12.5; ``Rejected`` when it is no number."""
    if isinstance(cell, bool):
        raise Rejected(f"unparseable number in column {column}: {cell!r}")
    if isinstance(cell, (int, float)):
        if isinstance(cell, float) and not math.isfinite(cell):
            raise Rejected(f"unparseable number in column {column}: {cell!r}")
        return cell
    text = clean(cell).replace(",", "").replace(" ", "")
    if not _NUMBER.fullmatch(text):
        raise Rejected(f"unparseable number in column {column}: {str(cell)[:40]!r}")
    value = float(text)
    if not math.isfinite(value):
        raise Rejected(f"unparseable number in column {column}: {str(cell)[:40]!r}")
    if "." not in text and "e" not in text.lower():
        return int(text)
    return value


_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "大正": 1911, "明治": 1867,
         "R": 2018, "H": 1988, "S": 1925}
_ERA_DATE = re.compile(r"(令和|平成|昭和|大正|明治|[RHS])\.?\s*(\d{1,2}|元)\s*[年./-]\s*(\d{1,2})\s*"
                       r"[月./-]\s*(\d{1,2})\s*日?")
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"(\d{1,2})\s*[:時]\s*(\d{1,2})?\s*(?:[:分]\s*(\d{1,2})?\s*秒?)?")


def _iso_date(year: int, month: int, day: int) -> str | None:
    import datetime as dt

    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(cell: Any) -> str | None:
    """``YYYY-MM-DD`` for the usual Japanese spellings of a date, else ``None``."""
    text = clean(cell)
    match = _ERA_DATE.fullmatch(text)
    if match:
        era, year, month, day = match.groups()
        return _iso_date(_ERAS[era] + (1 if year == "元" else int(year)), int(month), int(day))
    match = _DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if match:
        return _iso_date(int(match[1]), int(match[2]), int(match[3]))
    return None


def parse_time(cell: Any) -> str | None:
    """``HH:MM:SS+09:00`` for ``9:00``, ``09:00:00``, ``9時30分``; ``None`` otherwise."""
    text = clean(cell)
    match = _TIME.fullmatch(text)
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
    if hour > 24 or minute > 59 or second > 59 or (hour == 24 and (minute or second)):
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}{JST}"


_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def parse_datetime(cell: Any) -> str | None:
    """An ISO 8601 date-time with an offset (``+09:00`` when the file gave none), else ``None``."""
    text = clean(cell).replace("T", " ", 1)
    offset = _OFFSET.search(text)
    suffix = ""
    if offset:
        suffix = offset[1] if offset[1] == "Z" else offset[1][:3] + ":" + offset[1][-2:]
        text = text[:offset.start()].strip()
    date_part, _, time_part = text.partition(" ")
    date = parse_date(date_part)
    time = parse_time(time_part) if time_part else f"00:00:00{JST}"
    if date is None or time is None:
        return None
    return f"{date}T{time[:8]}{suffix or JST}"


_TRUE = {"1", "true", "yes", "y", "有", "あり", "○", "〇", "可"}
_FALSE = {"0", "false", "no", "n", "無", "なし", "×", "不可"}


def convert(cell: Any, kind: str, column: str) -> Any:
    """The NGSI-LD value of one non-empty cell for ``kind`` (see :data:`KINDS`).

    Numbers that do not parse reject the row; dates and times that do not parse are kept as the
    text the file had (real files put "毎月第2日曜日" in date columns), so nothing is lost.
    """
    if kind == "number":
        return to_number(cell, column)
    if kind == "integer":
        number = to_number(cell, column)
        if isinstance(number, float) and not number.is_integer():
            raise Rejected(f"not an integer in column {column}: {cell!r}")
        return int(number)
    if isinstance(cell, (dict, list, bool, int, float)):
        return cell            # GeoJSON / JSON sources are typed already
    if kind == "date":
        date = parse_date(cell)
        return {"@type": "Date", "@value": date} if date else clean(cell)
    if kind == "time":
        time = parse_time(cell)
        return {"@type": "Time", "@value": time} if time else clean(cell)
    if kind == "datetime":
        stamp = parse_datetime(cell)
        return {"@type": "DateTime", "@value": stamp} if stamp else clean(cell)
    if kind == "boolean":
        text = clean(cell).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise Rejected(f"not a yes/no value in column {column}: {cell!r}")
    if kind == "auto":
        text = clean(cell)
        if _AUTO_NUMBER.fullmatch(text):
            return float(text) if "." in text else int(text)
        return str(cell).strip()
    return str(cell).strip()


def coordinates(lat_cell: Any, lon_cell: Any) -> tuple[float, float] | None:
    """(longitude, latitude), ``None`` when both cells are empty; ``Rejected`` when unusable."""
    if _empty(lat_cell) and _empty(lon_cell):
        return None
    if _empty(lat_cell) or _empty(lon_cell):
        raise Rejected("bad coordinates: latitude or longitude is missing")
    try:
        lat, lon = float(to_number(lat_cell, "lat")), float(to_number(lon_cell, "lon"))
    except Rejected:
        raise Rejected(f"bad coordinates: {str(lat_cell)[:20]!r}, {str(lon_cell)[:20]!r} "
                       "are not numbers") from None
    if lat == 0 and lon == 0:
        raise Rejected("bad coordinates: 0, 0 (a placeholder, not a place)")
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        hint = " (latitude and longitude swapped?)" if -90 <= lon <= 90 else ""
        raise Rejected(f"bad coordinates: latitude {lat}, longitude {lon} out of range{hint}")
    return lon, lat


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def is_empty(cell: Any) -> bool:
    """True for a missing or blank cell (such attributes are left out, not written as "")."""
    return _empty(cell)


def municipality_code(cell: Any) -> str:
    """A local government code with a leading zero a spreadsheet dropped put back.

    全国地方公共団体コード are 6 digits whose last is a check digit; a 5-digit value whose
    zero-padded form has a valid check digit (``92011`` → ``092011``) is taken to be one.
    """
    text = clean(cell).replace(" ", "")
    if text.isdigit() and len(text) == 5 and _check_digit_ok("0" + text):
        return "0" + text
    return text


def _check_digit_ok(code: str) -> bool:
    total = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10 == int(code[5])
