"""The NGSI-LD geo-query language (ETSI GS CIM 009 v1.8, clause 4.10).

A geo-query arrives either as four query parameters (``GET /entities``, subscriptions' URL form)::

    georel=near;maxDistance==2000&geometry=Point&coordinates=[135.1953,34.6946]&geoproperty=location

or as the ``geoQ`` member of ``POST /entityOperations/query`` and of subscriptions::

    {"georel": "within", "geometry": "Polygon", "coordinates": [[[...]]], "geoproperty": "location"}

:func:`parse_geoquery` takes the four values of either form and returns a :class:`GeoQuery`;
:func:`geo_matches` tests the GeoJSON value of one GeoProperty against it; :meth:`GeoQuery.bbox`
gives the box an index can prefilter on; :func:`distance_m` gives the distance used to sort by.

Grammar accepted for ``georel`` (clause 4.10, plus the common ``minDistance`` and ``maxDistance``
together)::

    georel   = "near" 1*2(";" distance) / "within" / "contains" / "intersects" / "overlaps"
               / "disjoint" / "equals"
    distance = ("maxDistance" / "minDistance") "==" number     ; metres, >= 0

``near`` takes a Point only.  The other relations are the Simple Features (DE-9IM) predicates of
the *stored* geometry against the query geometry: ``within`` means the entity's geometry lies
within the query geometry, ``contains`` that it contains the query geometry, ``equals`` is
topological equality.  All coordinates are lon/lat on WGS84; like GeoJSON (RFC 7946 3.1.1) the
predicates treat them as planar, so an edge is the straight segment between its positions in
lon/lat.  Geometries are not split at the antimeridian.

Distances are great-circle distances on a sphere of radius 6 371 008.8 m (the IUGG mean Earth
radius R1) by the haversine formula, not geodesics on the WGS84 ellipsoid: the difference is at
most about 0.5 % and never changes which of two nearby entities is closer in practice, and the
sphere makes the index box of :meth:`GeoQuery.bbox` exact.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from cityos.core.problems import BadRequestData, Problem
from cityos.data.ngsild.geojson import (
    GEOMETRY_COLLECTION,
    GEOMETRY_TYPES,
    build_shape,
    check_coordinates,
    geometry_bbox,
    to_shape,
    validate_geojson,
)

__all__ = [
    "EARTH_RADIUS_M",
    "GEORELS",
    "GeoQuery",
    "distance_m",
    "geo_matches",
    "geometry_bbox",
    "haversine_m",
    "parse_geoquery",
    "to_shape",
    "validate_geojson",
]

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_GEOPROPERTY = "location"
GEORELS: tuple[str, ...] = (
    "near", "within", "contains", "intersects", "overlaps", "disjoint", "equals",
)

BBox = tuple[float, float, float, float]
_WORLD: BBox = (-180.0, -90.0, 180.0, 90.0)

_DISTANCE = re.compile(r"\s*(maxDistance|minDistance)\s*==\s*(.*?)\s*", re.ASCII | re.DOTALL)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
# characters that cannot occur in an attribute name (compact term or IRI) given as geoproperty
_BAD_NAME = re.compile(r"[\s\x00-\x1f\x7f<>\"'=;()\\]")

# DE-9IM predicates written with the *query* geometry first, so its prepared form is the one used:
# "stored within query" is "query contains stored", and so on; the rest are symmetric.
_PREDICATES: dict[str, Callable[[BaseGeometry, BaseGeometry], Any]] = {
    "within": shapely.contains,
    "contains": shapely.within,
    "intersects": shapely.intersects,
    "overlaps": shapely.overlaps,
    "disjoint": shapely.disjoint,
    "equals": shapely.equals,
}


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query; build it with :func:`parse_geoquery`."""

    georel: str                 # one of GEORELS
    geometry: BaseGeometry      # the query geometry, lon/lat WGS84 (prepared)
    geoproperty: str            # compact term as given (default "location"); the caller expands it
    max_distance: float | None  # metres, near only
    min_distance: float | None  # metres, near only

    def bbox(self) -> BBox | None:
        """A box ``(minx, miny, maxx, maxy)`` in degrees that every matching geometry's bbox
        intersects, for an index prefilter; ``None`` when no such box exists (``disjoint``,
        ``near`` with ``minDistance`` only)."""
        if self.georel == "disjoint":
            return None
        if self.georel == "near":
            if self.max_distance is None:
                return None
            return _cap_bbox(float(self.geometry.x), float(self.geometry.y), self.max_distance)
        # within/contains/intersects/overlaps/equals all need a common point with the query
        minx, miny, maxx, maxy = self.geometry.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))


def parse_geoquery(georel: str | None, geometry: str | None, coordinates: str | list[Any] | None,
                   geoproperty: str | None) -> GeoQuery | None:
    """Parse the geo-query parameters (query string or ``geoQ`` members).

    ``None`` when none of georel, geometry and coordinates is given.  Raises
    :class:`BadRequestData` when only some are, or when any value is invalid; never anything else.
    ``coordinates`` is a JSON array, or its text (percent-encoded or not).
    """
    if georel is None and geometry is None and coordinates is None:
        if geoproperty is None:
            return None
        raise BadRequestData("geoproperty is only meaningful in a geo-query: "
                             "georel, geometry and coordinates are missing")
    missing = [name for name, value in
               (("georel", georel), ("geometry", geometry), ("coordinates", coordinates))
               if value is None]
    if missing:
        raise BadRequestData(f"Incomplete geo-query: {' and '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} missing "
                             "(georel, geometry and coordinates go together)")
    relation, max_distance, min_distance = _parse_georel(georel)
    geometry_type = _parse_geometry_type(geometry)
    if relation == "near" and geometry_type != "Point":
        raise BadRequestData(f"georel near needs geometry Point, got {geometry_type}")
    checked = check_coordinates(geometry_type, _parse_coordinates(coordinates))
    try:
        shape = build_shape(geometry_type, checked)
        valid = bool(shapely.is_valid(shape))
        reason = "" if valid else str(shapely.is_valid_reason(shape))
        shapely.prepare(shape)
    except (GEOSException, ValueError) as exc:     # defensive: checked input should never fail
        raise BadRequestData(f"coordinates: not a usable {geometry_type} ({exc})") from None
    if not valid:      # a self-intersecting query polygon would give surprising answers
        raise BadRequestData(f"coordinates: not a valid {geometry_type} ({reason})")
    return GeoQuery(relation, shape, _parse_geoproperty(geoproperty), max_distance, min_distance)


def geo_matches(query: GeoQuery, value: dict[str, Any]) -> bool:
    """Whether the GeoJSON geometry ``value`` of a GeoProperty satisfies ``query``.

    A value that is not a valid geometry matches nothing (it cannot be compared at all).
    """
    try:
        shape = to_shape(value)
    except Problem:
        return False
    if query.georel == "near":
        distance = _distance(float(query.geometry.x), float(query.geometry.y), shape)
        return ((query.max_distance is None or distance <= query.max_distance)
                and (query.min_distance is None or distance >= query.min_distance))
    predicate = _PREDICATES[query.georel]
    try:
        return bool(predicate(query.geometry, shape))
    except GEOSException:
        # a self-intersecting or otherwise invalid stored shape GEOS cannot relate as is
        return bool(predicate(query.geometry, shapely.make_valid(shape)))


def distance_m(query_point: BaseGeometry | Sequence[float], value: dict[str, Any]) -> float:
    """Metres from ``query_point`` (a shapely Point or ``(lon, lat)``) to the nearest point of the
    GeoJSON geometry ``value``; 0 when the point lies on or inside it.  Raises BadRequestData for
    an invalid ``value``."""
    if isinstance(query_point, BaseGeometry):
        lon, lat = float(query_point.x), float(query_point.y)
    else:
        lon, lat = float(query_point[0]), float(query_point[1])
    return _distance(lon, lat, to_shape(value))


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat points (sphere R = 6 371 008.8 m)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# --- parsing -------------------------------------------------------------------------------------

def _parse_georel(text: object) -> tuple[str, float | None, float | None]:
    if not isinstance(text, str):
        raise BadRequestData(f"georel must be a string, got {type(text).__name__}")
    head, *modifiers = [part.strip() for part in text.split(";")]
    if head not in GEORELS:
        raise BadRequestData(f"Unknown georel {_quote(head)}: expected one of {', '.join(GEORELS)}")
    if head != "near":
        if modifiers:
            raise BadRequestData(f"georel {head} takes no modifiers "
                                 "(maxDistance and minDistance apply to near only)")
        return head, None, None
    if not modifiers:
        raise BadRequestData("georel near needs a distance: "
                             "near;maxDistance==<metres> or near;minDistance==<metres>")
    distances: dict[str, float] = {}
    for modifier in modifiers:
        match = _DISTANCE.fullmatch(modifier)
        if match is None:
            raise BadRequestData(f"Invalid near modifier {_quote(modifier)}: expected "
                                 "maxDistance==<metres> or minDistance==<metres>")
        name, number = match.group(1), match.group(2)
        if name in distances:
            raise BadRequestData(f"georel near gives {name} twice")
        if not number:
            raise BadRequestData(f"georel near: {name} has no value (expected {name}==<metres>)")
        if _NUMBER.fullmatch(number) is None:
            raise BadRequestData(f"georel near: {name} must be a non-negative number of metres, "
                                 f"got {_quote(number)}")
        metres = float(number)
        if not math.isfinite(metres):
            raise BadRequestData(f"georel near: {name} is too large ({_quote(number)})")
        distances[name] = metres
    max_distance, min_distance = distances.get("maxDistance"), distances.get("minDistance")
    if max_distance is not None and min_distance is not None and min_distance > max_distance:
        raise BadRequestData(f"georel near: minDistance ({min_distance:g}) is greater than "
                             f"maxDistance ({max_distance:g})")
    return head, max_distance, min_distance


def _parse_geometry_type(text: object) -> str:
    if not isinstance(text, str):
        raise BadRequestData(f"geometry must be a string, got {type(text).__name__}")
    wanted = text.strip().lower()
    for name in GEOMETRY_TYPES:
        if name.lower() == wanted:     # NGSIv2 clients send "point"; accept any case
            return name
    if wanted == GEOMETRY_COLLECTION.lower():
        raise BadRequestData("geometry GeometryCollection cannot be used in a geo-query")
    raise BadRequestData(f"Unknown geometry {_quote(text)}: expected one of "
                         f"{', '.join(GEOMETRY_TYPES)}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse_coordinates(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return value
    if not isinstance(value, str):
        raise BadRequestData(f"coordinates must be a JSON array, got {type(value).__name__}")
    text = value.strip()
    if "%" in text:            # still percent-encoded: no JSON array of numbers contains "%"
        text = unquote(text).strip()
    if not text:
        raise BadRequestData("coordinates is empty: expected a JSON array such as [135.19,34.69]")
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequestData(f"coordinates is not valid JSON ({_brief(exc)}): "
                             "expected a JSON array such as [135.19,34.69]") from None
    if not isinstance(parsed, list):
        raise BadRequestData(f"coordinates must be a JSON array, got {_quote(text)}")
    return parsed


def _parse_geoproperty(value: object) -> str:
    if value is None:
        return DEFAULT_GEOPROPERTY
    if not isinstance(value, str):
        raise BadRequestData(f"geoproperty must be a string, got {type(value).__name__}")
    name = value.strip()
    if not name or _BAD_NAME.search(name):
        raise BadRequestData(f"geoproperty {_quote(value)} is not a valid attribute name")
    return name


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return json.dumps(shown)


def _brief(exc: BaseException) -> str:
    return "too deeply nested" if isinstance(exc, RecursionError) else str(exc)[:80]


# --- distances -----------------------------------------------------------------------------------

def _cap_bbox(lon: float, lat: float, metres: float) -> BBox:
    """The lon/lat box around the spherical cap of radius ``metres`` centred on (lon, lat).

    Latitude extent: the angular radius r itself.  Longitude extent: asin(sin r / cos lat), the
    widest meridian the cap touches.  When the cap reaches a pole or crosses the antimeridian, the
    box spans every longitude instead of being cut (a cut box would lose matches).
    """
    # tiny margin against rounding, so a point exactly at maxDistance is never lost by the index
    r = metres / EARTH_RADIUS_M * (1 + 1e-9) + 1e-12
    if r >= math.pi:
        return _WORLD
    dlat = math.degrees(r)
    south, north = lat - dlat, lat + dlat
    if south <= -90.0 or north >= 90.0:
        return (-180.0, max(south, -90.0), 180.0, min(north, 90.0))
    dlon = math.degrees(math.asin(min(1.0, math.sin(r) / math.cos(math.radians(lat)))))
    west, east = lon - dlon, lon + dlon
    if west < -180.0 or east > 180.0:
        return (-180.0, south, 180.0, north)
    return (west, south, east, north)


def _distance(lon: float, lat: float, shape: BaseGeometry) -> float:
    """Metres from (lon, lat) to the nearest point of ``shape`` (lon/lat degrees)."""
    type_id = shapely.get_type_id(shape)
    if type_id == 0:           # Point: exact (the common case, so no numpy round trip)
        return haversine_m(lon, lat, float(shape.x), float(shape.y))
    if type_id == 4:           # MultiPoint: exact, one haversine per point
        points = shapely.get_coordinates(shape)
        return float(np.min(_haversine_many(lon, lat, points)))
    try:
        return _distance_projected(lon, lat, shape)
    except GEOSException:
        return _distance_projected(lon, lat, shapely.make_valid(shape))


def _distance_projected(lon: float, lat: float, shape: BaseGeometry) -> float:
    """Distance to a line or area: choose the nearest point on a local plane, measure on the sphere.

    The plane is the equirectangular projection centred on the query point:
    x = R * cos(lat0) * dlon, y = R * dlat.  It is affine in (lon, lat), so every GeoJSON edge
    (a straight segment in lon/lat, RFC 7946) stays the same straight segment and "the point is
    inside the polygon" is decided exactly.  Its error is one of scale: at latitude lat0 + dlat an
    east-west offset is scaled by cos(lat0) instead of cos(lat), off by about |dlat| * tan(lat0).
    For an offset d at bearing b that is a relative distance error of about
    sin(b)^2 * cos(b) * tan(lat0) * d / R <= 0.385 * tan(lat0) * d / R: 0.21 % at 50 km at
    Kobe/Tokyo latitudes (35 deg), under 0.5 % at 50 km up to 58 deg of latitude (the sphere's own
    curvature adds only (d / R)^2 terms).  And that error only decides *which* point of the shape
    is picked: the distance returned is the haversine distance to the picked point, which lies on
    the shape, so it is never below the true distance and exceeds it only by a second-order amount.
    Because the picked point is a real point of the shape within the returned distance, a match
    under maxDistance always has a bbox that meets GeoQuery.bbox().
    """
    coslat = math.cos(math.radians(lat))
    if coslat < 1e-9:          # at a pole every meridian is "east": the nearest point is a vertex
        if shapely.intersects(shape, shapely.Point(lon, lat)):
            return 0.0
        return float(np.min(_haversine_many(lon, lat, shapely.get_coordinates(shape))))
    # one shift by a multiple of 360 degrees for the whole shape, so a shape on the far side of
    # the antimeridian is measured the short way without tearing its edges apart
    minx, _, maxx, _ = shapely.bounds(shape)
    shift = -360.0 * round(((minx + maxx) / 2.0 - lon) / 360.0)
    scale_x = EARTH_RADIUS_M * coslat * math.pi / 180.0
    scale_y = EARTH_RADIUS_M * math.pi / 180.0

    def project(xy: Any) -> Any:
        return np.column_stack(((xy[:, 0] + shift - lon) * scale_x, (xy[:, 1] - lat) * scale_y))

    planar = shapely.transform(shape, project)
    origin = shapely.Point(0.0, 0.0)
    if shapely.intersects(planar, origin):
        return 0.0
    # GEOS divides by a segment's squared length: a segment so short that it underflows to 0
    # gives no nearest point (or a NaN one); its vertices are then the nearest points anyway
    with np.errstate(all="ignore"):
        try:
            nearest = nearest_points(planar, origin)[0]
        except (ValueError, GEOSException):
            nearest = None
    if nearest is None or not (math.isfinite(nearest.x) and math.isfinite(nearest.y)):
        return float(np.min(_haversine_many(lon, lat, shapely.get_coordinates(shape))))
    near_lon = float(nearest.x) / scale_x + lon - shift
    near_lat = float(nearest.y) / scale_y + lat
    return haversine_m(lon, lat, near_lon, near_lat)


def _haversine_many(lon: float, lat: float, points: Any) -> Any:
    phi1 = math.radians(lat)
    phi2 = np.radians(points[:, 1])
    dphi = phi2 - phi1
    dlam = np.radians(points[:, 0] - lon)
    h = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
