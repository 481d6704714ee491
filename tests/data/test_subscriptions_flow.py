"""Subscriptions as a client lives them, through the API of the real app on both engines: pause
and resume, expiry, throttling, deletion with showChanges, periodic notifications, and a hanging
endpoint that must not hold back another subscription.  A real HTTP receiver gets everything."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.data.test_notify_support import Receiver, notifying_client, receiver

BASE = "/ngsi-ld/v1"
JST = timezone(timedelta(hours=9))


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with notifying_client(database_url) as c:
        yield c


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


def kind() -> str:
    return f"RiverGauge{uuid.uuid4().hex[:6]}"


async def subscribe(client: httpx.AsyncClient, uri: str, **members: Any) -> str:
    notification = {"endpoint": {"uri": uri}, "format": "keyValues",
                    **members.pop("notification", {})}
    body = {"type": "Subscription", "notification": notification, **members}
    response = await client.post(f"{BASE}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.headers["Location"]).rsplit("/", 1)[-1]


async def write(client: httpx.AsyncClient, entity_type: str, n: int, level: float) -> None:
    entity_id = f"urn:ngsi-ld:{entity_type}:{n}"
    got = await client.patch(f"{BASE}/entities/{entity_id}/attrs",
                             json={"level": {"type": "Property", "value": level}})
    if got.status_code == 404:
        got = await client.post(f"{BASE}/entities", json={
            "id": entity_id, "type": entity_type, "name": {"type": "Property", "value": "生田川"},
            "level": {"type": "Property", "value": level}})
    assert got.status_code in (201, 204), got.text


async def quiet(rec: Receiver, count: int, seconds: float = 0.6) -> bool:
    """True when no more than ``count`` notifications arrived within ``seconds``."""
    await asyncio.sleep(seconds)
    return len(rec.received) <= count


async def test_paused_subscription_is_silent_until_resumed(client: httpx.AsyncClient,
                                                           rec: Receiver) -> None:
    t = kind()
    sub = await subscribe(client, rec.url(), entities=[{"type": t}])
    await write(client, t, 1, 1.0)
    await rec.wait_for(lambda r: len(r) == 1)
    paused = await client.patch(f"{BASE}/subscriptions/{sub}", json={"isActive": False})
    assert paused.status_code == 204
    assert (await client.get(f"{BASE}/subscriptions/{sub}")).json()["status"] == "paused"
    await write(client, t, 1, 2.0)
    assert await quiet(rec, 1)
    await client.patch(f"{BASE}/subscriptions/{sub}", json={"isActive": True})
    await write(client, t, 1, 3.0)
    got = await rec.wait_for(lambda r: len(r) == 2)
    assert got[1].body["data"][0]["level"] == 3.0      # the paused change was not sent later
    assert (await client.get(f"{BASE}/subscriptions/{sub}")).json()["status"] == "active"


async def test_expired_subscription_stops_notifying(client: httpx.AsyncClient,
                                                    rec: Receiver) -> None:
    t = kind()
    expires = (datetime.now(JST) + timedelta(seconds=1.5)).isoformat(timespec="milliseconds")
    sub = await subscribe(client, rec.url(), entities=[{"type": t}], expiresAt=expires)
    await write(client, t, 1, 1.0)
    await rec.wait_for(lambda r: len(r) == 1)
    await asyncio.sleep(1.6)
    await write(client, t, 1, 2.0)
    assert await quiet(rec, 1)
    assert (await client.get(f"{BASE}/subscriptions/{sub}")).json()["status"] == "expired"


async def test_throttling_spaces_notifications_and_loses_nothing(client: httpx.AsyncClient,
                                                                  rec: Receiver) -> None:
    t = kind()
    await subscribe(client, rec.url(), entities=[{"type": t}], throttling=1)
    for level in range(1, 6):
        await write(client, t, 1, float(level))
    got = await rec.wait_for(lambda r: sum(len(n.body["data"]) for n in r) >= 5, timeout=5)
    # the first change goes out at once, the four made during the throttle wait together
    assert len(got) == 2
    levels = [e["level"] for n in got for e in n.body["data"]]
    assert levels == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_throttled_notifications_are_at_least_the_throttle_apart(
        client: httpx.AsyncClient, rec: Receiver) -> None:
    t = kind()
    await subscribe(client, rec.url(), entities=[{"type": t}], throttling=1)
    seen: list[float] = []
    await write(client, t, 1, 1.0)
    await rec.wait_for(lambda r: len(r) == 1)
    seen.append(time.monotonic())
    await write(client, t, 1, 2.0)
    await rec.wait_for(lambda r: len(r) == 2, timeout=3)
    seen.append(time.monotonic())
    assert seen[1] - seen[0] >= 0.9


async def test_deletion_and_show_changes(client: httpx.AsyncClient, rec: Receiver) -> None:
    t = kind()
    await subscribe(client, rec.url(), entities=[{"type": t}],
                    notificationTrigger=["attributeUpdated", "entityDeleted"],
                    notification={"format": "normalized", "showChanges": True})
    await write(client, t, 1, 1.0)                      # created: not a chosen trigger
    await write(client, t, 1, 2.5)
    got = await rec.wait_for(lambda r: len(r) == 1)
    updated = got[0].body["data"][0]
    assert updated["level"]["value"] == 2.5
    assert updated["level"]["previousValue"] == 1.0
    deleted = await client.delete(f"{BASE}/entities/urn:ngsi-ld:{t}:1")
    assert deleted.status_code == 204
    got = await rec.wait_for(lambda r: len(r) == 2)
    gone = got[1].body["data"][0]
    assert gone["id"] == f"urn:ngsi-ld:{t}:1"
    assert "deletedAt" in gone


async def test_periodic_subscription_sends_the_current_state(client: httpx.AsyncClient,
                                                             rec: Receiver) -> None:
    t = kind()
    await write(client, t, 1, 4.2)
    await subscribe(client, rec.url(), entities=[{"type": t}], timeInterval=1)
    got = await rec.wait_for(lambda r: len(r) >= 2, timeout=4)
    assert all(n.body["data"][0]["level"] == 4.2 for n in got[:2])


async def test_hanging_endpoint_does_not_delay_another_subscription(
        client: httpx.AsyncClient, rec: Receiver) -> None:
    t = kind()
    rec.hang.add("/stuck")
    stuck = await subscribe(client, rec.url("/stuck"), entities=[{"type": t}])
    await subscribe(client, rec.url("/healthy"), entities=[{"type": t}])
    started = time.monotonic()
    for level in range(3):
        await write(client, t, 1, float(level))
    await rec.wait_for(lambda r: len(rec.entity_ids("/healthy")) == 3, timeout=3)
    assert time.monotonic() - started < 1.0        # far below one attempt's 0.5 s timeout x 3

    async def failed() -> dict[str, Any]:
        doc: dict[str, Any] = (await client.get(f"{BASE}/subscriptions/{stuck}")).json()
        return doc["notification"]

    for _ in range(60):
        if (await failed()).get("timesFailed", 0) >= 1:
            break
        await asyncio.sleep(0.1)
    notification = await failed()
    assert notification["timesFailed"] >= 1
    assert notification["status"] == "failed"
    assert "lastFailure" in notification
