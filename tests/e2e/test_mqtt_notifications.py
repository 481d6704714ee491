"""MQTT notifications through the whole stack: a subscription made over HTTP on a real
``cityos serve``, a write, and a subscriber on the real Mosquitto broker (127.0.0.1:1883)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson

from tests.e2e.server import running_server

BASE = "/ngsi-ld/v1"


async def _subscribe_write_receive(base: str, topic: str, kind: str) -> dict[str, Any]:
    async with aiomqtt.Client("127.0.0.1", 1883) as mqtt:
        await mqtt.subscribe(topic, qos=1)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            sub = {"type": "Subscription", "entities": [{"type": kind}],
                   "notificationTrigger": ["entityCreated", "attributeUpdated"],
                   "notification": {"format": "concise", "endpoint": {
                       "uri": f"mqtt://127.0.0.1:1883/{topic}",
                       "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
                       "receiverInfo": [{"key": "X-City", "value": "Kobe"}]}}}
            created = await client.post(f"{BASE}/subscriptions", json=sub)
            assert created.status_code == 201, created.text
            entity = {"id": f"urn:ngsi-ld:{kind}:sannomiya", "type": kind,
                      "peopleCount": {"type": "Property", "value": 42,
                                      "observedAt": "2026-11-26T09:00:00+09:00"}}
            assert (await client.post(f"{BASE}/entities", json=entity)).status_code == 201
        async with asyncio.timeout(15):
            async for message in mqtt.messages:
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                received: dict[str, Any] = orjson.loads(payload)
                return received
    raise AssertionError("no MQTT message")


def test_mqtt_endpoint_receives_ngsi_ld_message(database_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mqtt.db'}" if database_url == "sqlite://" else database_url
    run = uuid.uuid4().hex[:8]
    kind, topic = f"CrowdCounter{run}", f"cityos-test/{run}/crowd"
    with running_server(url, env={"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1"}) as base:
        message = asyncio.run(_subscribe_write_receive(base, topic, kind))
    assert message["metadata"]["X-City"] == "Kobe"
    assert message["metadata"]["Content-Type"].startswith("application/json")
    body = message["body"]
    assert body["type"] == "Notification"
    [entity] = body["data"]
    assert entity["id"] == f"urn:ngsi-ld:{kind}:sannomiya"
    assert entity["peopleCount"]["value"] == 42
    assert entity["peopleCount"]["observedAt"] == "2026-11-26T00:00:00.000Z"
