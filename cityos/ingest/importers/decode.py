"""Reading CSV bytes whatever their encoding and delimiter: the header plus numbered rows.

Japanese open data arrives as UTF-8 (with or without a byte-order mark), Shift_JIS (in practice
Microsoft's cp932, which adds the NEC and IBM extensions such as ① and ㈱), UTF-16 with a BOM (what
Excel writes as "Unicode text") and occasionally EUC-JP.  Detection is deliberately simple and
predictable: a BOM decides; otherwise strict UTF-8 is tried first (random Shift_JIS text is
almost never valid UTF-8), then cp932, then EUC-JP.  ``--encoding`` overrides it.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from cityos.ingest.importers.values import Rejected

CANDIDATES = ("utf-8", "cp932", "euc_jp")
DELIMITERS = (",", "\t", ";", "|")
# Python's name for each encoding people type on the command line
_ALIASES = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "s-jis": "cp932",
            "ms932": "cp932", "windows-31j": "cp932", "utf8": "utf-8", "utf-8-bom": "utf-8-sig",
            "utf16": "utf-16", "eucjp": "euc_jp", "euc-jp": "euc_jp"}


class UnreadableFile(ValueError):
    """The file cannot be decoded or has no header row."""


@dataclass
class Table:
    """A decoded CSV: its header, its data rows with their row numbers, and how it was read."""

    header: list[str]
    rows: list[tuple[int, list[str]]]     # (row number, cells); the header is row 1
    encoding: str
    delimiter: str


def normalise_encoding(name: str) -> str:
    """The codec for an encoding name as people write it; ``UnreadableFile`` when unknown."""
    key = name.strip().lower()
    codec = _ALIASES.get(key, key)
    try:
        codecs.lookup(codec)
    except LookupError:
        raise UnreadableFile(f"unknown encoding {name!r}; use e.g. utf-8, cp932 (Shift_JIS), "
                             "utf-16 or euc-jp") from None
    return codec


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) for ``data``; ``encoding`` forces one."""
    if encoding:
        codec = normalise_encoding(encoding)
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"the file is not valid {codec}: byte {exc.start}") from None
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16"
    for codec in CANDIDATES:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("cannot tell the file's encoding (not UTF-8, Shift_JIS or EUC-JP); "
                         "give it with --encoding")


def sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header line into the most columns (ties go to ``,``)."""
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_table(data: bytes, encoding: str | None = None, delimiter: str | None = None) -> Table:
    """Decode and split ``data``; blank lines are skipped, short rows padded, long rows kept."""
    text, used = decode(data, encoding)
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    sep = delimiter or sniff_delimiter(first)
    if sep == "\\t":
        sep = "\t"
    if len(sep) != 1:
        raise UnreadableFile(f"a delimiter is one character, not {sep!r}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) < len(header):
                cells = cells + [""] * (len(header) - len(cells))
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise UnreadableFile(f"malformed CSV near line {reader.line_num}: {exc}") from None
    if header is None:
        raise UnreadableFile("the file is empty: no header row")
    return Table(header=header, rows=rows, encoding=used, delimiter=sep)


def extra_cells(row: list[str], header: list[str]) -> None:
    """``Rejected`` when a row has non-empty cells beyond the header (a shifted row)."""
    if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
        raise Rejected(f"the row has {len(row)} cells but the header only {len(header)}")
