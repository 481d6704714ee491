"""External systems pulled from real local HTTP servers: an Orion-v2-shaped stub, a second CityOS
(``ngsi-ld``), a JSON API, and CSV / GeoJSON files; on both storage engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.ingest.test_import_support import evacuation_csv, serve

SYSTEMS = "/assets/v1/systems"
NGSI = "/ngsi-ld/v1"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Pulls may reach 127.0.0.1 (the stubs); the scheduler looks every 50 ms."""
    return Settings.load(database_url=database_url, max_batch_size=100,
                         notification_allow="127.0.0.1", systems_poll_interval=0.05)


def _orion_entities() -> list[dict[str, Any]]:
    return [{"id": f"kobe-sensor-{n}", "type": "WeatherObserved",
             "temperature": {"type": "Number", "value": 10 + n,
                             "metadata": {"unitCode": {"type": "Text", "value": "CEL"}}},
             "location": {"type": "geo:json",
                          "value": {"type": "Point", "coordinates": [135.19 + n / 100, 34.69]}},
             "refDevice": {"type": "Relationship", "value": f"urn:ngsi-ld:Device:d{n}"},
             "dateObserved": {"type": "DateTime", "value": "2026-11-25T09:00:00+09:00"}}
            for n in range(7)]


@dataclass
class Stub:
    """Orion's /v2/entities (paged, per fiware-service), a JSON API and files; logs requests."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def orion(self, request: Request) -> Response:
        self.requests.append({"path": request.url.path, "params": dict(request.query_params),
                              "service": request.headers.get("fiware-service")})
        if self.fail:
            return Response(b'{"error":"InternalError"}', 500, media_type="application/json")
        rows = _orion_entities() if request.headers.get("fiware-service") == "kobe" else []
        limit, offset = int(request.query_params["limit"]), int(request.query_params["offset"])
        return Response(orjson.dumps(rows[offset:offset + limit]), media_type="application/json",
                        headers={"Fiware-Total-Count": str(len(rows))})

    async def api(self, request: Request) -> Response:
        body = {"data": {"items": [
            {"code": "P1", "name": "三宮駐車場", "free": "12", "geo": {"lat": 34.694, "lon": 135.195}},
            {"code": "P2", "name": "元町駐車場", "free": "many", "geo": {"lat": 34.689, "lon": 135.186}}]}}
        return Response(orjson.dumps(body), media_type="application/json")

    async def csv_file(self, request: Request) -> Response:
        return Response(evacuation_csv(encoding="cp932"), media_type="text/csv")

    async def geojson_file(self, request: Request) -> Response:
        return Response(orjson.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "t1", "properties": {"name": "ポートタワー"},
             "geometry": {"type": "Point", "coordinates": [135.1867, 34.6826]}}]}),
            media_type="application/geo+json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v2/entities", self.orion),
                                 Route("/api/parking", self.api),
                                 Route("/files/evacuation.csv", self.csv_file),
                                 Route("/files/towers.geojson", self.geojson_file)])


@pytest.fixture
async def stub() -> AsyncIterator[tuple[Stub, str]]:
    server = Stub()
    async with serve(server.app()) as base:
        yield server, base


async def _register(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SYSTEMS, json={"enabled": False, **body})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{SYSTEMS}/{body['id']}"
    created: dict[str, Any] = response.json()
    return created


async def _run(client: httpx.AsyncClient, system_id: str) -> dict[str, Any]:
    response = await client.post(f"{SYSTEMS}/{system_id}/run")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_orion_v2_pulled_page_by_page_with_fiware_service(
        client: httpx.AsyncClient, stub: tuple[Stub, str]) -> None:
    server, base = stub
    await _register(client, {"id": "orion", "kind": "orion-v2", "url": base,
                             "options": {"service": "kobe", "servicePath": "/",
                                         "type": "WeatherObserved", "pageSize": 3}})
    outcome = await _run(client, "orion")
    assert outcome["status"] == "ok", outcome
    assert outcome["counts"] == {"pulled": 7, "imported": 7, "created": 7, "rejected": 0}
    assert [r["params"]["offset"] for r in server.requests] == ["0", "3", "6"]
    assert {r["service"] for r in server.requests} == {"kobe"}
    sensor = (await client.get(f"{NGSI}/entities/urn:ngsi-ld:WeatherObserved:kobe-sensor-2")).json()
    assert sensor["temperature"] == {"type": "Property", "value": 12, "unitCode": "CEL"}
    assert sensor["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:d2"}
    assert sensor["location"]["type"] == "GeoProperty"
    again = await _run(client, "orion")
    assert again["counts"]["created"] == 0 and again["runs"] == 2
    listed = (await client.get(f"{NGSI}/entities", params={"type": "WeatherObserved",
                                                           "count": "true"}))
    assert listed.headers["NGSILD-Results-Count"] == "7"


async def test_error_status_and_the_schedule(app: Any, client: httpx.AsyncClient,
                                             stub: tuple[Stub, str]) -> None:
    server, base = stub
    server.fail = True
    scheduler = app.state.systems
    before = scheduler.completed
    await _register(client, {"id": "flaky", "kind": "orion-v2", "url": base, "interval": 3600,
                             "enabled": True, "options": {"service": "kobe"}})
    await scheduler.wait_for(before + 1)          # due at once, pulled by the scheduler
    system = (await client.get(f"{SYSTEMS}/flaky")).json()
    assert system["status"] == "error" and "HTTP 500" in system["lastError"]
    assert system["runs"] == 1 and system["lastRunAt"] < system["nextRunAt"]
    server.fail = False
    fixed = await _run(client, "flaky")             # "run now" does not wait for the interval
    assert fixed["status"] == "ok" and fixed["lastError"] is None
    assert fixed["counts"]["imported"] == 7


async def test_ngsi_ld_pulled_from_a_second_cityos(client: httpx.AsyncClient) -> None:
    other = create_app(Settings.load(database_url="sqlite://", systems_poll_interval=0.0))
    async with serve(other) as base, httpx.AsyncClient(base_url=base) as remote:
        batch = [{"id": f"urn:ngsi-ld:Streetlight:kobe-{n}", "type": "Streetlight",
                  "status": {"type": "Property", "value": "on" if n % 2 else "off"},
                  "location": {"type": "GeoProperty",
                               "value": {"type": "Point", "coordinates": [135.19, 34.69]}}}
                 for n in range(12)]
        assert (await remote.post(f"{NGSI}/entityOperations/create", json=batch,
                                  headers={"NGSILD-Tenant": "city-b"})).status_code == 201
        await _register(client, {"id": "city-b", "kind": "ngsi-ld", "url": base,
                                 "options": {"tenant": "city-b", "type": "Streetlight",
                                             "q": "status==\"on\"", "pageSize": 4}})
        outcome = await _run(client, "city-b")
    assert outcome["status"] == "ok" and outcome["counts"]["imported"] == 6
    light = (await client.get(f"{NGSI}/entities/urn:ngsi-ld:Streetlight:kobe-3")).json()
    assert light["status"]["value"] == "on"


async def test_rest_json_csv_and_geojson_sources(client: httpx.AsyncClient,
                                                 stub: tuple[Stub, str]) -> None:
    _, base = stub
    mapping = {"type": "ParkingSite", "id": "urn:ngsi-ld:ParkingSite:{code}",
               "latitude": "geo.lat", "longitude": "geo.lon",
               "attributes": {"name": "name", "free": {"name": "availableSpotNumber",
                                                       "kind": "integer"}}}
    await _register(client, {"id": "parking", "kind": "rest-json", "url": f"{base}/api/parking",
                             "options": {"selector": "$.data.items[*]", "mapping": mapping}})
    parking = await _run(client, "parking")
    assert parking["status"] == "partial" and parking["counts"]["imported"] == 1
    assert parking["lastError"] == "item 2: unparseable number in column free: 'many'"
    site = (await client.get(f"{NGSI}/entities/urn:ngsi-ld:ParkingSite:P1")).json()
    assert site["availableSpotNumber"]["value"] == 12
    await _register(client, {"id": "evac", "kind": "csv-url", "url": f"{base}/files/evacuation.csv",
                             "options": {"dataset": "10"}})
    assert (await _run(client, "evac"))["counts"]["imported"] == 5
    await _register(client, {"id": "towers", "kind": "geojson-url",
                             "url": f"{base}/files/towers.geojson", "options": {"type": "Tower"}})
    assert (await _run(client, "towers"))["counts"]["imported"] == 1
    assert (await client.get(f"{NGSI}/entities/urn:ngsi-ld:Tower:t1")).status_code == 200
