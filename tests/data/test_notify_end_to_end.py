"""The whole path on the real app (SQLite): subscribe through the API, write an entity, the real
receiver gets the notification, the outbox row is gone and the counters show it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.data.test_notify_support import Receiver, receiver

BASE = "/ngsi-ld/v1"
CONTEXT = {"Parking": "https://example.org/Parking", "free": "https://example.org/free"}


@pytest.fixture
async def api(tmp_path: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = Settings.load(database_url=f"sqlite:///{tmp_path}/e2e.db",
                             notification_allow="127.0.0.1", notification_backoff=0.05)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            yield app, c


async def _subscribe(client: httpx.AsyncClient, rec: Receiver) -> str:
    body = {"type": "Subscription", "entities": [{"type": "Parking"}],
            "notification": {"endpoint": {"uri": rec.url(), "accept": "application/json"}},
            "@context": CONTEXT}
    response = await client.post(f"{BASE}/subscriptions", json=body,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    return str(response.headers["Location"]).rsplit("/", 1)[-1]


async def test_write_is_notified_through_the_api(api: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = api
    async with receiver() as rec:
        sub_id = await _subscribe(client, rec)
        entity = {"id": "urn:ngsi-ld:Parking:e2e-1", "type": "Parking",
                  "free": {"type": "Property", "value": 12}, "@context": CONTEXT}
        created = await client.post(f"{BASE}/entities", json=entity,
                                    headers={"Content-Type": "application/ld+json"})
        assert created.status_code == 201, created.text
        got = await rec.wait_for(lambda r: len(r) >= 1)
        note = got[0].body
        assert note["subscriptionId"] == sub_id
        assert note["data"][0]["id"] == "urn:ngsi-ld:Parking:e2e-1"
        assert got[0].headers["Content-Type"].startswith("application/json")

        async def times_sent() -> Any:
            doc = (await client.get(f"{BASE}/subscriptions/{sub_id}")).json()
            return doc["notification"].get("timesSent")

        for _ in range(100):
            if await times_sent() == 1:
                break
            await asyncio.sleep(0.05)
        assert await times_sent() == 1


async def test_private_endpoint_is_refused_by_the_api(api: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = api
    body = {"type": "Subscription", "entities": [{"type": "Parking"}],
            "notification": {"endpoint": {"uri": "http://169.254.169.254/latest"}},
            "@context": CONTEXT}
    response = await client.post(f"{BASE}/subscriptions", json=body,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 400
    assert "CITYOS_NOTIFICATION_ALLOW" in response.json()["detail"]
