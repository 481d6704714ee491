"""GeoJSON geometries (RFC 7946) as carried by NGSI-LD GeoProperties (ETSI GS CIM 009, clause 4.7).

A GeoProperty's value is a GeoJSON *geometry* object: ``{"type": ..., "coordinates": ...}`` for
Point, MultiPoint, LineString, MultiLineString, Polygon and MultiPolygon, or
``{"type": "GeometryCollection", "geometries": [...]}``.  Positions are ``[lon, lat]`` or
``[lon, lat, alt]`` in WGS84 degrees; the altitude is accepted but ignored by every spatial test.

This module checks that shape (:func:`validate_geojson`), turns a geometry into a shapely object
(:func:`to_shape`, cached) and gives its bounding box (:func:`geometry_bbox`).  The geo-query
language on top of it lives in :mod:`cityos.data.ngsild.geoquery`.

Every failure is a :class:`~cityos.core.problems.BadRequestData` whose detail names the member at
fault, e.g. ``coordinates[0][3]: latitude 95 is outside [-90, 90]``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from cityos.core.problems import BadRequestData, Problem

# the geometries a geo-query may use (clause 4.10); a stored value may also be a collection
GEOMETRY_TYPES: tuple[str, ...] = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
)
GEOMETRY_COLLECTION = "GeometryCollection"

# how deep GeometryCollections may nest (RFC 7946 3.1.8 discourages nesting at all)
MAX_COLLECTION_DEPTH = 4
# geometries whose canonical JSON is longer than this are converted without being cached
_MAX_CACHED_KEY = 64 * 1024

Position = tuple[float, float]


def _fail(where: str, message: str) -> Problem:
    return BadRequestData(f"{where}: {message}" if where else message)


def _number(value: object, where: str, axis: str, limit: int) -> float:
    # bool is an int in Python but never a coordinate; range-check before float() so a huge int
    # cannot overflow
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{axis} must be a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, f"{axis} must be a finite number, got {value}")
    if not -limit <= value <= limit:
        raise _fail(where, f"{axis} {value} is outside [-{limit}, {limit}]")
    return float(value)


def _position(value: object, where: str) -> Position:
    if not isinstance(value, (list, tuple)):
        raise _fail(where, f"a position must be an array [longitude, latitude], got {_show(value)}")
    if value and isinstance(value[0], (list, tuple)):
        raise _fail(where, "expected a position [longitude, latitude], got an array of arrays "
                           "(does the nesting match the geometry type?)")
    if not 2 <= len(value) <= 3:
        raise _fail(where, "a position must have 2 or 3 numbers [longitude, latitude(, altitude)],"
                           f" got {len(value)}")
    lon = _number(value[0], where, "longitude", 180)
    lat = _number(value[1], where, "latitude", 90)
    if len(value) == 3:
        alt = value[2]
        if isinstance(alt, bool) or not isinstance(alt, (int, float)) or (
                isinstance(alt, float) and not math.isfinite(alt)):
            raise _fail(where, f"altitude must be a finite number, got {_show(alt)}")
    return (lon, lat)


def _array(value: object, where: str, what: str, minimum: int = 1) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise _fail(where, f"{what} must be an array, got {_show(value)}")
    if len(value) < minimum:
        raise _fail(where, f"{what} needs at least {minimum} "
                           f"{'entry' if minimum == 1 else 'entries'}, got {len(value)}")
    return value


def _positions(value: object, where: str, what: str, minimum: int) -> list[Position]:
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        raise _fail(where, f"{what} must be an array of positions, got {_show(value)} "
                           "(does the nesting match the geometry type?)")
    items = _array(value, where, what, minimum)
    return [_position(item, f"{where}[{i}]") for i, item in enumerate(items)]


def _line(value: object, where: str) -> list[Position]:
    return _positions(value, where, "a LineString", 2)


def _ring(value: object, where: str) -> list[Position]:
    ring = _positions(value, where, "a linear ring", 4)
    if ring[0] != ring[-1]:
        raise _fail(where, "a linear ring must be closed (its first and last positions equal)")
    return ring


def _polygon(value: object, where: str) -> list[list[Position]]:
    rings = _array(value, where, "a Polygon", 1)
    return [_ring(ring, f"{where}[{i}]") for i, ring in enumerate(rings)]


def check_coordinates(geometry_type: str, coordinates: object, where: str = "coordinates") -> Any:
    """Check ``coordinates`` for a geometry of ``geometry_type`` (one of :data:`GEOMETRY_TYPES`).

    Returns the same nesting with every position reduced to a ``(lon, lat)`` float tuple; raises
    :class:`BadRequestData` naming the first offending member.  Empty geometries are refused: they
    match nothing and only make every spatial test a special case.
    """
    if geometry_type == "Point":
        return _position(coordinates, where)
    if geometry_type == "MultiPoint":
        return _positions(coordinates, where, "a MultiPoint", 1)
    if geometry_type == "LineString":
        return _line(coordinates, where)
    if geometry_type == "MultiLineString":
        lines = _array(coordinates, where, "a MultiLineString", 1)
        return [_line(line, f"{where}[{i}]") for i, line in enumerate(lines)]
    if geometry_type == "Polygon":
        return _polygon(coordinates, where)
    if geometry_type == "MultiPolygon":
        polygons = _array(coordinates, where, "a MultiPolygon", 1)
        return [_polygon(polygon, f"{where}[{i}]") for i, polygon in enumerate(polygons)]
    raise _fail(where, f"unknown geometry type {_show(geometry_type)}")


def build_shape(geometry_type: str, coordinates: Any) -> BaseGeometry:
    """A shapely geometry from coordinates already returned by :func:`check_coordinates`."""
    if geometry_type == "Point":
        return shapely.Point(coordinates)
    if geometry_type == "MultiPoint":
        return shapely.MultiPoint(coordinates)
    if geometry_type == "LineString":
        return shapely.LineString(coordinates)
    if geometry_type == "MultiLineString":
        return shapely.MultiLineString(coordinates)
    if geometry_type == "Polygon":
        return shapely.Polygon(coordinates[0], coordinates[1:])
    return shapely.MultiPolygon([(polygon[0], polygon[1:]) for polygon in coordinates])


def _check(value: object, where: str, depth: int) -> BaseGeometry:
    """Validate one geometry object and build its shape (the two walks are the same walk)."""
    if not isinstance(value, dict):
        raise _fail(where, f"a GeoJSON geometry must be an object, got {_show(value)}")
    geometry_type = value.get("type")
    if geometry_type == GEOMETRY_COLLECTION:
        if depth >= MAX_COLLECTION_DEPTH:
            raise _fail(where, f"GeometryCollections nest deeper than {MAX_COLLECTION_DEPTH}")
        prefix = f"{where}.geometries" if where else "geometries"
        members = _array(value.get("geometries"), prefix,
                         "the geometries of a GeometryCollection", 1)
        return shapely.GeometryCollection(
            [_check(member, f"{prefix}[{i}]", depth + 1) for i, member in enumerate(members)])
    if not isinstance(geometry_type, str) or geometry_type not in GEOMETRY_TYPES:
        raise _fail(where, f"type must be one of {', '.join((*GEOMETRY_TYPES, GEOMETRY_COLLECTION))},"
                           f" got {_show(geometry_type)}")
    if "coordinates" not in value:
        raise _fail(where, f"a {geometry_type} needs coordinates")
    key = f"{where}.coordinates" if where else "coordinates"
    return build_shape(geometry_type, check_coordinates(geometry_type, value["coordinates"], key))


def validate_geojson(value: object) -> None:
    """Raise :class:`BadRequestData` unless ``value`` is a well-formed GeoJSON geometry object.

    Checked: the ``type``; the nesting and count of ``coordinates`` for that type (LineStrings >= 2
    positions, linear rings >= 4 positions and closed); positions of 2 or 3 finite numbers with
    longitude in [-180, 180] and latitude in [-90, 90]; GeometryCollections with a non-empty
    ``geometries`` array of such objects.  Not checked (RFC 7946 does not require it): ring winding
    order and self-intersection; spatial tests repair such shapes when they have to.

    The shape built on the way is cached, so a later :func:`to_shape` of the same value is free.
    """
    _to_shape(value)


@lru_cache(maxsize=4096)
def _shape_from_key(key: str) -> BaseGeometry:
    shape = _check(json.loads(key), "", 0)
    shapely.prepare(shape)
    return shape


def to_shape(value: dict[str, Any]) -> BaseGeometry:
    """The shapely geometry (lon/lat degrees, 2D) of a GeoJSON geometry dict.

    Validates like :func:`validate_geojson`.  Results are cached by the canonical JSON of the value,
    so the many entities sharing a location, and every repeated query over the same entities, pay
    for validation and construction once; shapely geometries are immutable, so sharing is safe.
    """
    return _to_shape(value)


def _to_shape(value: object) -> BaseGeometry:
    try:
        key = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        # not JSON-shaped (or NaN somewhere): let the validator say precisely what is wrong
        return _check(value, "", 0)
    if len(key) > _MAX_CACHED_KEY:
        return _check(value, "", 0)
    return _shape_from_key(key)


def geometry_bbox(value: dict[str, Any]) -> tuple[float, float, float, float]:
    """``(min lon, min lat, max lon, max lat)`` of a GeoJSON geometry, in degrees."""
    minx, miny, maxx, maxy = to_shape(value).bounds
    return (float(minx), float(miny), float(maxx), float(maxy))


def _show(value: object) -> str:
    """A short, safe rendering of a caller's value for an error message."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
