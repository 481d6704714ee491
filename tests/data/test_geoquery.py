"""NGSI-LD geo-queries (ETSI GS CIM 009 clause 4.10) and GeoJSON geometries (clause 4.7)."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.geoquery import (
    EARTH_RADIUS_M,
    GeoQuery,
    distance_m,
    geo_matches,
    geometry_bbox,
    haversine_m,
    parse_geoquery,
    to_shape,
    validate_geojson,
)

# real places (lon, lat)
KOBE_CITY_HALL = (135.1955, 34.6901)
SANNOMIYA = (135.1953, 34.6946)
KOBE_PORT_TOWER = (135.1866, 34.6826)
TOKYO_STATION = (139.7671, 35.6812)
OSAKA_STATION = (135.4959, 34.7025)

# central Kobe (Sannomiya / city hall / Motomachi), a box around both KOBE_CITY_HALL and SANNOMIYA
CENTRAL_KOBE = [[[135.18, 34.68], [135.21, 34.68], [135.21, 34.70], [135.18, 34.70],
                 [135.18, 34.68]]]
# a box around Sannomiya station only
SANNOMIYA_BOX = [[[135.19, 34.692], [135.20, 34.692], [135.20, 34.698], [135.19, 34.698],
                  [135.19, 34.692]]]


def point(lon_lat: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(lon_lat)}


def polygon(rings: list[list[list[float]]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": rings}


def coords(value: object) -> str:
    return json.dumps(value)


def near(metres: float, lon_lat: tuple[float, float], kind: str = "maxDistance") -> GeoQuery:
    query = parse_geoquery(f"near;{kind}=={metres:g}", "Point", coords(list(lon_lat)), None)
    assert query is not None
    return query


def query_for(georel: str, geometry: str, coordinates: object) -> GeoQuery:
    query = parse_geoquery(georel, geometry, coords(coordinates), None)
    assert query is not None
    return query


# --- distances -----------------------------------------------------------------------------------

def test_haversine_known_distances() -> None:
    # Kobe <-> Tokyo: ~430 km (WGS84 geodesic 430.6 km; the 6 371 008.8 m sphere gives 429.8 km)
    assert haversine_m(*KOBE_CITY_HALL, *TOKYO_STATION) == pytest.approx(429_780, rel=1e-4)
    assert haversine_m(*KOBE_CITY_HALL, *TOKYO_STATION) == pytest.approx(430_614, rel=5e-3)
    # city hall <-> Sannomiya: ~500 m, almost due north
    assert haversine_m(*KOBE_CITY_HALL, *SANNOMIYA) == pytest.approx(500.7, abs=0.5)
    # Sannomiya <-> Osaka station: ~27.6 km
    assert haversine_m(*SANNOMIYA, *OSAKA_STATION) == pytest.approx(27_560, rel=5e-3)
    assert haversine_m(*TOKYO_STATION, *TOKYO_STATION) == 0.0
    # a quarter meridian
    assert haversine_m(0, 0, 0, 90) == pytest.approx(EARTH_RADIUS_M * math.pi / 2)


def test_distance_to_point_and_multipoint() -> None:
    assert distance_m(SANNOMIYA, point(KOBE_CITY_HALL)) == pytest.approx(500.7, abs=0.5)
    multi = {"type": "MultiPoint", "coordinates": [list(TOKYO_STATION), list(KOBE_CITY_HALL)]}
    assert distance_m(SANNOMIYA, multi) == pytest.approx(500.7, abs=0.5)


def test_distance_to_line_is_distance_to_nearest_point() -> None:
    # a meridian segment at 135.20 E; from 135.19 E the nearest point is due east:
    # R * asin(sin(0.01 deg) * cos(34.69 deg)) = 914.28 m on the sphere
    line = {"type": "LineString", "coordinates": [[135.20, 34.60], [135.20, 34.80]]}
    assert distance_m((135.19, 34.69), line) == pytest.approx(914.28, rel=1e-4)
    # beyond the end of the segment the nearest point is the end vertex
    assert distance_m((135.20, 34.59), line) == pytest.approx(
        haversine_m(135.20, 34.59, 135.20, 34.60), rel=1e-6)


def test_distance_to_polygon_is_zero_inside_and_to_edge_outside() -> None:
    assert distance_m(KOBE_CITY_HALL, polygon(CENTRAL_KOBE)) == 0.0
    # Osaka station is east of the box: nearest edge is the meridian 135.21 E
    expected = EARTH_RADIUS_M * math.asin(
        math.sin(math.radians(OSAKA_STATION[0] - 135.21)) * math.cos(math.radians(34.70)))
    assert distance_m(OSAKA_STATION, polygon(CENTRAL_KOBE)) == pytest.approx(expected, rel=2e-3)


def test_distance_never_below_true_distance_to_vertices_line() -> None:
    # the measured distance is to a real point of the shape, hence >= the exact minimum; check it
    # against a dense sampling of the segment
    a, b = (135.0, 34.5), (135.6, 34.9)
    line = {"type": "LineString", "coordinates": [list(a), list(b)]}
    exact = min(haversine_m(*OSAKA_STATION, a[0] + (b[0] - a[0]) * t / 20000,
                            a[1] + (b[1] - a[1]) * t / 20000) for t in range(20001))
    measured = distance_m(OSAKA_STATION, line)
    assert exact - 0.01 <= measured <= exact * 1.001


# --- near ----------------------------------------------------------------------------------------

def test_near_max_and_min_distance() -> None:
    hall = point(KOBE_CITY_HALL)
    assert geo_matches(near(600, SANNOMIYA), hall)
    assert not geo_matches(near(400, SANNOMIYA), hall)
    assert geo_matches(near(400, SANNOMIYA, "minDistance"), hall)
    assert not geo_matches(near(600, SANNOMIYA, "minDistance"), hall)
    assert not geo_matches(near(2000, SANNOMIYA), point(TOKYO_STATION))
    assert geo_matches(near(431_000, KOBE_CITY_HALL), point(TOKYO_STATION))
    assert not geo_matches(near(429_000, KOBE_CITY_HALL), point(TOKYO_STATION))


def test_near_with_both_distances() -> None:
    query = parse_geoquery("near;minDistance==100;maxDistance==600", "Point",
                           coords(list(SANNOMIYA)), None)
    assert query is not None
    assert (query.min_distance, query.max_distance) == (100.0, 600.0)
    assert geo_matches(query, point(KOBE_CITY_HALL))
    assert not geo_matches(query, point(SANNOMIYA))          # 0 m < 100 m
    assert not geo_matches(query, point(KOBE_PORT_TOWER))    # ~1.6 km


def test_near_against_polygon_and_line() -> None:
    assert geo_matches(near(10, KOBE_CITY_HALL), polygon(CENTRAL_KOBE))        # inside
    assert geo_matches(near(27_000, OSAKA_STATION), polygon(CENTRAL_KOBE))     # ~26.2 km away
    assert not geo_matches(near(25_000, OSAKA_STATION), polygon(CENTRAL_KOBE))
    line = {"type": "LineString", "coordinates": [[135.20, 34.60], [135.20, 34.80]]}
    assert geo_matches(near(920, (135.19, 34.69)), line)
    assert not geo_matches(near(910, (135.19, 34.69)), line)


def test_near_zero_distance() -> None:
    assert geo_matches(near(0, SANNOMIYA), point(SANNOMIYA))
    assert not geo_matches(near(0, SANNOMIYA), point(KOBE_CITY_HALL))


# --- the DE-9IM relations ------------------------------------------------------------------------

def test_within() -> None:
    query = query_for("within", "Polygon", CENTRAL_KOBE)
    assert geo_matches(query, point(KOBE_CITY_HALL))
    assert geo_matches(query, point(SANNOMIYA))
    assert geo_matches(query, polygon(SANNOMIYA_BOX))
    assert not geo_matches(query, point(TOKYO_STATION))
    assert not geo_matches(query, point((135.18, 34.69)))    # on the boundary: not within


def test_contains() -> None:
    stored = polygon(CENTRAL_KOBE)
    assert geo_matches(query_for("contains", "Point", list(SANNOMIYA)), stored)
    assert not geo_matches(query_for("contains", "Point", list(TOKYO_STATION)), stored)
    assert geo_matches(query_for("contains", "Polygon", SANNOMIYA_BOX), stored)
    # a point contains nothing bigger than itself
    assert not geo_matches(query_for("contains", "Polygon", SANNOMIYA_BOX), point(SANNOMIYA))


def test_intersects_and_disjoint() -> None:
    kobe_to_osaka = {"type": "LineString",
                     "coordinates": [list(KOBE_CITY_HALL), list(OSAKA_STATION)]}
    tokyo = point(TOKYO_STATION)
    intersects = query_for("intersects", "Polygon", CENTRAL_KOBE)
    disjoint = query_for("disjoint", "Polygon", CENTRAL_KOBE)
    assert geo_matches(intersects, kobe_to_osaka)
    assert not geo_matches(disjoint, kobe_to_osaka)
    assert not geo_matches(intersects, tokyo)
    assert geo_matches(disjoint, tokyo)
    assert geo_matches(intersects, point((135.18, 34.69)))   # boundary touches intersect


def test_overlaps() -> None:
    east = [[[135.20, 34.69], [135.23, 34.69], [135.23, 34.71], [135.20, 34.71], [135.20, 34.69]]]
    query = query_for("overlaps", "Polygon", CENTRAL_KOBE)
    assert geo_matches(query, polygon(east))                 # partial overlap
    assert not geo_matches(query, polygon(SANNOMIYA_BOX))    # fully inside: not an overlap
    assert not geo_matches(query, point(SANNOMIYA))          # different dimension


def test_equals_is_topological() -> None:
    # same square, other starting vertex and opposite winding
    rotated = [[[135.21, 34.70], [135.21, 34.68], [135.18, 34.68], [135.18, 34.70],
                [135.21, 34.70]]]
    query = query_for("equals", "Polygon", CENTRAL_KOBE)
    assert geo_matches(query, polygon(rotated))
    assert not geo_matches(query, polygon(SANNOMIYA_BOX))
    assert geo_matches(query_for("equals", "Point", list(SANNOMIYA)), point(SANNOMIYA))
    multi = {"type": "MultiPolygon", "coordinates": [CENTRAL_KOBE]}
    assert geo_matches(query, multi)


def test_multi_geometries_and_collections() -> None:
    multi_line = {"type": "MultiLineString",
                  "coordinates": [[list(TOKYO_STATION), [139.70, 35.69]],
                                  [list(KOBE_CITY_HALL), list(SANNOMIYA)]]}
    assert geo_matches(query_for("intersects", "Polygon", CENTRAL_KOBE), multi_line)
    collection = {"type": "GeometryCollection",
                  "geometries": [point(TOKYO_STATION), point(SANNOMIYA)]}
    assert geo_matches(near(10, SANNOMIYA), collection)
    assert distance_m(KOBE_CITY_HALL, collection) == pytest.approx(500.7, abs=0.5)
    query = query_for("within", "MultiPolygon", [CENTRAL_KOBE])
    assert geo_matches(query, point(KOBE_CITY_HALL))
    query = query_for("intersects", "MultiPoint", [list(TOKYO_STATION), list(SANNOMIYA)])
    assert geo_matches(query, polygon(CENTRAL_KOBE))
    query = query_for("intersects", "LineString", [[135.0, 34.69], [135.3, 34.69]])
    assert geo_matches(query, polygon(CENTRAL_KOBE))
    query = query_for("intersects", "MultiLineString", [[[135.0, 34.69], [135.3, 34.69]]])
    assert geo_matches(query, polygon(CENTRAL_KOBE))


def test_altitude_is_ignored() -> None:
    query = query_for("within", "Polygon", CENTRAL_KOBE)
    assert geo_matches(query, {"type": "Point", "coordinates": [*SANNOMIYA, 12.5]})


def test_invalid_stored_value_matches_nothing() -> None:
    query = query_for("intersects", "Polygon", CENTRAL_KOBE)
    assert not geo_matches(query, {"type": "Point", "coordinates": [200, 0]})
    assert not geo_matches(query, {"value": 3})
    assert not geo_matches(near(1e7, SANNOMIYA), {"type": "Point"})


def test_self_intersecting_stored_polygon_is_still_compared() -> None:
    bowtie = polygon([[[135.18, 34.68], [135.21, 34.70], [135.21, 34.68], [135.18, 34.70],
                       [135.18, 34.68]]])
    validate_geojson(bowtie)        # well-formed GeoJSON, only topologically invalid
    assert geo_matches(query_for("intersects", "Point", [135.19, 34.6901]), bowtie)
    assert not geo_matches(query_for("intersects", "Point", list(TOKYO_STATION)), bowtie)
    assert distance_m(SANNOMIYA, bowtie) < 1000


# --- parsing -------------------------------------------------------------------------------------

def test_no_geo_params_is_none() -> None:
    assert parse_geoquery(None, None, None, None) is None


def test_parse_query_string_forms() -> None:
    query = parse_geoquery("near;maxDistance==2000", "Point", "[135.19,34.69]", None)
    assert query is not None
    assert query.georel == "near" and query.geoproperty == "location"
    assert query.max_distance == 2000.0 and query.min_distance is None
    assert (query.geometry.x, query.geometry.y) == (135.19, 34.69)
    # percent-encoded coordinates, case-insensitive geometry, spaces, decimal distance
    query = parse_geoquery(" near ; minDistance == 100.5 ", "point", "%5B135.19%2C34.69%5D",
                           "observationSpace")
    assert query is not None
    assert query.min_distance == 100.5 and query.geoproperty == "observationSpace"
    query = parse_geoquery("near;maxDistance==1e3", "Point", " [ 135.19 , 34.69 ] ", None)
    assert query is not None and query.max_distance == 1000.0


def test_parse_geoq_object_form() -> None:
    geo_q: dict[str, Any] = {"georel": "within", "geometry": "Polygon", "coordinates": CENTRAL_KOBE,
             "geoproperty": "https://example.org/area"}
    query = parse_geoquery(geo_q["georel"], geo_q["geometry"], geo_q["coordinates"],
                           geo_q["geoproperty"])
    assert query is not None
    assert query.georel == "within" and query.geoproperty == "https://example.org/area"
    assert geo_matches(query, point(SANNOMIYA))
    # coordinates given as a string inside geoQ is accepted too
    same = parse_geoquery("within", "Polygon", json.dumps(CENTRAL_KOBE), None)
    assert same is not None and same.geometry.equals(query.geometry)


@pytest.mark.parametrize(("args", "fragment"), [
    # incomplete
    (("within", None, None, None), "geometry and coordinates are missing"),
    (("near;maxDistance==10", "Point", None, None), "coordinates is missing"),
    ((None, "Point", "[135,34]", None), "georel is missing"),
    ((None, None, None, "location"), "geoproperty"),
    # georel
    (("nearby", "Point", "[135,34]", None), "Unknown georel"),
    (("Within", "Polygon", json.dumps(CENTRAL_KOBE), None), "Unknown georel"),
    (("", "Point", "[135,34]", None), "Unknown georel"),
    (("near", "Point", "[135,34]", None), "needs a distance"),
    (("near;maxDistance==", "Point", "[135,34]", None), "maxDistance has no value"),
    (("near;maxDistance", "Point", "[135,34]", None), "Invalid near modifier"),
    (("near;maxDistance:2000", "Point", "[135,34]", None), "Invalid near modifier"),
    (("near;maxDistance=2000", "Point", "[135,34]", None), "Invalid near modifier"),
    (("near;distance==2000", "Point", "[135,34]", None), "Invalid near modifier"),
    (("near;maxDistance==-5", "Point", "[135,34]", None), "non-negative number"),
    (("near;maxDistance==abc", "Point", "[135,34]", None), "non-negative number"),
    (("near;maxDistance==nan", "Point", "[135,34]", None), "non-negative number"),
    (("near;maxDistance==1e999", "Point", "[135,34]", None), "too large"),
    (("near;maxDistance==1;maxDistance==2", "Point", "[135,34]", None), "twice"),
    (("near;minDistance==500;maxDistance==100", "Point", "[135,34]", None), "greater than"),
    (("within;maxDistance==5", "Polygon", json.dumps(CENTRAL_KOBE), None), "no modifiers"),
    # geometry
    (("near;maxDistance==10", "Polygon", json.dumps(CENTRAL_KOBE), None), "needs geometry Point"),
    (("near;maxDistance==10", "LineString", "[[135,34],[136,35]]", None), "needs geometry Point"),
    (("within", "Circle", "[135,34]", None), "Unknown geometry"),
    (("within", "GeometryCollection", "[]", None), "cannot be used"),
    # coordinates
    (("near;maxDistance==10", "Point", "[135.19,", None), "not valid JSON"),
    (("near;maxDistance==10", "Point", "135.19,34.69", None), "not valid JSON"),
    (("near;maxDistance==10", "Point", "", None), "empty"),
    (("near;maxDistance==10", "Point", '{"lon": 135}', None), "must be a JSON array"),
    (("near;maxDistance==10", "Point", "[135.19,95]", None), "latitude 95 is outside"),
    (("near;maxDistance==10", "Point", "[-181,34]", None), "longitude -181 is outside"),
    (("near;maxDistance==10", "Point", "[NaN,34]", None), "not valid JSON"),
    (("near;maxDistance==10", "Point", "[Infinity,34]", None), "not valid JSON"),
    (("near;maxDistance==10", "Point", "[1e999,34]", None), "finite"),
    (("near;maxDistance==10", "Point", "[true,34]", None), "must be a number"),
    (("near;maxDistance==10", "Point", '["135",34]', None), "must be a number"),
    (("near;maxDistance==10", "Point", "[135]", None), "2 or 3 numbers"),
    (("near;maxDistance==10", "Point", "[135,34,1,2]", None), "2 or 3 numbers"),
    (("near;maxDistance==10", "Point", "[[135,34]]", None), "got an array of arrays"),
    (("near;maxDistance==10", "Point", "[" * 5000 + "]" * 5000, None), "not valid JSON"),
    (("within", "Polygon", "[[[135.18,34.68],[135.21,34.68],[135.21,34.70],[135.18,34.70]]]",
      None), "must be closed"),
    (("within", "Polygon", "[[[135.18,34.68],[135.21,34.68],[135.18,34.68]]]", None),
     "at least 4"),
    (("within", "Polygon", "[]", None), "at least 1"),
    (("within", "Polygon", "[[135,34],[136,34],[136,35],[135,34]]", None),
     "must be an array of positions"),
    (("within", "Polygon", "[[[135.18,34.68],[135.21,34.70],[135.21,34.68],[135.18,34.70],"
                           "[135.18,34.68]]]", None), "not a valid Polygon"),
    (("intersects", "LineString", "[[135,34]]", None), "at least 2"),
    (("intersects", "MultiPoint", "[]", None), "at least 1"),
    # geoproperty
    (("within", "Polygon", json.dumps(CENTRAL_KOBE), ""), "not a valid attribute name"),
    (("within", "Polygon", json.dumps(CENTRAL_KOBE), "loc ation"), "not a valid attribute name"),
    (("within", "Polygon", json.dumps(CENTRAL_KOBE), "a;b"), "not a valid attribute name"),
])
def test_invalid_geoqueries(args: tuple[Any, Any, Any, Any], fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_geoquery(*args)
    assert fragment in info.value.detail, info.value.detail
    assert info.value.status == 400


def test_error_names_the_offending_position() -> None:
    with pytest.raises(BadRequestData) as info:
        parse_geoquery("within", "Polygon",
                       "[[[135.18,34.68],[135.21,34.68],[135.21,99],[135.18,34.68]]]", None)
    assert info.value.detail.startswith("coordinates[0][2]: latitude 99")


def test_wrong_python_types_are_bad_request() -> None:
    cases: list[tuple[Any, Any, Any, Any]] = [(5, "Point", "[1,2]", None), ("within", 5, "[1,2]", None),
                 ("within", "Point", 5, None), ("within", "Point", "[1,2]", 5),
                 ("within", "Point", {"a": 1}, None)]
    for args in cases:
        with pytest.raises(BadRequestData):
            parse_geoquery(*args)


# --- bbox ----------------------------------------------------------------------------------------

def test_bbox_near_expands_by_distance_with_latitude() -> None:
    bbox = near(2000, SANNOMIYA).bbox()
    assert bbox is not None
    west, south, east, north = bbox
    dlat = math.degrees(2000 / EARTH_RADIUS_M)                  # ~0.01799 deg
    assert north - SANNOMIYA[1] == pytest.approx(dlat, rel=1e-6)
    assert SANNOMIYA[1] - south == pytest.approx(dlat, rel=1e-6)
    dlon = east - SANNOMIYA[0]                                  # wider: ~0.02188 deg at 34.7 N
    assert dlon == pytest.approx(dlat / math.cos(math.radians(SANNOMIYA[1])), rel=1e-4)
    assert SANNOMIYA[0] - west == pytest.approx(dlon, rel=1e-9)
    # the box edges are at 2000 m
    assert haversine_m(*SANNOMIYA, SANNOMIYA[0], north) == pytest.approx(2000, rel=1e-6)


def test_bbox_near_clamps_at_poles_and_antimeridian() -> None:
    bbox = near(10_000, (179.99, 0)).bbox()
    assert bbox is not None
    assert (bbox[0], bbox[2]) == (-180.0, 180.0)
    assert bbox[1] == pytest.approx(-0.0899, abs=1e-3)
    assert bbox[3] == pytest.approx(0.0899, abs=1e-3)
    bbox = near(10_000, (10, 89.95)).bbox()  # reaches the pole
    assert bbox is not None and bbox[0] == -180.0 and bbox[2] == 180.0 and bbox[3] == 90.0
    assert near(30_000_000, (0, 0)).bbox() == (-180.0, -90.0, 180.0, 90.0)


def test_bbox_other_relations() -> None:
    assert near(100, SANNOMIYA, "minDistance").bbox() is None
    assert query_for("disjoint", "Polygon", CENTRAL_KOBE).bbox() is None
    for georel in ("within", "contains", "intersects", "overlaps", "equals"):
        assert query_for(georel, "Polygon", CENTRAL_KOBE).bbox() == (135.18, 34.68, 135.21, 34.70)
    assert query_for("contains", "Point", list(SANNOMIYA)).bbox() == (*SANNOMIYA, *SANNOMIYA)


def test_geometry_bbox() -> None:
    assert geometry_bbox(point(SANNOMIYA)) == (*SANNOMIYA, *SANNOMIYA)
    assert geometry_bbox(polygon(CENTRAL_KOBE)) == (135.18, 34.68, 135.21, 34.70)
    line = {"type": "LineString", "coordinates": [list(TOKYO_STATION), list(KOBE_CITY_HALL)]}
    assert geometry_bbox(line) == (135.1955, 34.6901, 139.7671, 35.6812)


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


lon_offsets = st.floats(-0.3, 0.3, allow_nan=False)
lat_offsets = st.floats(-0.3, 0.3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(lon_offsets, lat_offsets), min_size=1, max_size=4),
       st.floats(0, 40_000), st.sampled_from([SANNOMIYA, (179.9, 0.0), (10.0, 89.8)]))
def test_bbox_never_loses_a_near_match(offsets: list[tuple[float, float]], metres: float,
                                       centre: tuple[float, float]) -> None:
    positions = []
    for dlon, dlat in offsets:
        lon = max(-180.0, min(180.0, centre[0] + dlon))
        lat = max(-90.0, min(90.0, centre[1] + dlat))
        positions.append([lon, lat])
    geometries = [point((positions[0][0], positions[0][1]))]
    if len(positions) >= 2 and positions[0] != positions[1]:
        geometries.append({"type": "LineString", "coordinates": positions})
    query = near(metres, centre)
    bbox = query.bbox()
    assert bbox is not None
    for geometry in geometries:
        if geo_matches(query, geometry):
            assert _intersects(geometry_bbox(geometry), bbox)


# --- GeoJSON validation --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    point(SANNOMIYA),
    {"type": "Point", "coordinates": [135.1953, 34.6946, 20]},
    {"type": "Point", "coordinates": [-180, -90]},
    {"type": "MultiPoint", "coordinates": [list(SANNOMIYA), list(TOKYO_STATION)]},
    {"type": "LineString", "coordinates": [list(SANNOMIYA), list(TOKYO_STATION)]},
    {"type": "MultiLineString", "coordinates": [[list(SANNOMIYA), list(TOKYO_STATION)]]},
    polygon(CENTRAL_KOBE),
    polygon([CENTRAL_KOBE[0], SANNOMIYA_BOX[0]]),              # with a hole
    {"type": "MultiPolygon", "coordinates": [CENTRAL_KOBE, SANNOMIYA_BOX]},
    {"type": "GeometryCollection", "geometries": [point(SANNOMIYA), polygon(CENTRAL_KOBE)]},
    {"type": "GeometryCollection",
     "geometries": [{"type": "GeometryCollection", "geometries": [point(SANNOMIYA)]}]},
    {"type": "Point", "coordinates": [135, 34], "bbox": [135, 34, 135, 34]},
])
def test_valid_geojson(value: dict[str, Any]) -> None:
    validate_geojson(value)
    assert to_shape(value).is_empty is False


@pytest.mark.parametrize(("value", "fragment"), [
    ("Point", "must be an object"),
    ({}, "type must be one of"),
    ({"type": "Circle", "coordinates": [1, 2]}, "type must be one of"),
    ({"type": "point", "coordinates": [1, 2]}, "type must be one of"),
    ({"type": "Point"}, "needs coordinates"),
    ({"type": "Point", "coordinates": [135, 91]}, "latitude 91 is outside"),
    ({"type": "Point", "coordinates": [190, 34]}, "longitude 190 is outside"),
    ({"type": "Point", "coordinates": [135, float("nan")]}, "finite"),
    ({"type": "Point", "coordinates": [135, 34, "high"]}, "altitude"),
    ({"type": "Point", "coordinates": [135, 10**400]}, "outside"),
    ({"type": "LineString", "coordinates": [[135, 34]]}, "at least 2"),
    ({"type": "Polygon", "coordinates": [[[135, 34], [136, 34], [136, 35], [135, 35]]]},
     "must be closed"),
    ({"type": "Polygon", "coordinates": [[[135, 34], [136, 34], [135, 34]]]}, "at least 4"),
    ({"type": "MultiPolygon", "coordinates": CENTRAL_KOBE}, "nesting match"),
    ({"type": "GeometryCollection"}, "geometries"),
    ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 100]}]},
     "geometries[0].coordinates: latitude 100"),
    ({"type": "GeometryCollection", "geometries": [
        {"type": "GeometryCollection", "geometries": [
            {"type": "GeometryCollection", "geometries": [
                {"type": "GeometryCollection", "geometries": [
                    {"type": "GeometryCollection", "geometries": [point(SANNOMIYA)]}]}]}]}]},
     "nest deeper"),
])
def test_invalid_geojson(value: object, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        validate_geojson(value)
    assert fragment in info.value.detail, info.value.detail


def test_to_shape_is_cached_and_raises_bad_request() -> None:
    a = to_shape(polygon(CENTRAL_KOBE))
    b = to_shape(json.loads(json.dumps(polygon(CENTRAL_KOBE))))
    assert a is b
    with pytest.raises(BadRequestData):
        to_shape({"type": "Point", "coordinates": [1, 2, 3, 4]})
    with pytest.raises(BadRequestData):
        to_shape({"type": "Point", "coordinates": [1, object()]})


# --- fuzzing -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
georels = st.one_of(
    st.none(), st.text(max_size=40),
    st.sampled_from(["near", "within", "contains", "intersects", "overlaps", "disjoint",
                     "equals", "near;maxDistance==2000", "near;minDistance==100",
                     "near;maxDistance==", "near;maxDistance==1;minDistance==2"]),
    st.builds(lambda name, value: f"near;{name}=={value}",
              st.sampled_from(["maxDistance", "minDistance", "max", ""]), st.text(max_size=12)),
    st.builds(lambda head, tail: f"{head};{tail}",
              st.sampled_from(["near", "within"]), st.text(max_size=20)),
)
geometries = st.one_of(
    st.none(), st.text(max_size=20),
    st.sampled_from(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                     "MultiPolygon", "GeometryCollection", "point"]),
)
numbers = st.one_of(st.floats(), st.integers(), st.floats(-200, 200))
positions = st.lists(numbers, min_size=0, max_size=4)
coordinate_lists = st.one_of(
    positions, st.lists(positions, max_size=6), st.lists(st.lists(positions, max_size=6),
                                                         max_size=3),
    st.lists(st.lists(st.lists(positions, max_size=6), max_size=2), max_size=2),
    json_values,
)
coordinate_values = st.one_of(
    st.none(), st.text(max_size=60), coordinate_lists,
    coordinate_lists.map(lambda v: json.dumps(v)),
    coordinate_lists.map(lambda v: json.dumps(v).replace("[", "%5B").replace(",", "%2C")),
    st.builds(lambda v, cut: json.dumps(v)[:cut], coordinate_lists, st.integers(0, 40)),
)
anything = st.one_of(st.none(), st.text(max_size=20), json_values)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(georels, geometries, coordinate_values, st.one_of(st.none(), st.text(max_size=20)))
def test_parse_geoquery_only_raises_bad_request(georel: Any, geometry: Any, coordinates: Any,
                                                geoproperty: Any) -> None:
    try:
        query = parse_geoquery(georel, geometry, coordinates, geoproperty)
    except BadRequestData:
        return
    if query is None:
        assert georel is None and geometry is None and coordinates is None
        return
    # a query that parses can be evaluated against any stored value without error
    query.bbox()
    geo_matches(query, point(SANNOMIYA))
    geo_matches(query, polygon(CENTRAL_KOBE))


@settings(max_examples=300, deadline=None)
@given(anything, anything, anything, anything)
def test_parse_geoquery_any_python_values(georel: Any, geometry: Any, coordinates: Any,
                                          geoproperty: Any) -> None:
    with contextlib.suppress(BadRequestData):
        parse_geoquery(georel, geometry, coordinates, geoproperty)


@settings(max_examples=800, deadline=None)
@given(st.one_of(
    json_values,
    st.builds(lambda t, c: {"type": t, "coordinates": c},
              geometries.filter(lambda g: g is not None), coordinate_lists),
    st.builds(lambda gs: {"type": "GeometryCollection", "geometries": gs},
              st.lists(st.builds(lambda c: {"type": "Point", "coordinates": c}, positions),
                       max_size=3)),
))
def test_validate_geojson_only_raises_bad_request(value: Any) -> None:
    try:
        validate_geojson(value)
    except BadRequestData:
        return
    # anything accepted can be turned into a shape and measured
    assert isinstance(geometry_bbox(value), tuple)
    distance_m(SANNOMIYA, value)
    geo_matches(query_for("intersects", "Polygon", CENTRAL_KOBE), value)


lons = st.one_of(st.floats(-180, 180), st.sampled_from([-180.0, 180.0, 0.0, 135.19]))
lats = st.one_of(st.floats(-90, 90), st.sampled_from([-90.0, 90.0, 0.0, 34.69]))
positions_ok = st.tuples(lons, lats).map(list)


def _ring_from(points: list[list[float]]) -> list[list[float]]:
    return [*points, points[0]]


shaped = st.one_of(
    st.tuples(st.just("Point"), positions_ok),
    st.tuples(st.just("MultiPoint"), st.lists(positions_ok, min_size=1, max_size=4)),
    st.tuples(st.just("LineString"), st.lists(positions_ok, min_size=2, max_size=4)),
    st.tuples(st.just("MultiLineString"),
              st.lists(st.lists(positions_ok, min_size=2, max_size=3), min_size=1, max_size=2)),
    st.tuples(st.just("Polygon"),
              st.lists(positions_ok, min_size=3, max_size=5).map(lambda p: [_ring_from(p)])),
    st.tuples(st.just("MultiPolygon"),
              st.lists(st.lists(positions_ok, min_size=3, max_size=4)
                       .map(lambda p: [_ring_from(p)]), min_size=1, max_size=2)),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["near;maxDistance==5000", "near;minDistance==10",
                        "near;minDistance==1;maxDistance==1e7", "within", "contains",
                        "intersects", "overlaps", "disjoint", "equals"]),
       shaped, shaped, st.booleans())
def test_well_formed_queries_evaluate_against_any_geometry(
        georel: str, query_shape: tuple[str, Any], stored_shape: tuple[str, Any],
        as_string: bool) -> None:
    geometry, coordinates = query_shape
    try:
        query = parse_geoquery(georel, geometry,
                               json.dumps(coordinates) if as_string else coordinates, None)
    except BadRequestData:      # near with a non-Point, or a degenerate (invalid) query shape
        return
    assert query is not None
    stored = {"type": stored_shape[0], "coordinates": stored_shape[1]}
    validate_geojson(stored)
    assert isinstance(geo_matches(query, stored), bool)
    bbox = query.bbox()
    if query.georel == "near":
        distance = distance_m(query.geometry, stored)
        assert distance >= 0.0 and math.isfinite(distance)
        if bbox is not None and geo_matches(query, stored):
            assert _intersects(geometry_bbox(stored), bbox)
    elif bbox is not None and geo_matches(query, stored):
        assert _intersects(geometry_bbox(stored), bbox)
