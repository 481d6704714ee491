"""FIWARE attribute types to NGSI-LD attributes, and device timestamps to UTC (ED-DP-1).

Devices are provisioned with NGSI v2 style types (``Number``, ``Text``, ``geo:point``,
``DateTime``...); the broker stores NGSI-LD.  :func:`ngsi_attribute` turns one typed value into a
normalized NGSI-LD attribute, casting text (UltraLight sends only text) to the declared type.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

NUMBER_TYPES = {"Number", "Float", "Integer", "number", "float", "integer", "Decimal"}
BOOL_TYPES = {"Boolean", "boolean", "Bool"}
DATE_TYPES = {"DateTime", "ISO8601", "Date"}


class MeasureError(ValueError):
    """A measure that cannot become the declared type (reported, never stored half-way)."""


def to_utc(value: Any, zone: str | None = None) -> str:
    """An ISO 8601 time (any offset; none = ``zone`` or UTC) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Epoch seconds or milliseconds (numbers) are accepted too, as some devices send them.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        moment = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "T", 1) if "T" not in value else value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise MeasureError(f"{value[:60]!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            local: tzinfo = ZoneInfo(zone) if zone else UTC
            moment = moment.replace(tzinfo=local)
    else:
        raise MeasureError(f"{str(value)[:60]!r} is not a time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise MeasureError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise MeasureError(f"{text[:60]!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise MeasureError(f"{text[:60]!r} is not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "on", "yes"):
        return True
    if text in ("false", "0", "off", "no"):
        return False
    raise MeasureError(f"{text[:60]!r} is not a boolean")


def point(lat: Any, lon: Any) -> dict[str, Any]:
    """A GeoJSON Point from latitude and longitude (GeoJSON puts longitude first)."""
    y, x = _number(lat), _number(lon)
    if not (-90 <= y <= 90 and -180 <= x <= 180):
        raise MeasureError(f"({y}, {x}) is not a latitude and longitude")
    return {"type": "Point", "coordinates": [x, y]}


def typed_value(kind: str, value: Any, zone: str | None = None) -> tuple[str, Any]:
    """(NGSI-LD attribute type, value) for a value declared as FIWARE type ``kind``."""
    if kind in NUMBER_TYPES:
        number = _number(value)
        return "Property", int(number) if kind in ("Integer", "integer") else number
    if kind in BOOL_TYPES:
        return "Property", _boolean(value)
    if kind in DATE_TYPES:
        return "Property", {"@type": "DateTime", "@value": to_utc(value, zone)}
    if kind == "geo:point":
        if isinstance(value, dict):
            return "GeoProperty", value
        lat, _, lon = str(value).partition(",")
        return "GeoProperty", point(lat, lon)
    if kind.startswith("geo:") or kind == "GeoProperty":
        if not isinstance(value, dict) or "type" not in value:
            raise MeasureError(f"a {kind} value must be a GeoJSON geometry")
        return "GeoProperty", value
    if kind == "Relationship":
        return "Relationship", str(value)
    if isinstance(value, str) and kind in ("Text", "String", "Property", "commandStatus",
                                           "commandResult"):
        return "Property", value
    return "Property", value


def ngsi_attribute(kind: str, value: Any, *, observed_at: str | None = None,
                   unit_code: str | None = None, zone: str | None = None) -> dict[str, Any]:
    """One normalized NGSI-LD attribute for a FIWARE-typed value."""
    attr_type, typed = typed_value(kind, value, zone)
    key = "object" if attr_type == "Relationship" else "value"
    attribute: dict[str, Any] = {"type": attr_type, key: typed}
    if observed_at is not None:
        attribute["observedAt"] = observed_at
    if unit_code and attr_type == "Property":
        attribute["unitCode"] = unit_code
    return attribute
