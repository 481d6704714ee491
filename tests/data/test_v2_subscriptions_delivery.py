"""NGSI v2 subscriptions notify on writes through either face, over HTTP and MQTT (the real
receiver and the real Mosquitto), with throttling, expiry, inactive/oneshot status and restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import orjson

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.data.test_notify_support import Received, notifying_client, receiver

LD = "/ngsi-ld/v1"
JSON = {"content-type": "application/json"}


def subscription(url: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": {"entities": [{"idPattern": ".*", "type": "Room"}]},
                            "notification": {"http": {"url": url}}}
    for key, value in extra.items():
        if key in ("condition",):
            body["subject"][key] = value
        elif key in ("attrs", "attrsFormat", "exceptAttrs", "onlyChangedAttrs", "metadata"):
            body["notification"][key] = value
        else:
            body[key] = value
    return body


async def subscribe(c: httpx.AsyncClient, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> str:
    r = await c.post("/v2/subscriptions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


def data(received: list[Received], path: str) -> list[Any]:
    return [d for r in received if r.path == path for d in r.body["data"]]


async def test_v2_subscription_fires_on_ngsi_ld_write(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        sub_id = await subscribe(c, subscription(
            rec.url("/hot"), condition={"attrs": ["temperature"],
                                        "expression": {"q": "temperature>40"}},
            attrs=["temperature"]), headers={"Fiware-Service": "kobe"})
        for n, value in ((1, 20), (2, 45)):
            r = await c.post(f"{LD}/entities", headers={**JSON, "NGSILD-Tenant": "kobe"}, json={
                "id": f"urn:ngsi-ld:Room:{n}", "type": "Room", "scope": "/Hyogo",
                "temperature": {"type": "Property", "value": value, "unitCode": "CEL"},
                "humidity": {"type": "Property", "value": 50}})
            assert r.status_code == 201, r.text
        got = await rec.wait_for(lambda got: len(got) >= 1)
        note = got[0]
        assert note.body == {"subscriptionId": sub_id, "data": [{
            "id": "urn:ngsi-ld:Room:2", "type": "Room",
            "temperature": {"type": "Number", "value": 45, "metadata": {
                "unitCode": {"type": "Text", "value": "CEL"}}}}]}
        assert note.headers["Fiware-Service"] == "kobe"
        assert note.headers["Fiware-ServicePath"] == "/Hyogo"
        assert note.headers["Ngsiv2-AttrsFormat"] == "normalized"
        assert note.headers["Content-Type"].startswith("application/json")

        async def counted() -> dict[str, Any]:
            return dict((await c.get(f"/v2/subscriptions/{sub_id}",
                                     headers={"Fiware-Service": "kobe"})).json()["notification"])
        for _ in range(100):
            if "timesSent" in await counted():
                break
            await asyncio.sleep(0.02)
        counters = await counted()
        assert counters["timesSent"] == 1 and counters["lastSuccessCode"] == 200
        assert counters["lastSuccess"] == counters["lastNotification"]


async def test_both_kinds_fire_on_a_v2_write_with_service_paths(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        madrid = await subscribe(c, subscription(rec.url("/madrid"), attrsFormat="keyValues",
                                                 exceptAttrs=["humidity"]),
                                 headers={"Fiware-ServicePath": "/Madrid/#"})
        ld = {"id": "urn:ngsi-ld:Subscription:rooms", "type": "Subscription",
              "entities": [{"type": "Room"}],
              "notification": {"endpoint": {"uri": rec.url("/ld")}}}
        assert (await c.post(f"{LD}/subscriptions", json=ld, headers=JSON)).status_code == 201
        for room, path in (("R1", "/Barcelona"), ("R2", "/Madrid/Centro")):
            r = await c.post("/v2/entities?options=keyValues", headers={"Fiware-ServicePath": path},
                             json={"id": room, "type": "Room", "temperature": 21, "humidity": 40})
            assert r.status_code == 201, r.text
        got = await rec.wait_for(lambda got: len(data(got, "/ld")) >= 2
                                 and len(data(got, "/madrid")) >= 1)
        assert data(got, "/madrid") == [{"id": "R2", "type": "Room", "temperature": 21}]
        madrid_note = next(r for r in got if r.path == "/madrid")
        assert madrid_note.body["subscriptionId"] == madrid
        assert madrid_note.headers["Fiware-ServicePath"] == "/Madrid/Centro"
        assert madrid_note.headers["Ngsiv2-AttrsFormat"] == "keyValues"
        assert sorted(d["id"] for d in data(got, "/ld")) == ["urn:ngsi-v2:R1", "urn:ngsi-v2:R2"]
        assert all(d["temperature"]["type"] == "Property" for d in data(got, "/ld"))


async def test_values_only_changed_attrs_and_alteration_types(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        await subscribe(c, subscription(rec.url("/changed"), attrsFormat="values",
                                        onlyChangedAttrs=True,
                                        attrs=["temperature", "humidity"],
                                        condition={"alterationTypes": ["entityChange"]}))
        await subscribe(c, subscription(rec.url("/deleted"), attrs=["alterationType", "humidity"],
                                        attrsFormat="keyValues",
                                        condition={"alterationTypes": ["entityDelete"]}))
        await subscribe(c, subscription(rec.url("/legacy"), attrsFormat="legacy",
                                        attrs=["temperature"],
                                        condition={"alterationTypes": ["entityCreate"]}))
        r = await c.post("/v2/entities?options=keyValues",
                         json={"id": "R1", "type": "Room", "temperature": 21, "humidity": 40})
        assert r.status_code == 201
        r = await c.patch("/v2/entities/R1/attrs?options=keyValues", json={"humidity": 41})
        assert r.status_code == 204
        assert (await c.delete("/v2/entities/R1")).status_code == 204
        got = await rec.wait_for(lambda got: {r.path for r in got} >= {"/changed", "/deleted",
                                                                      "/legacy"})
        assert data(got, "/changed") == [[41]]             # the create was not an entityChange
        assert data(got, "/deleted") == [{"id": "R1", "type": "Room", "humidity": 41,
                                          "alterationType": "entityDelete"}]
        legacy = next(r for r in got if r.path == "/legacy").body
        assert legacy["contextResponses"] == [{
            "contextElement": {"attributes": [{"name": "temperature", "type": "Number",
                                               "value": 21}],
                               "type": "Room", "isPattern": "false", "id": "R1"},
            "statusCode": {"code": "200", "reasonPhrase": "OK"}}]


async def test_v2_notification_over_mqtt(database_url: str) -> None:
    topic = f"cityos-test/{uuid.uuid4().hex}/rooms"
    started = asyncio.Event()

    async def collect() -> tuple[Any, int]:
        async with aiomqtt.Client("127.0.0.1", 1883,
                                  identifier=f"test-{uuid.uuid4().hex[:8]}") as mqtt:
            await mqtt.subscribe(topic, qos=1)
            started.set()
            async for message in mqtt.messages:
                return orjson.loads(message.payload), message.qos   # type: ignore[arg-type]
        raise AssertionError("no message")

    collector = asyncio.create_task(collect())
    await asyncio.wait_for(started.wait(), 5)
    async with notifying_client(database_url) as c:
        sub_id = await subscribe(c, {
            "subject": {"entities": [{"id": "R1"}]},
            "notification": {"mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": topic, "qos": 1},
                             "attrsFormat": "keyValues"}})
        r = await c.post("/v2/entities?options=keyValues",
                         json={"id": "R1", "type": "Room", "temperature": 21})
        assert r.status_code == 201
        payload, qos = await asyncio.wait_for(collector, 5)
    assert qos == 1
    assert payload == {"subscriptionId": sub_id,
                       "data": [{"id": "R1", "type": "Room", "temperature": 21}]}


async def test_throttling_holds_changes_for_one_later_notification(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        await subscribe(c, subscription(rec.url(), throttling=2, attrsFormat="keyValues"))
        for n in range(3):
            r = await c.post("/v2/entities?options=keyValues",
                             json={"id": f"R{n}", "type": "Room", "n": n})
            assert r.status_code == 201
            if n == 0:
                await rec.wait_for(lambda got: len(got) == 1)
        got = await rec.wait_for(lambda got: len(data(got, "/notify")) == 3)
        assert len(got) == 2                                   # R1 and R2 waited together
        assert [d["id"] for d in got[1].body["data"]] == ["R1", "R2"]


async def test_expired_inactive_and_oneshot(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        live = await subscribe(c, subscription(rec.url("/live"), expires="2099-01-01T00:00:00Z"))
        expired = await subscribe(c, subscription(rec.url("/expired"),
                                                  expires="2099-01-01T00:00:00Z"))
        r = await c.patch(f"/v2/subscriptions/{expired}", json={"expires": "2020-01-01T00:00:00Z"})
        assert r.status_code == 204
        paused = await subscribe(c, subscription(rec.url("/paused"), status="inactive"))
        once = await subscribe(c, subscription(rec.url("/once"), status="oneshot"))
        for n in range(2):
            await c.post("/v2/entities?options=keyValues", json={"id": f"R{n}", "type": "Room"})
            await rec.wait_for(lambda got, n=n: len(data(got, "/live")) == n + 1
                               and any(r.path == "/once" for r in got))
        paths = [r.path for r in rec.received]
        assert "/expired" not in paths and "/paused" not in paths
        assert paths.count("/once") == 1

        async def status(sub_id: str) -> str:
            return str((await c.get(f"/v2/subscriptions/{sub_id}")).json()["status"])
        assert await status(live) == "active"
        assert await status(expired) == "expired"
        assert await status(paused) == "inactive"
        for _ in range(100):
            if await status(once) == "inactive":
                break
            await asyncio.sleep(0.02)
        assert await status(once) == "inactive"
        # re-activated: the next change is notified
        assert (await c.patch(f"/v2/subscriptions/{paused}",
                              json={"status": "active"})).status_code == 204
        await c.post("/v2/entities?options=keyValues", json={"id": "R9", "type": "Room"})
        got = await rec.wait_for(lambda got: bool(data(got, "/paused")))
        assert [d["id"] for d in data(got, "/paused")] == ["R9"]


@asynccontextmanager
async def started(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app on ``url`` (not emptied), notifications allowed to the local receiver."""
    app = create_app(Settings.load(database_url=url, notification_allow="127.0.0.1",
                                   notification_backoff=0.05, notification_timeout=0.5))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
        yield c


async def test_restart_reloads_the_v2_subscription(database_url: str, tmp_path: Any) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/restart.db"
    else:
        url = database_url
        async with notifying_client(database_url):   # empties PostgreSQL
            pass
    async with receiver() as rec:
        async with started(url) as c:
            sub_id = await subscribe(c, subscription(rec.url(), attrsFormat="keyValues",
                                                     throttling=0),
                                     headers={"Fiware-ServicePath": "/Kobe/#"})
        async with started(url) as c:
            listed = (await c.get("/v2/subscriptions")).json()
            assert [s["id"] for s in listed] == [sub_id]
            await c.post("/v2/entities?options=keyValues", headers={"Fiware-ServicePath": "/Osaka"},
                         json={"id": "Out", "type": "Room"})
            await c.post("/v2/entities?options=keyValues", headers={"Fiware-ServicePath": "/Kobe"},
                         json={"id": "In", "type": "Room", "t": 1})
            got = await rec.wait_for(lambda got: len(got) >= 1)
            assert data(got, "/notify") == [{"id": "In", "type": "Room", "t": 1}]
            ld_list = (await c.get(f"{LD}/subscriptions")).json()
            assert ld_list == []
