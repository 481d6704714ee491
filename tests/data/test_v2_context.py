"""CITYOS_V2_CONTEXT: the v2 face names types, attributes and metadata through a domain @context
(a hosted one here), on both engines; without it the core context alone (other test_v2_* files).

Each test starts the app twice on one database: first without the setting, to host the context
(and, for the subscription test, store a v2 subscription), then with the setting pointing at it,
as an operator would after hosting the city's context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from cityos.app import create_app
from cityos.core.settings import Settings
from cityos.data.ngsiv2 import V2ContextError
from cityos.data.ngsiv2.names import context_urls
from tests.conftest import _empty_postgres
from tests.data.test_notify_support import receiver

LD = "/ngsi-ld/v1"
CIO = "https://cio-context.fiware-testbed.jp/dataset#"
SDM_PARK = "https://smartdatamodels.org/dataModel.ParksAndGardens/Park"
CONTEXT = {"cio": CIO, "公園一覧": "cio:公園一覧", "名称": "cio:名称", "面積": "cio:面積",
           "精度": "cio:精度", "Park": SDM_PARK}
PARK_ID = "urn:ngsi-ld:Park:kobe:higashi-yuenchi"


@asynccontextmanager
async def started(database_url: str, **values: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app on ``database_url`` (not emptied) and a client talking to it in-process."""
    settings = Settings.load(database_url=database_url, notification_allow="127.0.0.1",
                             notification_backoff=0.05, notification_retries=1,
                             context_fetch_enabled=False, **values)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            yield app, c


@pytest.fixture
async def database(database_url: str, tmp_path: Path) -> str:
    """A database that survives a restart (SQLite in a file), empty at first."""
    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
        return database_url
    return f"sqlite:///{tmp_path / 'v2-context.db'}"


async def host_context(c: httpx.AsyncClient) -> str:
    """Host :data:`CONTEXT`; its ``/ngsi-ld/v1/jsonldContexts/{id}`` path."""
    r = await c.post(f"{LD}/jsonldContexts", json={"@context": CONTEXT})
    assert r.status_code == 201, r.text
    return str(r.headers["location"])


@pytest.fixture
async def hosted(database: str) -> str:
    """The hosted context's path, on :func:`database` (first start-up, no setting)."""
    async with started(database) as (_, c):
        return await host_context(c)


def link(path: str) -> dict[str, str]:
    """NGSI-LD headers naming the hosted context (absolute, as a client would)."""
    return {"Link": f'<http://cityos.test{path}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"', "Content-Type": "application/json"}


def park(entity_id: str, name: str, area: float, entity_type: str = "公園一覧") -> dict[str, Any]:
    """An NGSI-LD entity in the hosted context's short names."""
    return {"id": entity_id, "type": entity_type,
            "名称": {"type": "Property", "value": name},
            "面積": {"type": "Property", "value": area, "unitCode": "MTK"}}


async def test_ngsi_ld_entity_reads_in_v2_with_short_names(database: str, hosted: str) -> None:
    async with started(database, v2_context=hosted) as (_, c):
        r = await c.post(f"{LD}/entities", headers=link(hosted),
                         json=park(PARK_ID, "東遊園地", 16000))
        assert r.status_code == 201, r.text
        body = (await c.get(f"/v2/entities/{PARK_ID}")).json()
        assert body == {"id": PARK_ID, "type": "公園一覧",
                        "名称": {"type": "Text", "value": "東遊園地", "metadata": {}},
                        "面積": {"type": "Number", "value": 16000, "metadata": {
                            "unitCode": {"type": "Text", "value": "MTK"}}}}
        assert (await c.get("/v2/types", params={"options": "values"})).json() == ["公園一覧"]
        described = (await c.get("/v2/types/公園一覧")).json()
        assert described["attrs"] == {"名称": {"types": ["Text"]}, "面積": {"types": ["Number"]}}
        value = await c.get(f"/v2/entities/{PARK_ID}/attrs/名称/value")
        assert value.status_code == 200 and value.json() == "東遊園地"


async def test_q_attrs_and_type_filter_by_short_name(database: str, hosted: str) -> None:
    async with started(database, v2_context=hosted) as (_, c):
        for n, (name, area, kind) in enumerate((("東遊園地", 16000, "公園一覧"),
                                                ("メリケンパーク", 8000, "公園一覧"),
                                                ("みなと公園", 3000, "Park"))):
            r = await c.post(f"{LD}/entities", headers=link(hosted),
                             json=park(f"urn:ngsi-ld:Park:{n}", name, area, kind))
            assert r.status_code == 201, r.text
        found = (await c.get("/v2/entities", params={"q": "名称==東遊園地"})).json()
        assert [e["id"] for e in found] == ["urn:ngsi-ld:Park:0"]
        big = await c.get("/v2/entities", params={"q": "面積>5000", "attrs": "名称",
                                                   "options": "keyValues", "orderBy": "名称"})
        assert big.json() == [{"id": "urn:ngsi-ld:Park:1", "type": "公園一覧", "名称": "メリケンパーク"},
                              {"id": "urn:ngsi-ld:Park:0", "type": "公園一覧", "名称": "東遊園地"}]
        typed = (await c.get("/v2/entities", params={"type": "Park"})).json()
        assert [e["id"] for e in typed] == ["urn:ngsi-ld:Park:2"]
        counted = await c.get("/v2/entities", params={"type": "公園一覧", "options": "count"})
        assert counted.headers["Fiware-Total-Count"] == "2"
        by_type = await c.get("/v2/entities/urn:ngsi-ld:Park:2", params={"type": "Park"})
        assert by_type.status_code == 200 and by_type.json()["type"] == "Park"
        query = await c.post("/v2/op/query", json={
            "entities": [{"idPattern": ".*", "type": "公園一覧"}], "attrs": ["面積"],
            "expression": {"q": "名称~=パーク"}}, params={"options": "keyValues"})
        assert query.json() == [{"id": "urn:ngsi-ld:Park:1", "type": "公園一覧", "面積": 8000}]
        none = await c.get("/v2/entities", params={"type": "公園"})   # a name no context defines
        assert none.status_code == 400


async def test_v2_write_reads_through_ngsi_ld_as_the_same_names(database: str, hosted: str) -> None:
    async with started(database, v2_context=hosted) as (app, c):
        r = await c.post("/v2/entities", json={
            "id": PARK_ID, "type": "公園一覧", "名称": {"value": "東遊園地"},
            "面積": {"value": 16000, "metadata": {"精度": {"value": "測量"}}}})
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v2/entities/{PARK_ID}?type={quote('公園一覧')}"
        r = await c.post("/v2/op/update", json={"actionType": "append", "entities": [
            {"id": PARK_ID, "type": "公園一覧", "名称": {"value": "東遊園地（三宮）"}}]})
        assert r.status_code == 204, r.text
        ld = (await c.get(f"{LD}/entities/{PARK_ID}", headers=link(hosted))).json()
        assert ld["type"] == "公園一覧"
        assert ld["名称"]["value"] == "東遊園地（三宮）"
        assert ld["面積"]["value"] == 16000 and ld["面積"]["精度"]["value"] == "測量"
        stored = await app.state.broker.store.get("", PARK_ID)
        assert stored["type"] == [f"{CIO}公園一覧"]
        assert set(stored["attrs"]) == {f"{CIO}名称", f"{CIO}面積"}
        assert f"{CIO}精度" in stored["attrs"][f"{CIO}面積"][0]["sub"]
        r = await c.put(f"/v2/entities/{PARK_ID}/attrs/面積/value", content=b"16500",
                        headers={"Content-Type": "text/plain"})
        assert r.status_code == 204, r.text
        core = (await c.get(f"{LD}/entities/{PARK_ID}")).json()   # no Link: full IRIs
        assert core["type"] == f"{CIO}公園一覧" and core[f"{CIO}面積"]["value"] == 16500


async def test_v2_subscriptions_notify_with_short_names(database: str) -> None:
    async with receiver() as rec:
        async with started(database) as (_, c):
            path = await host_context(c)
            r = await c.post("/v2/subscriptions", json={   # stored before the setting
                "subject": {"entities": [{"idPattern": ".*", "type": "Park"}]},
                "notification": {"http": {"url": rec.url("/earlier")}}})
            assert r.status_code == 201, r.text
        async with started(database, v2_context=path) as (_, c):
            r = await c.post("/v2/subscriptions", json={
                "subject": {"entities": [{"idPattern": ".*", "type": "公園一覧"}],
                            "condition": {"attrs": ["名称"], "expression": {"q": "面積>5000"}}},
                "notification": {"http": {"url": rec.url("/parks")}, "attrs": ["名称"],
                                 "attrsFormat": "keyValues"}})
            assert r.status_code == 201, r.text
            listed = (await c.get("/v2/subscriptions")).json()
            assert {s["subject"]["entities"][0]["type"] for s in listed} == {"Park", "公園一覧"}
            for entity in (park("urn:ngsi-ld:Park:small", "小公園", 100),
                           park(PARK_ID, "東遊園地", 16000),
                           park("urn:ngsi-ld:Park:sdm", "みなと公園", 3000, "Park")):
                r = await c.post(f"{LD}/entities", headers=link(path), json=entity)
                assert r.status_code == 201, r.text
            got = await rec.wait_for(lambda got: {g.path for g in got} == {"/parks", "/earlier"})
            by_path = {g.path: g.body["data"] for g in got}
            assert by_path["/parks"] == [{"id": PARK_ID, "type": "公園一覧", "名称": "東遊園地"}]
            assert by_path["/earlier"] == [{
                "id": "urn:ngsi-ld:Park:sdm", "type": "Park",
                "名称": {"type": "Text", "value": "みなと公園", "metadata": {}},
                "面積": {"type": "Number", "value": 3000, "metadata": {
                    "unitCode": {"type": "Text", "value": "MTK"}}}}]


async def test_without_the_setting_domain_names_stay_iris(database: str, hosted: str) -> None:
    async with started(database) as (_, c):
        r = await c.post(f"{LD}/entities", headers=link(hosted), json=park(PARK_ID, "東遊園地", 1))
        assert r.status_code == 201, r.text
        body = (await c.get(f"/v2/entities/{PARK_ID}")).json()
        assert body["type"] == f"{CIO}公園一覧" and f"{CIO}名称" in body
        assert (await c.get("/v2/entities", params={"q": "名称==東遊園地"})).json() == []
        assert (await c.get("/v2/entities", params={"type": "公園一覧"})).status_code == 400


async def test_a_context_that_cannot_be_resolved_stops_start_up(database: str) -> None:
    for setting, reason in (("/ngsi-ld/v1/jsonldContexts/missing", "no context is hosted at"),
                            ("ftp://example.jp/context.jsonld", "is neither an http"),
                            ("https://example.jp/context.jsonld", "disabled on this server")):
        app = create_app(Settings.load(database_url=database, v2_context=setting,
                                       context_fetch_enabled=False))
        with pytest.raises(V2ContextError, match=reason):
            async with app.router.lifespan_context(app):
                pass
        await app.state.broker.store.close()


def test_setting_lists_urls_in_order() -> None:
    assert context_urls("") == []
    assert context_urls(" /ngsi-ld/v1/jsonldContexts/a , https://x.jp/c.jsonld,") == [
        "/ngsi-ld/v1/jsonldContexts/a", "https://x.jp/c.jsonld"]


async def test_demo_v2_face_uses_the_demo_context(database: str) -> None:
    async with started(database, demo=True) as (_, c):
        found = (await c.get("/v2/entities", params={"q": "名称==東遊園地", "attrs": "名称",
                                                     "options": "keyValues"})).json()
        assert [e["名称"] for e in found] == ["東遊園地"]
        assert "指定緊急避難場所一覧" in (await c.get("/v2/types",
                                              params={"options": "values"})).json()
