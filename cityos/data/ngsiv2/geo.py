"""Locations in NGSI v2: the Simple Location Format, ``geo:json``, and geo-queries.

Attribute values of type ``geo:point`` (``"lat, lon"``), ``geo:line``, ``geo:polygon`` and
``geo:box`` (arrays of ``"lat, lon"`` strings) are stored as GeoJSON geometries (``[lon, lat]``) in
an NGSI-LD GeoProperty, so the broker's geo index and geo-queries serve both faces; the v2 type is
kept with the attribute and the value is written back in the format it came in.

Geo-queries (``georel``, ``geometry``, ``coords`` with ``lat,lon`` pairs separated by ``;``) are
turned into the broker's :class:`GeoQuery` on the entity's ``location`` attribute.
"""

from __future__ import annotations

from typing import Any

from cityos.core.problems import Problem
from cityos.data.ngsild.geojson import validate_geojson
from cityos.data.ngsild.geoquery import GeoQuery, parse_geoquery
from cityos.data.ngsiv2.errors import bad_request

SIMPLE_TYPES = frozenset({"geo:point", "geo:line", "geo:polygon", "geo:box"})
GEO_TYPES = SIMPLE_TYPES | {"geo:json"}
_GEOMETRIES = {"point": "Point", "line": "LineString", "polygon": "Polygon", "box": "Polygon"}
_GEORELS = ("near", "coveredBy", "intersects", "equals", "disjoint")


def _pair(text: object, what: str) -> list[float]:
    """``"lat, lon"`` -> ``[lon, lat]`` (GeoJSON order)."""
    if not isinstance(text, str):
        raise bad_request(f"{what}: coordinates must be a 'latitude, longitude' string")
    parts = text.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise bad_request(f"{what}: invalid coordinates {text[:60]!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad_request(f"{what}: coordinates {text[:60]!r} are out of range")
    return [lon, lat]


def _text(lon_lat: list[float]) -> str:
    return f"{_num(lon_lat[1])}, {_num(lon_lat[0])}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def to_geojson(v2type: str, value: Any, what: str) -> dict[str, Any]:
    """The GeoJSON geometry of a v2 location attribute value (400 when malformed)."""
    if v2type == "geo:json":
        try:
            validate_geojson(value)
        except Problem as problem:
            raise bad_request(f"{what}: invalid geo:json ({problem.detail})") from None
        assert isinstance(value, dict)
        return value
    if v2type == "geo:point":
        return {"type": "Point", "coordinates": _pair(value, what)}
    if not isinstance(value, list):
        raise bad_request(f"{what}: a {v2type} value must be an array of 'lat, lon' strings")
    points = [_pair(item, what) for item in value]
    if v2type == "geo:line":
        if len(points) < 2:
            raise bad_request(f"{what}: a geo:line needs at least two points")
        return {"type": "LineString", "coordinates": points}
    if v2type == "geo:box":
        if len(points) != 2:
            raise bad_request(f"{what}: a geo:box needs exactly two points")
        return {"type": "Polygon", "coordinates": [_box_ring(points[0], points[1])]}
    if len(points) < 4 or points[0] != points[-1]:
        raise bad_request(f"{what}: a geo:polygon needs at least four points, the last equal to "
                          "the first")
    return {"type": "Polygon", "coordinates": [points]}


def _box_ring(low: list[float], high: list[float]) -> list[list[float]]:
    (x1, y1), (x2, y2) = low, high
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]


def from_geojson(v2type: str, geometry: Any) -> Any:
    """A stored geometry back in the format of ``v2type`` (GeoJSON for geo:json or unknown)."""
    try:
        coords = geometry["coordinates"]
        if v2type == "geo:point" and geometry["type"] == "Point":
            return _text(coords)
        if v2type == "geo:line" and geometry["type"] == "LineString":
            return [_text(p) for p in coords]
        if v2type == "geo:polygon" and geometry["type"] == "Polygon":
            return [_text(p) for p in coords[0]]
        if v2type == "geo:box" and geometry["type"] == "Polygon":
            ring = coords[0]
            return [_text(ring[0]), _text(ring[2])]
    except (KeyError, IndexError, TypeError):
        pass
    return geometry


def parse_v2_geoquery(georel: str | None, geometry: str | None, coords: str | None,
                      location_iri: str) -> GeoQuery | None:
    """The broker's GeoQuery for v2 ``georel``/``geometry``/``coords`` (400 when malformed)."""
    if georel is None and geometry is None and coords is None:
        return None
    if georel is None or geometry is None or coords is None:
        raise bad_request("georel, geometry and coords go together in a geo-query")
    relation, *modifiers = georel.split(";")
    if relation not in _GEORELS:
        raise bad_request(f"Invalid georel {relation[:40]!r}; use one of {', '.join(_GEORELS)}")
    kind = _GEOMETRIES.get(geometry)
    if kind is None:
        raise bad_request(f"Invalid geometry {geometry[:40]!r}; use point, line, polygon or box")
    points = [_pair(p, "coords") for p in coords.split(";") if p.strip()]
    shape: Any
    if geometry == "point":
        if len(points) != 1:
            raise bad_request("coords of a point must be one 'lat,lon' pair")
        shape = points[0]
    elif geometry == "line":
        shape = points
    elif geometry == "box":
        if len(points) != 2:
            raise bad_request("coords of a box must be two 'lat,lon' pairs")
        shape = [_box_ring(points[0], points[1])]
    else:
        if len(points) < 4 or points[0] != points[-1]:
            raise bad_request("coords of a polygon need at least four pairs, the last equal to "
                              "the first")
        shape = [points]
    ld_rel = {"coveredBy": "within"}.get(relation, relation)
    for modifier in modifiers:
        name, _, amount = modifier.partition(":")
        if name not in ("maxDistance", "minDistance") or relation != "near":
            raise bad_request(f"Invalid georel modifier {modifier[:40]!r}")
        ld_rel += f";{name}=={amount}"
    if relation == "near" and not modifiers:
        raise bad_request("georel near needs maxDistance or minDistance")
    try:
        query = parse_geoquery(ld_rel, kind, shape, "location")
    except Problem as problem:
        raise bad_request(problem.detail) from None
    assert query is not None
    return GeoQuery(georel=query.georel, geometry=query.geometry, geoproperty=location_iri,
                    max_distance=query.max_distance, min_distance=query.min_distance)
