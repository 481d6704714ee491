"""Contract tests: geo-queries over HTTP (CIM 009 4.10, 5.7.2): every georel, geoproperty other
than location, and geoQ in POST /entityOperations/query."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

# real places in Kobe (lon, lat)
CITY_HALL = [135.1955, 34.6901]
SANNOMIYA = [135.1953, 34.6946]
PORT_TOWER = [135.1866, 34.6826]
SUMA = [135.1264, 34.6437]
# central Kobe box, containing the city hall and Sannomiya but not Suma
CENTRAL = [[[135.18, 34.68], [135.21, 34.68], [135.21, 34.70], [135.18, 34.70], [135.18, 34.68]]]
# a park polygon stored as a GeoProperty
PARK = [[[135.19, 34.685], [135.20, 34.685], [135.20, 34.692], [135.19, 34.692], [135.19, 34.685]]]


def point(coords: list[float]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coords}}


PLACES: list[dict[str, Any]] = [
    {"id": "urn:ngsi-ld:PointOfInterest:city-hall", "type": "PointOfInterest",
     "name": {"type": "Property", "value": "神戸市役所"}, "location": point(CITY_HALL),
     "entrance": point(SANNOMIYA)},
    {"id": "urn:ngsi-ld:PointOfInterest:sannomiya", "type": "PointOfInterest",
     "location": point(SANNOMIYA)},
    {"id": "urn:ngsi-ld:PointOfInterest:port-tower", "type": "PointOfInterest",
     "location": point(PORT_TOWER)},
    {"id": "urn:ngsi-ld:PointOfInterest:suma", "type": "PointOfInterest",
     "location": point(SUMA)},
    {"id": "urn:ngsi-ld:Park:higashi-yuenchi", "type": "Park",
     "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": PARK}}},
]


async def seed(client: httpx.AsyncClient) -> None:
    for place in PLACES:
        response = await client.post(f"{BASE}/entities", json=place)
        assert response.status_code == 201, response.text


async def found(client: httpx.AsyncClient, georel: str, geometry: str, coordinates: Any,
                **extra: str) -> list[str]:
    params = {"georel": georel, "geometry": geometry, "coordinates": json.dumps(coordinates),
              "local": "true", **extra}
    response = await client.get(f"{BASE}/entities", params=params)
    assert response.status_code == 200, response.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in response.json())


async def test_near_max_and_min_distance(client: httpx.AsyncClient) -> None:
    await seed(client)
    # city hall <-> Sannomiya is about 500 m, Port Tower about 1.2 km, Suma about 7 km
    assert await found(client, "near;maxDistance==600", "Point", CITY_HALL,
                       type="PointOfInterest") == ["city-hall", "sannomiya"]
    assert await found(client, "near;minDistance==1000", "Point", CITY_HALL,
                       type="PointOfInterest") == ["port-tower", "suma"]
    assert await found(client, "near;minDistance==1000;maxDistance==2000", "Point", CITY_HALL,
                       type="PointOfInterest") == ["port-tower"]


@pytest.mark.parametrize(("georel", "geometry", "coordinates", "expected"), [
    ("within", "Polygon", CENTRAL, ["city-hall", "higashi-yuenchi", "port-tower", "sannomiya"]),
    ("intersects", "Polygon", PARK, ["city-hall", "higashi-yuenchi"]),
    ("contains", "Point", [135.195, 34.688], ["higashi-yuenchi"]),
    ("disjoint", "Polygon", CENTRAL, ["suma"]),
    ("equals", "Point", SUMA, ["suma"]),
    ("overlaps", "Polygon", [[[135.195, 34.68], [135.21, 34.68], [135.21, 34.69],
                              [135.195, 34.69], [135.195, 34.68]]], ["higashi-yuenchi"]),
])
async def test_georels(client: httpx.AsyncClient, georel: str, geometry: str,
                       coordinates: Any, expected: list[str]) -> None:
    await seed(client)
    assert await found(client, georel, geometry, coordinates) == expected


async def test_other_geoproperty(client: httpx.AsyncClient) -> None:
    await seed(client)
    # only the city hall has an entrance, and it lies at Sannomiya
    assert await found(client, "near;maxDistance==50", "Point", SANNOMIYA,
                       geoproperty="entrance") == ["city-hall"]
    assert await found(client, "near;maxDistance==50", "Point", SANNOMIYA) == ["sannomiya"]


async def test_geo_query_errors_are_400(client: httpx.AsyncClient) -> None:
    bad: list[dict[str, str]] = [
        {"georel": "near;maxDistance==100", "geometry": "Point"},            # no coordinates
        {"georel": "nearby", "geometry": "Point", "coordinates": "[135,34]"},
        {"georel": "near;maxDistance==100", "geometry": "Polygon",
         "coordinates": json.dumps(CENTRAL)},
        {"georel": "within", "geometry": "Point", "coordinates": "[200,34]"},
        {"georel": "within", "geometry": "Polygon", "coordinates": "[[1,2"},
    ]
    for params in bad:
        response = await client.get(f"{BASE}/entities", params={**params, "type": "X"})
        assert response.status_code == 400, params
        assert response.json()["type"] == ERR + "BadRequestData"


async def test_geo_q_in_a_query_body(client: httpx.AsyncClient) -> None:
    await seed(client)
    query = {"type": "Query", "entities": [{"type": "PointOfInterest"}],
             "geoQ": {"georel": "near;maxDistance==600", "geometry": "Point",
                      "coordinates": CITY_HALL}}
    response = await client.post(f"{BASE}/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    assert sorted(e["id"] for e in response.json()) == [
        "urn:ngsi-ld:PointOfInterest:city-hall", "urn:ngsi-ld:PointOfInterest:sannomiya"]
    query["geoQ"] = {"georel": "within", "geometry": "Polygon", "coordinates": PARK,
                     "geoproperty": "entrance"}
    response = await client.post(f"{BASE}/entityOperations/query", json=query)
    assert response.json() == []


async def test_geo_query_combines_with_q_and_count(client: httpx.AsyncClient) -> None:
    await seed(client)
    params = {"type": "PointOfInterest", "georel": "within", "geometry": "Polygon",
              "coordinates": json.dumps(CENTRAL), "q": "name==\"神戸市役所\"", "count": "true"}
    response = await client.get(f"{BASE}/entities", params=params)
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:PointOfInterest:city-hall"]
    assert response.headers["NGSILD-Results-Count"] == "1"
