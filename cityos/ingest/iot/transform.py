"""Measures to NGSI-LD attributes: renaming, types, units, expressions, locations, times (ED-DP-1).

A device's provisioning is compiled once into a :class:`CompiledDevice` (expressions parsed, unit
converters built); every measurement then only walks dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cityos.assets.devices import (
    MeasureError,
    commands_of,
    entity_id_of,
    ngsi_attribute,
    point,
    scope_of,
    to_utc,
)
from cityos.ingest.iot.expressions import ExpressionError, Node, evaluate, parse_expression
from cityos.ingest.iot.units import UnitError, converter

TIME_KEYS = ("TimeInstant", "t", "timestamp")
LAT_KEYS = ("lat", "latitude")
LON_KEYS = ("lon", "lng", "long", "longitude")


class TransformError(ValueError):
    """A provisioning that cannot be compiled, or a measure that cannot be stored."""


@dataclass
class AttrSpec:
    """One provisioned attribute: where it comes from and how it is stored."""

    object_id: str
    name: str
    type: str
    expression: Node | None = None
    unit_code: str | None = None
    convert: Callable[[float], float] | None = None


@dataclass
class CompiledDevice:
    """A device ready for the hot path."""

    tenant: str
    device_id: str
    apikey: str
    entity_id: str
    entity_type: str
    protocol: str
    transport: str
    endpoint: str | None
    zone: str | None
    explicit: bool
    by_object_id: dict[str, AttrSpec] = field(default_factory=dict)
    computed: list[AttrSpec] = field(default_factory=list)
    location: tuple[str, str] | None = None
    commands: list[str] = field(default_factory=list)
    scope: list[str] | None = None         # the NGSI-LD scope of the fiware-servicepath
    expected_interval: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _spec(attr: dict[str, Any]) -> AttrSpec:
    spec = AttrSpec(attr.get("object_id", attr["name"]), attr["name"], attr["type"],
                    unit_code=attr.get("unitCode"))
    if attr.get("expression"):
        try:
            spec.expression = parse_expression(attr["expression"])
        except ExpressionError as exc:
            raise TransformError(f"attribute {attr['name']!r}: {exc}") from None
    if attr.get("sourceUnit"):
        if not spec.unit_code:
            raise TransformError(f"attribute {attr['name']!r}: sourceUnit needs a unitCode")
        try:
            spec.convert = converter(attr["sourceUnit"], spec.unit_code)
        except UnitError as exc:
            raise TransformError(f"attribute {attr['name']!r}: {exc}") from None
    return spec


def compile_device(tenant: str, device: dict[str, Any],
                   group: dict[str, Any] | None) -> CompiledDevice:
    """A device's provisioning (with its group's attributes) compiled for the hot path."""
    group = group or {}
    compiled = CompiledDevice(
        tenant=tenant, device_id=device["device_id"], apikey=device.get("apikey", ""),
        entity_id=entity_id_of(device), entity_type=device["entity_type"],
        protocol=device["protocol"], transport=device["transport"],
        endpoint=device.get("endpoint"), zone=device.get("timezone") or group.get("timezone"),
        explicit=bool(device.get("explicitAttrs", group.get("explicitAttrs", False))),
        commands=commands_of(device, group), scope=scope_of(device),
        expected_interval=device.get(
            "expected_interval", group.get("expected_interval")), raw=device)
    for attr in [*group.get("attributes", []), *device.get("attributes", [])]:
        spec = _spec(attr)
        if spec.expression is not None:
            compiled.computed.append(spec)
        compiled.by_object_id[spec.object_id] = spec
    location = device.get("location") or group.get("location")
    if isinstance(location, dict) and isinstance(location.get("lat"), str):
        compiled.location = (location["lat"], location["lon"])
    return compiled


def observed_at(measures: dict[str, Any], zone: str | None, arrival: str) -> str:
    """The measurement time: the payload's ``TimeInstant`` / ``t`` (to UTC) or arrival time."""
    for key in TIME_KEYS:
        if key in measures and (key != "t" or _is_time(measures[key])):
            try:
                return to_utc(measures[key], zone)
            except MeasureError as exc:
                raise TransformError(f"{key}: {exc}") from None
    return arrival


def _is_time(value: Any) -> bool:
    """``t`` is a timestamp only when it holds one (FIWARE devices also use it for temperature)."""
    return isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-"


def _location(device: CompiledDevice, measures: dict[str, Any]) -> dict[str, Any] | None:
    if device.location is not None:
        lat_key, lon_key = device.location
        if lat_key in measures and lon_key in measures:
            return point(measures[lat_key], measures[lon_key])
        return None
    lat = next((k for k in LAT_KEYS if k in measures), None)
    lon = next((k for k in LON_KEYS if k in measures), None)
    if lat is not None and lon is not None and lat not in device.by_object_id:
        return point(measures[lat], measures[lon])
    return None


def to_attributes(device: CompiledDevice, measures: dict[str, Any], arrival: str) -> dict[str, Any]:
    """The NGSI-LD attributes (normalized, compact names) one measure group becomes."""
    at = observed_at(measures, device.zone, arrival)
    attrs: dict[str, Any] = {}
    try:
        for key, value in measures.items():
            if value is None or (key in TIME_KEYS and (key != "t" or _is_time(value))):
                continue
            spec = device.by_object_id.get(key)
            if spec is None:
                if device.explicit or key in LAT_KEYS or key in LON_KEYS:
                    continue
                attrs[key] = _implicit(value, at)
            elif spec.expression is None:
                attrs[spec.name] = _typed(spec, value, at, device.zone)
        if device.computed:
            names = dict(measures)
            names.update({s.name: measures[s.object_id] for s in device.by_object_id.values()
                          if s.object_id in measures})
            for spec in device.computed:
                value = evaluate(spec.expression or ("lit", None), names)
                if value is not None:
                    attrs[spec.name] = _typed(spec, value, at, device.zone)
        geometry = _location(device, measures)
    except MeasureError as exc:
        raise TransformError(str(exc)) from None
    if geometry is not None:
        attrs["location"] = {"type": "GeoProperty", "value": geometry, "observedAt": at}
    return attrs


def _typed(spec: AttrSpec, value: Any, at: str, zone: str | None) -> dict[str, Any]:
    if spec.convert is not None:
        try:
            value = round(spec.convert(float(value)), 6)
        except (TypeError, ValueError):
            raise MeasureError(f"{spec.name}: {str(value)[:40]!r} is not a number") from None
    return ngsi_attribute(spec.type, value, observed_at=at, unit_code=spec.unit_code, zone=zone)


def _implicit(value: Any, at: str) -> dict[str, Any]:
    """An undeclared measure (explicitAttrs off): stored as it came, numbers as numbers."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            try:
                number = float(value)
                if number == number and number not in (float("inf"), float("-inf")):
                    value = number
            except ValueError:
                pass
    return {"type": "Property", "value": value, "observedAt": at}
