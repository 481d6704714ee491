"""Payload transforms of the IoT agent (ED-DP-1): UltraLight, the safe expression language,
units, types, locations and times."""

from __future__ import annotations

import pytest

from cityos.ingest.iot import (
    ExpressionError,
    evaluate,
    format_command,
    parse_command_result,
    parse_expression,
    parse_measures,
)
from cityos.ingest.iot.transform import TransformError, compile_device, to_attributes
from cityos.ingest.iot.ultralight import UltraLightError
from cityos.ingest.iot.units import UnitError, converter

NOW = "2026-11-26T00:00:00.000000Z"


def test_ultralight_groups_timestamps_and_commands() -> None:
    assert parse_measures("a|1|b|x") == [{"a": "1", "b": "x"}]
    assert parse_measures("2026-11-26T09:00:00+09:00|t|1#t|2") == [
        {"TimeInstant": "2026-11-26T09:00:00+09:00", "t": "1"}, {"t": "2"}]
    for bad in ("a|1|b", "", "|1"):
        with pytest.raises(UltraLightError):
            parse_measures(bad)
    assert format_command("lamp1", "switch", "on") == "lamp1@switch|on"
    assert parse_command_result("lamp1@switch|done") == ("lamp1", "switch", "done")


@pytest.mark.parametrize(("text", "names", "expected"), [
    ("t * 1.8 + 32", {"t": 100}, 212.0),
    ("(a + b) / 2", {"a": "3", "b": 5}, 4.0),
    ("a / 0", {"a": 1}, None),
    ("missing + 1", {}, None),
    ("t > 30 ? 'hot' : 'ok'", {"t": 31}, "hot"),
    ("upper(trim(s)) + '!'", {"s": "  kobe "}, "KOBE!"),
    ("substr(s, 0, 2)", {"s": "神戸市"}, "神戸"),
    ("round(x, 1)", {"x": 2.345}, 2.3),
    ("not (a == 1) || b", {"a": 1, "b": False}, False),
    ("max(1, x, 3) - min(4, x)", {"x": 7}, 3),
    ("-x % 5", {"x": 7}, 3),
    ("concat(a, '-', b)", {"a": 1, "b": "x"}, "1-x"),
])
def test_expressions(text: str, names: dict[str, object], expected: object) -> None:
    assert evaluate(parse_expression(text), names) == expected


@pytest.mark.parametrize("text", [
    "__import__('os')", "a.b", "open('x')", "1 +", "(1", "a b", "x[0]", "lambda: 1",
    "1 < 2 < 3", "f(" * 50, "", "'unterminated",
])
def test_unsafe_or_malformed_expressions_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_units() -> None:
    assert converter("FAH", "CEL")(212) == pytest.approx(100)
    assert converter("KMH", "MTS")(36) == pytest.approx(10)
    assert converter("A97", "PAL")(1013) == pytest.approx(101300)
    with pytest.raises(UnitError):
        converter("CEL", "MTR")
    with pytest.raises(UnitError):
        converter("XXX", "CEL")


def _device(**extra: object) -> dict[str, object]:
    return {"device_id": "d1", "entity_name": "Thing:d1", "entity_type": "Thing",
            "protocol": "PDI-IoTA-UltraLight", "transport": "HTTP", "service": "",
            "service_path": "/", **extra}


def test_renaming_types_times_and_location() -> None:
    device = compile_device("", _device(timezone="Asia/Tokyo", explicitAttrs=True, attributes=[
        {"object_id": "t", "name": "temperature", "type": "Number"},
        {"object_id": "on", "name": "lit", "type": "Boolean"},
        {"object_id": "ts", "name": "seenAt", "type": "DateTime"},
        {"object_id": "p", "name": "position", "type": "geo:point"}]), None)
    attrs = to_attributes(device, {"t": "21.5", "on": "true", "ts": "2026-11-26 09:00:00",
                                   "p": "34.69, 135.19", "extra": "dropped",
                                   "TimeInstant": "2026-11-26T10:00:00"}, NOW)
    assert attrs["temperature"] == {"type": "Property", "value": 21.5,
                                    "observedAt": "2026-11-26T01:00:00.000000Z"}
    assert attrs["lit"]["value"] is True
    assert attrs["seenAt"]["value"] == {"@type": "DateTime", "@value": "2026-11-26T00:00:00.000000Z"}
    assert attrs["position"]["value"] == {"type": "Point", "coordinates": [135.19, 34.69]}
    assert "extra" not in attrs


def test_lat_lon_measures_become_a_geoproperty() -> None:
    device = compile_device("", _device(location={"lat": "la", "lon": "lo"}), None)
    attrs = to_attributes(device, {"la": "35.0", "lo": "135.7"}, NOW)
    assert attrs["location"]["value"] == {"type": "Point", "coordinates": [135.7, 35.0]}
    assert attrs["location"]["observedAt"] == NOW


def test_bad_measures_and_provisioning_are_refused() -> None:
    device = compile_device("", _device(attributes=[
        {"object_id": "t", "name": "temperature", "type": "Number"}]), None)
    with pytest.raises(TransformError):
        to_attributes(device, {"t": "warm"}, NOW)
    with pytest.raises(TransformError):
        to_attributes(device, {"t": "1", "TimeInstant": "soon"}, NOW)
    with pytest.raises(TransformError):
        compile_device("", _device(attributes=[
            {"object_id": "t", "name": "x", "type": "Number", "expression": "t +"}]), None)
    with pytest.raises(TransformError):
        compile_device("", _device(attributes=[
            {"object_id": "t", "name": "x", "type": "Number", "sourceUnit": "FAH",
             "unitCode": "MTR"}]), None)
