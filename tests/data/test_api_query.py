"""Contract tests: GET /entities and POST /entityOperations/query (CIM 009 4.9, 4.17, 5.7.2, 6.23).

Type expressions, id lists, idPattern, the q language, pagination with its documented maximum
(403 TooManyResults), count with NGSILD-Results-Count, and the Query body.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

STATIONS: list[dict[str, Any]] = [
    {"id": "urn:ngsi-ld:WeatherObserved:sannomiya", "type": "WeatherObserved",
     "name": {"type": "Property", "value": "三宮"},
     "temperature": {"type": "Property", "value": 12.5, "observedAt": "2026-11-25T09:00:00+09:00",
                     "accuracy": {"type": "Property", "value": 0.5}},
     "address": {"type": "Property", "value": {"city": "神戸市", "ward": "中央区"}},
     "status": {"type": "Property", "value": "ok"},
     "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:a"}},
    {"id": "urn:ngsi-ld:WeatherObserved:suma", "type": "WeatherObserved",
     "name": {"type": "Property", "value": "須磨"},
     "temperature": {"type": "Property", "value": 8.0, "observedAt": "2026-11-25T06:00:00+09:00",
                     "accuracy": {"type": "Property", "value": 1.5}},
     "address": {"type": "Property", "value": {"city": "神戸市", "ward": "須磨区"}},
     "status": {"type": "Property", "value": "maintenance"}},
    {"id": "urn:ngsi-ld:WeatherObserved:umeda", "type": ["WeatherObserved", "Device"],
     "name": {"type": "Property", "value": "梅田"},
     "temperature": {"type": "Property", "value": 15.0},
     "address": {"type": "Property", "value": {"city": "大阪市", "ward": "北区"}},
     "status": {"type": "Property", "value": "ok"}},
    {"id": "urn:ngsi-ld:Device:a", "type": "Device",
     "battery": {"type": "Property", "value": 0.8}},
]


async def seed(client: httpx.AsyncClient) -> None:
    for entity in STATIONS:
        response = await client.post(f"{BASE}/entities", json=entity)
        assert response.status_code == 201, response.text


async def ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get(f"{BASE}/entities", params=params)
    assert response.status_code == 200, response.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in response.json())


async def test_type_expressions(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert await ids(client, type="WeatherObserved") == ["sannomiya", "suma", "umeda"]
    assert await ids(client, type="Device") == ["a", "umeda"]
    assert await ids(client, type="WeatherObserved,Device") == ["a", "sannomiya", "suma", "umeda"]
    assert await ids(client, type="WeatherObserved|Device") == ["a", "sannomiya", "suma", "umeda"]
    assert await ids(client, type="WeatherObserved;Device") == ["umeda"]
    assert await ids(client, type="(WeatherObserved;Device)|Building") == ["umeda"]
    assert await ids(client, type="Building") == []


async def test_id_list_and_id_pattern(client: httpx.AsyncClient) -> None:
    await seed(client)
    both = "urn:ngsi-ld:WeatherObserved:suma,urn:ngsi-ld:Device:a"
    assert await ids(client, id=both) == ["a", "suma"]
    assert await ids(client, id=both, type="Device") == ["a"]
    assert await ids(client, idPattern="^urn:ngsi-ld:WeatherObserved:s.*") == ["sannomiya", "suma"]
    response = await client.get(f"{BASE}/entities", params={"idPattern": "(unclosed"})
    assert response.status_code == 400


@pytest.mark.parametrize(("q", "expected"), [
    ("temperature>10", ["sannomiya", "umeda"]),
    ("temperature<=8", ["suma"]),
    ("temperature==8.0..13", ["sannomiya", "suma"]),
    ("status==\"ok\"", ["sannomiya", "umeda"]),
    ("status!=\"ok\"", ["suma"]),
    ("status==\"ok\",\"maintenance\"", ["sannomiya", "suma", "umeda"]),
    ("name~=\"^須\"", ["suma"]),
    ("name!~=\"^須\"", ["sannomiya", "umeda"]),
    ("temperature.accuracy<1", ["sannomiya"]),
    ("temperature.observedAt>=2026-11-24T23:00:00Z", ["sannomiya"]),
    ("temperature.observedAt==2026-11-25T09:00:00+09:00", ["sannomiya"]),
    ("address[ward]==\"須磨区\"", ["suma"]),
    ("address[city]==\"神戸市\";temperature>10", ["sannomiya"]),
    ("address[city]==\"大阪市\"|temperature<9", ["suma", "umeda"]),
    ("(status==\"ok\";temperature>13)|name==\"須磨\"", ["suma", "umeda"]),
    ("refDevice==urn:ngsi-ld:Device:a", ["sannomiya"]),
    ("refDevice", ["sannomiya"]),
    ("!refDevice", ["suma", "umeda"]),
])
async def test_q_language(client: httpx.AsyncClient, q: str, expected: list[str]) -> None:
    await seed(client)
    assert await ids(client, type="WeatherObserved", q=q) == expected


async def test_q_syntax_errors_are_400(client: httpx.AsyncClient) -> None:
    for bad in ("temperature>>1", "temperature==", "(status==\"ok\"", "temp erature==1"):
        response = await client.get(f"{BASE}/entities", params={"type": "X", "q": bad})
        assert response.status_code == 400, bad
        assert response.json()["type"] in (ERR + "BadRequestData", ERR + "InvalidRequest")


async def test_query_without_any_filter_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/entities")
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "BadRequestData"


async def test_attrs_as_filter_and_projection(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{BASE}/entities", params={"attrs": "battery"})
    body = response.json()
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Device:a"]
    response = await client.get(f"{BASE}/entities",
                                params={"type": "WeatherObserved", "attrs": "name"})
    assert all(set(e) == {"id", "type", "name"} for e in response.json())


async def test_pagination_limit_offset_and_count(client: httpx.AsyncClient) -> None:
    for n in range(7):
        body = {"id": f"urn:ngsi-ld:ParkingSpot:motomachi-{n}", "type": "ParkingSpot",
                "status": {"type": "Property", "value": "free"}}
        assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    params = {"type": "ParkingSpot", "limit": "3", "offset": "2", "count": "true"}
    response = await client.get(f"{BASE}/entities", params=params)
    assert response.status_code == 200
    assert response.headers["NGSILD-Results-Count"] == "7"
    assert [e["id"][-1] for e in response.json()] == ["2", "3", "4"]
    assert 'rel="next"' in response.headers["link"] and 'rel="prev"' in response.headers["link"]
    only_count = await client.get(f"{BASE}/entities",
                                  params={"type": "ParkingSpot", "limit": "0", "count": "true"})
    assert only_count.json() == [] and only_count.headers["NGSILD-Results-Count"] == "7"
    no_count = await client.get(f"{BASE}/entities", params={"type": "ParkingSpot"})
    assert "NGSILD-Results-Count" not in no_count.headers


async def test_limit_above_the_maximum_is_403_too_many_results(
        client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/entities", params={"type": "X", "limit": "201"})
    assert response.status_code == 403
    assert response.json()["type"] == ERR + "TooManyResults"
    assert (await client.get(f"{BASE}/entities",
                             params={"type": "X", "limit": "200"})).status_code == 200
    for bad in ("-1", "abc"):
        response = await client.get(f"{BASE}/entities", params={"type": "X", "limit": bad})
        assert response.status_code == 400


async def test_post_query_with_a_query_body(client: httpx.AsyncClient) -> None:
    await seed(client)
    query = {"type": "Query", "entities": [{"type": "WeatherObserved"}],
             "q": "temperature>10", "attrs": ["temperature"]}
    response = await client.post(f"{BASE}/entityOperations/query", json=query,
                                 params={"count": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(e["id"] for e in body) == ["urn:ngsi-ld:WeatherObserved:sannomiya",
                                             "urn:ngsi-ld:WeatherObserved:umeda"]
    assert all(set(e) == {"id", "type", "temperature"} for e in body)
    assert response.headers["NGSILD-Results-Count"] == "2"
    pattern = {"type": "Query", "entities": [{"idPattern": ".*:s.*", "type": "WeatherObserved"}]}
    response = await client.post(f"{BASE}/entityOperations/query", json=pattern)
    assert len(response.json()) == 2


async def test_post_query_rejects_a_body_that_is_not_a_query(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entityOperations/query",
                                 json={"entities": [{"type": "X"}]})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "BadRequestData"


async def test_query_results_use_insertion_order(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{BASE}/entities", params={"type": "WeatherObserved"})
    assert [e["id"] for e in response.json()] == [s["id"] for s in STATIONS[:3]]


# ETSI 018_18 / 019_18 (clause 4.21): attrs, pick and omit are mutually exclusive, on query and
# retrieve alike (as on the temporal API, 020_22 / 021_22); each pair is 400 BadRequestData.
PROJECTION_PAIRS = [
    ("019_18_01 same member in pick and omit", {"pick": "name", "omit": "name"}),
    ("019_18_02 pick and attrs", {"pick": "name", "attrs": "status"}),
    ("019_18_03 omit and attrs", {"omit": "name", "attrs": "status"}),
]


@pytest.mark.parametrize(("etsi", "params"), PROJECTION_PAIRS, ids=[p[0] for p in PROJECTION_PAIRS])
async def test_019_18_query_refuses_combined_projections(client: httpx.AsyncClient, etsi: str,
                                                         params: dict[str, str]) -> None:
    await seed(client)
    response = await client.get(f"{BASE}/entities",
                                params={"type": "WeatherObserved,Device", **params})
    assert response.status_code == 400, etsi
    assert response.json()["type"] == ERR + "BadRequestData"
    assert response.json()["title"]


@pytest.mark.parametrize(("etsi", "params"), PROJECTION_PAIRS, ids=[p[0] for p in PROJECTION_PAIRS])
async def test_018_18_retrieve_refuses_combined_projections(client: httpx.AsyncClient, etsi: str,
                                                            params: dict[str, str]) -> None:
    await seed(client)
    response = await client.get(f"{BASE}/entities/{STATIONS[0]['id']}", params=params)
    assert response.status_code == 400, etsi.replace("019", "018")
    assert response.json()["type"] == ERR + "BadRequestData"


async def test_omit_and_pick_alone_still_shape_the_answer(client: httpx.AsyncClient) -> None:
    await seed(client)
    url = f"{BASE}/entities/{STATIONS[0]['id']}"
    omitted = (await client.get(url, params={"omit": "name,address,temperature,refDevice",
                                             "options": "keyValues"})).json()
    assert omitted == {"id": STATIONS[0]["id"], "type": "WeatherObserved", "status": "ok"}
    picked = (await client.get(url, params={"pick": "id,name", "options": "keyValues"})).json()
    assert picked == {"id": STATIONS[0]["id"], "name": "三宮"}
    attrs = (await client.get(url, params={"attrs": "status", "options": "keyValues"})).json()
    assert attrs == {"id": STATIONS[0]["id"], "type": "WeatherObserved", "status": "ok"}
