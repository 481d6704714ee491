"""NGSI v2 GET /v2/entities: filters, the simple query language, geo-queries, options (both engines)."""

from __future__ import annotations

from typing import Any

import httpx

ROOMS = [
    {"id": "Room1", "type": "Room", "temperature": 18, "color": "red", "floor": 1,
     "address": {"city": "Kobe", "ward": "Chuo"}, "when": "2026-01-01T00:00:00Z",
     "location": {"type": "Point", "coordinates": [135.19, 34.69]}},
    {"id": "Room2", "type": "Room", "temperature": 22, "color": "light,green", "floor": 2,
     "address": {"city": "Osaka", "ward": "Kita"}, "when": "2026-06-01T00:00:00Z",
     "location": {"type": "Point", "coordinates": [135.50, 34.70]}},
    {"id": "Room3", "type": "Room", "temperature": 30, "color": "blue", "broken": True,
     "address": {"city": "Kobe", "ward": "Nada"}, "when": "2026-12-01T00:00:00Z",
     "location": {"type": "Point", "coordinates": [139.69, 35.69]}},
    {"id": "Car1", "type": "Car", "speed": 50},
]


async def seed(client: httpx.AsyncClient) -> None:
    for item in ROOMS:
        body: dict[str, Any] = {"id": item["id"], "type": item["type"]}
        for name, value in item.items():
            if name in ("id", "type"):
                continue
            kind = "geo:json" if name == "location" else "DateTime" if name == "when" else None
            body[name] = {"value": value, **({"type": kind} if kind else {})}
            if name == "temperature":
                accuracy = item.get("floor", 9)
                body[name]["metadata"] = {"accuracy": {"type": "Number", "value": accuracy}}
        assert (await client.post("/v2/entities", json=body)).status_code == 201


async def ids(client: httpx.AsyncClient, query: str, **headers: str) -> list[str]:
    r = await client.get(f"/v2/entities?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


async def test_filters_by_id_type_and_patterns(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert await ids(client, "type=Room") == ["Room1", "Room2", "Room3"]
    assert await ids(client, "id=Room2,Car1") == ["Room2", "Car1"]
    assert await ids(client, "idPattern=^Room[12]$") == ["Room1", "Room2"]
    assert await ids(client, "idPattern=3") == ["Room3"]
    assert await ids(client, "typePattern=^C") == ["Car1"]
    assert await ids(client, "idPattern=^Room3$|^Car") == ["Room3", "Car1"]
    assert await ids(client, "typePattern=^Ro.m$&idPattern=[^3]$") == ["Room1", "Room2"]
    both = await client.get("/v2/entities?id=Room1&idPattern=R")
    assert both.status_code == 400 and both.json()["error"] == "BadRequest"
    bad = await client.get("/v2/entities?idPattern=(")
    assert bad.status_code == 400


async def test_simple_query_language(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert await ids(client, "q=temperature>20") == ["Room2", "Room3"]
    assert await ids(client, "q=temperature<=22;temperature>=18") == ["Room1", "Room2"]
    assert await ids(client, "q=temperature==18..25") == ["Room1", "Room2"]
    assert await ids(client, "q=temperature!=18") == ["Room2", "Room3"]
    assert await ids(client, "q=temperature:30") == ["Room3"]
    assert await ids(client, "q=color==red,blue") == ["Room1", "Room3"]
    assert await ids(client, "q=color=='light,green'") == ["Room2"]
    assert await ids(client, "q=color~=^bl") == ["Room3"]
    assert await ids(client, "q=broken") == ["Room3"]
    assert await ids(client, "q=!broken&type=Room") == ["Room1", "Room2"]
    assert await ids(client, "q=address.city==Kobe") == ["Room1", "Room3"]
    assert await ids(client, "q=address.city==Kobe;address.ward==Nada") == ["Room3"]
    assert await ids(client, "q=when>2026-03-01T00:00:00Z") == ["Room2", "Room3"]
    assert await ids(client, "q=speed>10") == ["Car1"]
    assert await ids(client, "q=dateCreated>2020-01-01T00:00:00Z;temperature>20") == ["Room2", "Room3"]
    assert await ids(client, "q=dateModified<2020-01-01T00:00:00Z") == []


async def test_metadata_query(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert await ids(client, "mq=temperature.accuracy<2") == ["Room1"]
    assert await ids(client, "mq=temperature.accuracy") == ["Room1", "Room2", "Room3"]
    bad = await client.get("/v2/entities?mq=temperature")
    assert bad.status_code == 400


async def test_query_errors(client: httpx.AsyncClient) -> None:
    for q in ("temperature==", "color~=(", "a=='x", ";"):
        r = await client.get("/v2/entities", params={"q": q})
        assert r.status_code == 400, q
        assert r.json()["error"] == "BadRequest"


async def test_geo_queries(client: httpx.AsyncClient) -> None:
    await seed(client)
    near = "georel=near;maxDistance:40000&geometry=point&coords=34.69,135.19"
    assert await ids(client, near) == ["Room1", "Room2"]
    far = "georel=near;minDistance:100000&geometry=point&coords=34.69,135.19"
    assert await ids(client, far) == ["Room3"]
    box = "georel=coveredBy&geometry=box&coords=34,135;35,136"
    assert await ids(client, box) == ["Room1", "Room2"]
    poly = "georel=intersects&geometry=polygon&coords=35,139;36,139;36,140;35,140;35,139"
    assert await ids(client, poly) == ["Room3"]
    disjoint = "georel=disjoint&geometry=polygon&coords=35,139;36,139;36,140;35,140;35,139"
    assert await ids(client, disjoint) == ["Room1", "Room2"]
    equals = "georel=equals&geometry=point&coords=34.69,135.19"
    assert await ids(client, equals) == ["Room1"]
    ordered = "georel=near;maxDistance:500000&geometry=point&coords=34.70,135.50&orderBy=geo:distance"
    assert await ids(client, ordered) == ["Room2", "Room1", "Room3"]
    for bad in ("georel=near&geometry=point&coords=34,135",
                "georel=within&geometry=point&coords=34,135",
                "georel=coveredBy&geometry=circle&coords=34,135",
                "georel=coveredBy&geometry=polygon&coords=34,135;35,136",
                "georel=near;maxDistance:10&geometry=point&coords=99,135",
                "georel=near;maxDistance:10&geometry=point"):
        r = await client.get(f"/v2/entities?{bad}")
        assert r.status_code == 400, bad


async def test_paging_count_and_order(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.get("/v2/entities?type=Room&limit=2&offset=1&options=count")
    assert [e["id"] for e in r.json()] == ["Room2", "Room3"]
    assert r.headers["fiware-total-count"] == "3"
    assert await ids(client, "type=Room&orderBy=!temperature") == ["Room3", "Room2", "Room1"]
    assert await ids(client, "orderBy=id&limit=2") == ["Car1", "Room1"]
    assert await ids(client, "type=Room&orderBy=color,!id") == ["Room3", "Room2", "Room1"]
    counted = await client.get("/v2/entities?type=Room&orderBy=temperature&limit=1&options=count")
    assert counted.headers["fiware-total-count"] == "3" and counted.json()[0]["id"] == "Room1"
    for bad in ("limit=0", "limit=1001", "limit=x", "offset=-1", "options=nope"):
        assert (await client.get(f"/v2/entities?{bad}")).status_code == 400, bad


async def test_representations(client: httpx.AsyncClient) -> None:
    await seed(client)
    kv = (await client.get("/v2/entities?type=Room&options=keyValues&attrs=temperature")).json()
    assert kv[0] == {"id": "Room1", "type": "Room", "temperature": 18}
    values = (await client.get("/v2/entities?type=Room&options=values&attrs=address.city,floor"))
    assert values.status_code == 200
    rows = (await client.get("/v2/entities?type=Room&options=values&attrs=temperature")).json()
    assert rows == [[18], [22], [30]]
    unique = (await client.get("/v2/entities?type=Room&options=unique&attrs=broken")).json()
    assert unique == [[], [True]]   # repeated rows are left out
    meta = (await client.get("/v2/entities?id=Room1&metadata=accuracy")).json()[0]
    assert meta["temperature"]["metadata"] == {"accuracy": {"type": "Number", "value": 1}}
    no_meta = (await client.get("/v2/entities?id=Room1&metadata=other")).json()[0]
    assert no_meta["temperature"]["metadata"] == {}
