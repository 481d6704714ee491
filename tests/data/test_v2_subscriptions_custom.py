"""NGSI v2 subscriptions: httpCustom (method, headers, qs), failures reported in Orion's counters,
typePattern / geo / mq conditions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web

from tests.data.test_notify_support import notifying_client, receiver
from tests.data.test_v2_subscriptions_delivery import data, subscribe


@asynccontextmanager
async def any_method_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver answering every method, recording method, query, headers and body."""
    got: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        got.append({"method": request.method, "query": dict(request.query),
                    "headers": dict(request.headers), "body": await request.json()})
        arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook?fixed=1", got
    finally:
        await runner.cleanup()


async def test_http_custom_method_headers_and_query(database_url: str) -> None:
    async with any_method_receiver() as (url, got), notifying_client(database_url) as c:
        sub_id = await subscribe(c, {
            "subject": {"entities": [{"id": "R1", "type": "Room"}]},
            "notification": {"httpCustom": {"url": url, "method": "PUT",
                                            "headers": {"X-City": "Kobe"},
                                            "qs": {"source": "cityos"}},
                             "attrsFormat": "keyValues"}}, headers={"Fiware-Service": "kobe"})
        r = await c.post("/v2/entities?options=keyValues", headers={"Fiware-Service": "kobe"},
                         json={"id": "R1", "type": "Room", "temperature": 21})
        assert r.status_code == 201
        async with asyncio.timeout(5):
            while not got:
                await asyncio.sleep(0.02)
        note = got[0]
        assert note["method"] == "PUT"
        assert note["query"] == {"fixed": "1", "source": "cityos"}
        assert note["headers"]["X-City"] == "Kobe"
        assert note["headers"]["Fiware-Service"] == "kobe"
        assert note["headers"]["Fiware-ServicePath"] == "/"
        assert note["body"] == {"subscriptionId": sub_id,
                                "data": [{"id": "R1", "type": "Room", "temperature": 21}]}


async def _notification(c: httpx.AsyncClient, sub_id: str, member: str) -> dict[str, Any]:
    for _ in range(200):
        body = (await c.get(f"/v2/subscriptions/{sub_id}")).json()
        if member in body["notification"]:
            return dict(body)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{member} never appeared")


async def test_failures_show_failed_status_and_counters(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        rec.statuses = [500, 500, 500]          # the first try and both retries fail
        sub_id = await subscribe(c, {"subject": {"entities": [{"idPattern": ".*"}]},
                                     "notification": {"http": {"url": rec.url()}}})
        await c.post("/v2/entities?options=keyValues", json={"id": "R1", "type": "Room"})
        body = await _notification(c, sub_id, "failsCounter")
        for _ in range(200):                    # the retries are still counting
            if body["notification"]["failsCounter"] == 3:
                break
            body = (await c.get(f"/v2/subscriptions/{sub_id}")).json()
            await asyncio.sleep(0.02)
        notification = body["notification"]
        assert body["status"] == "failed"
        assert notification["failsCounter"] == 3 and notification["timesSent"] == 3
        assert notification["lastFailureReason"] == "the receiver answered HTTP 500"
        assert "lastSuccess" not in notification
        # the receiver recovers: the next notification succeeds and the status is active again
        await c.post("/v2/entities?options=keyValues", json={"id": "R2", "type": "Room"})
        await rec.wait_for(lambda got: len(got) == 1)
        body = await _notification(c, sub_id, "lastSuccess")
        assert body["status"] == "active"
        assert "failsCounter" not in body["notification"]
        assert body["notification"]["lastSuccessCode"] == 200
        # GET's document can be written back: the counters are not stored as if written
        r = await c.patch(f"/v2/subscriptions/{sub_id}",
                          json={"notification": body["notification"]})
        assert r.status_code == 204, r.text


async def test_type_pattern_geo_and_metadata_conditions(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        await subscribe(c, {
            "subject": {"entities": [{"idPattern": "^Sensor", "typePattern": "^Air"}],
                        "condition": {"expression": {
                            "georel": "near;maxDistance:1000", "geometry": "point",
                            "coords": "34.69,135.19", "mq": "no2.accuracy<0.5"}}},
            "notification": {"http": {"url": rec.url()}, "attrsFormat": "keyValues",
                             "attrs": ["no2"]}})

        async def sensor(entity_id: str, entity_type: str, lat: float, accuracy: float) -> None:
            r = await c.post("/v2/entities", json={
                "id": entity_id, "type": entity_type,
                "location": {"type": "geo:point", "value": f"{lat}, 135.19"},
                "no2": {"type": "Number", "value": 40,
                        "metadata": {"accuracy": {"type": "Number", "value": accuracy}}}})
            assert r.status_code == 201, r.text

        await sensor("SensorFar", "AirQualityObserved", 35.69, 0.1)      # 111 km away
        await sensor("SensorVague", "AirQualityObserved", 34.69, 0.9)    # mq fails
        await sensor("SensorNoise", "NoiseLevelObserved", 34.69, 0.1)    # typePattern fails
        await sensor("Other", "AirQualityObserved", 34.69, 0.1)          # idPattern fails
        await sensor("SensorNear", "AirQualityObserved", 34.691, 0.1)
        got = await rec.wait_for(lambda got: len(got) >= 1)
        assert data(got, "/notify") == [{"id": "SensorNear", "type": "AirQualityObserved",
                                         "no2": 40}]
