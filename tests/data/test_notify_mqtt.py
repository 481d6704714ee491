"""MQTT delivery through the real Mosquitto broker on 127.0.0.1:1883."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiomqtt
import orjson
import pytest

from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.notify.mqtt import mqtt_options
from cityos.data.ngsild.subscriptions.model import Endpoint
from tests.data.test_notify_support import (
    MemoryStore,
    Registry,
    eventually,
    free_port,
    make_settings,
    render,
    row,
    running,
    subscription,
)

BROKER = ("127.0.0.1", 1883)


async def _collect(topic: str, count: int, started: asyncio.Event) -> list[Any]:
    """Subscribe to ``topic`` and return the first ``count`` messages (payload, qos)."""
    out: list[Any] = []
    async with aiomqtt.Client(*BROKER, identifier=f"test-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=2)
        started.set()
        async for message in client.messages:
            out.append((orjson.loads(message.payload), message.qos))   # type: ignore[arg-type]
            if len(out) == count:
                return out
    return out


@pytest.mark.parametrize(("qos", "version"), [("0", "mqtt3.1.1"), ("1", "mqtt3.1.1"),
                                              ("2", "mqtt5.0")])
async def test_mqtt_subscriber_gets_metadata_and_body(qos: str, version: str) -> None:
    topic = f"cityos-test/{uuid.uuid4().hex}/parking"
    endpoint = Endpoint(uri=f"mqtt://127.0.0.1:1883/{topic}", accept="application/json",
                        receiver_info=[("X-Tenant-Hint", "kobe")],
                        notifier_info=[("MQTT-QoS", qos), ("MQTT-Version", version)])
    sub = subscription("", endpoint=endpoint)
    registry = Registry(sub)
    started = asyncio.Event()
    collector = asyncio.create_task(_collect(topic, 2, started))
    await asyncio.wait_for(started.wait(), 5)
    async with running(Notifier(MemoryStore(), registry, render, make_settings())) as notifier:
        notifier.submit([row([sub.id], n=1)])
        await eventually(lambda: registry.counters("", sub.id).times_sent == 1)
        notifier.submit([row([sub.id], n=2)])
        messages = await asyncio.wait_for(collector, 5)
    first, received_qos = messages[0]
    assert received_qos == int(qos)
    assert set(first) == {"metadata", "body"}
    assert first["metadata"]["Content-Type"] == "application/json"
    assert first["metadata"]["X-Tenant-Hint"] == "kobe"
    assert first["metadata"]["Link"].startswith("<https://example.org/ctx.jsonld>")
    assert first["body"]["subscriptionId"] == sub.id
    assert first["body"]["data"][0]["id"] == "urn:ngsi-ld:Parking:1"
    assert messages[1][0]["body"]["data"][0]["id"] == "urn:ngsi-ld:Parking:2"
    await eventually(lambda: registry.counters("", sub.id).times_sent == 2)


async def test_unreachable_broker_counts_failures() -> None:
    sub = subscription(f"mqtt://127.0.0.1:{free_port()}/nowhere")
    registry = Registry(sub)
    notifier = Notifier(MemoryStore(), registry, render, make_settings(notification_retries=1))
    async with running(notifier):
        notifier.submit([row([sub.id])])
        await eventually(lambda: notifier.metrics()["givenUp"] == 1)
    assert registry.counters("", sub.id).times_failed == 2


def test_mqtt_options_defaults() -> None:
    assert mqtt_options([]) == (0, "mqtt3.1.1")
    assert mqtt_options([("MQTT-QoS", "2"), ("MQTT-Version", "mqtt5.0")]) == (2, "mqtt5.0")
    assert mqtt_options([("MQTT-QoS", "7"), ("MQTT-Version", "mqtt9")]) == (0, "mqtt3.1.1")
