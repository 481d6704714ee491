"""Imports into the broker on both engines, checked through the NGSI-LD API (geo-queries too)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from cityos.ingest.importers import BrokerSink, prepare_csv, run_import
from tests.ingest.test_import_support import KOBE_CITY_HALL, SITES, evacuation_csv

NGSI = "/ngsi-ld/v1"
IMPORTS = "/ingest/v1/imports"
CONTEXT = f"{NGSI}/jsonldContexts/jp-recommended-datasets"
LINK = {"Link": f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; '
                'type="application/ld+json"'}
EVACUATION = "指定緊急避難場所一覧"


async def _upload(client: httpx.AsyncClient, data: bytes, **params: str) -> httpx.Response:
    headers = {"Content-Type": "text/csv"}
    if "tenant" in params:
        headers["NGSILD-Tenant"] = params.pop("tenant")
    return await client.post(IMPORTS, content=data, params=params, headers=headers)


async def _near(client: httpx.AsyncClient, metres: int, **headers: str) -> list[str]:
    params = {"type": EVACUATION, "georel": f"near;maxDistance=={metres}", "geometry": "Point",
              "coordinates": json.dumps(list(KOBE_CITY_HALL)), "limit": "100"}
    response = await client.get(f"{NGSI}/entities", params=params, headers={**LINK, **headers})
    assert response.status_code == 200, response.text
    return sorted(e["名称"]["value"] for e in response.json())


async def test_shift_jis_evacuation_sites_import_and_geo_query(client: httpx.AsyncClient) -> None:
    response = await _upload(client, evacuation_csv(encoding="cp932"), filename="kobe.csv")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["dataset"], report["encoding"]) == (EVACUATION, "cp932")
    assert (report["rows"], report["imported"], report["created"]) == (5, 5, 5)
    assert report["rejected"] == []
    assert await _near(client, 1000) == ["みなとのもり公園", "神戸市役所"]
    oji = await client.get(f"{NGSI}/entities/urn:ngsi-ld:EvacuationSpace:281000-2", headers=LINK)
    body = oji.json()
    assert body["type"] == EVACUATION and body["備考"]["value"] == "髙橋地区の一時避難場所"
    assert body["標高"]["value"] == 30


async def _snapshot(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(f"{NGSI}/entities", headers=LINK,
                                params={"type": EVACUATION, "options": "sysAttrs", "limit": "100"})
    return sorted(response.json(), key=lambda e: e["id"])


def _without_times(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities without their timestamps, except the entity's own ``createdAt``."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("createdAt", "modifiedAt")}
        return value
    return [{**strip(e), "createdAt": e["createdAt"]} for e in entities]


async def test_re_import_changes_nothing_but_timestamps(client: httpx.AsyncClient) -> None:
    data = evacuation_csv(encoding="cp932")
    assert (await _upload(client, data)).json()["created"] == 5
    before = await _snapshot(client)
    again = (await _upload(client, data)).json()
    assert (again["imported"], again["created"], again["updated"]) == (5, 0, 5)
    after = await _snapshot(client)
    assert len(after) == 5
    assert _without_times(after) == _without_times(before)    # values, and entity createdAt
    assert all(a["modifiedAt"] > b["modifiedAt"] for a, b in zip(after, before, strict=True))


async def test_rejected_rows_are_reported_and_the_rest_imported(client: httpx.AsyncClient) -> None:
    rows = [list(r) for r in SITES]
    rows[1][6] = "999"                       # latitude out of range
    rows[2][8] = "三メートル"                  # elevation is a Number
    response = await _upload(client, evacuation_csv(rows=rows, encoding="utf-16"))
    report = response.json()
    assert response.status_code == 200 and report["encoding"] == "utf-16"
    assert report["imported"] == 3
    assert [(r["row"], r["reason"][:15]) for r in report["rejected"]] == \
        [(3, "bad coordinates"), (4, "unparseable num")]


async def test_nothing_importable_is_422_and_unreadable_is_400(client: httpx.AsyncClient) -> None:
    rows = [list(r) for r in SITES[:1]]
    rows[0][1] = ""
    response = await _upload(client, evacuation_csv(rows=rows))
    assert response.status_code == 422
    assert response.json()["rejected"][0]["reason"] == "missing id: column NO is empty"
    response = await _upload(client, b"a,b\n1,2\n")
    assert response.status_code == 400
    assert "--mapping" in response.json()["detail"]
    assert response.headers["content-type"].startswith("application/")


async def test_geojson_upload_and_tenants(client: httpx.AsyncClient) -> None:
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "kobe-port-tower",
         "properties": {"name": "神戸ポートタワー", "height": 108},
         "geometry": {"type": "Point", "coordinates": [135.1867, 34.6826]}}]}
    response = await client.post(IMPORTS, content=json.dumps(collection).encode(),
                                 params={"type": "Landmark"},
                                 headers={"Content-Type": "application/geo+json",
                                          "NGSILD-Tenant": "kobe"})
    assert response.status_code == 200, response.text
    tower = await client.get(f"{NGSI}/entities/urn:ngsi-ld:Landmark:kobe-port-tower",
                             headers={"NGSILD-Tenant": "kobe"})
    assert tower.json()["height"]["value"] == 108
    assert tower.json()["location"]["value"]["coordinates"] == [135.1867, 34.6826]
    other = await client.get(f"{NGSI}/entities/urn:ngsi-ld:Landmark:kobe-port-tower")
    assert other.status_code == 404


async def test_broker_sink_writes_in_chunks(app: Any, client: httpx.AsyncClient) -> None:
    many = [[*SITES[i % 5][:1], str(100 + i), *SITES[i % 5][2:]] for i in range(23)]
    prepared = prepare_csv(evacuation_csv(rows=many))
    seen: list[int] = []
    report = await run_import(prepared, BrokerSink(app.state.broker, "bulk"), chunk_size=5,
                              progress=lambda done, total: seen.append(done))
    assert report.imported == 23 and seen == [5, 10, 15, 20, 23]
    assert len(await _near(client, 100_000, **{"NGSILD-Tenant": "bulk"})) == 23
