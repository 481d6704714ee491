"""MQTT notifications checked against the ETSI NGSI-LD test suite's 058_* cases.

A subscription made through the real app (both engines), an entity update, and a subscriber on
a real Mosquitto: the system one on 127.0.0.1:1883 (anonymous), and for the cases with a non
default port or a password a private one this module starts on a free port with its own
password file.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from tests.data.test_conformance_subscriptions import (
    BASE,
    building_id,
    create_building,
    set_air_quality,
    subscribe,
)
from tests.data.test_notify_support import free_port, notifying_client

USER, PASSWORD = "user_with_password", "password"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with notifying_client(database_url, notification_backoff=0.02,
                                notification_retries=2) as c:
        yield c


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Mosquitto on a free port that wants USER / PASSWORD; yields the port."""
    folder = tmp_path_factory.mktemp("mosquitto")
    passwords = folder / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD],
                   check=True, capture_output=True)
    passwords.chmod(0o600)
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                      f"password_file {passwords}\nuser root\npersistence false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(5)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, "mosquitto did not start"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)     # a subprocess's socket has no event to await
    raise AssertionError("mosquitto did not listen")


async def notify_over_mqtt(client: httpx.AsyncClient, uri: str, topic: str, *, port: int = 1883,
                           username: str | None = None, password: str | None = None,
                           endpoint: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    """A Building, a subscription to it notifying ``uri``, an update: (the message, its QoS)."""
    entity = building_id()
    await create_building(client, entity)
    async with aiomqtt.Client("127.0.0.1", port, username=username, password=password,
                              identifier=f"etsi-{uuid.uuid4().hex[:8]}") as mqtt:
        await mqtt.subscribe(topic, qos=2)
        await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                 "notification": {"endpoint": {"uri": uri, **(endpoint or {})}}})
        await set_air_quality(client, entity)
        async with asyncio.timeout(10):
            async for message in mqtt.messages:
                assert isinstance(message.payload, bytes | bytearray)
                received: dict[str, Any] = orjson.loads(message.payload)
                assert received["body"]["data"][0]["id"] == entity
                return received, message.qos
    raise AssertionError("no MQTT message")


def topic() -> str:
    return f"ngsild-test-suite/{uuid.uuid4().hex[:10]}/topic"


async def test_default_port_and_user_without_password(client: httpx.AsyncClient) -> None:
    # ETSI 058_01_01: no port in the URI means 1883
    name = topic()
    await notify_over_mqtt(client, f"mqtt://127.0.0.1/{name}", name)
    # ETSI 058_01_03: a user name without a password
    name = topic()
    await notify_over_mqtt(client, f"mqtt://user@127.0.0.1/{name}", name)


async def test_non_default_port_and_credentials(client: httpx.AsyncClient,
                                                private_broker: int) -> None:
    port = private_broker
    # ETSI 058_01_05: user, password and a non default port (058_01_02 and 058_01_04 are
    # the same path: the port and the credentials come from the URI)
    name = topic()
    await notify_over_mqtt(client, f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{port}/{name}", name,
                           port=port, username=USER, password=PASSWORD)
    # a wrong password is a failed delivery, counted on the subscription
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "notification": {"endpoint": {
                                       "uri": f"mqtt://{USER}:wrong@127.0.0.1:{port}/x"}}})
    await set_air_quality(client, entity)
    async with asyncio.timeout(10):
        while True:
            got = (await client.get(f"{BASE}/subscriptions/{sub}")).json()["notification"]
            if got.get("timesFailed"):
                break
            await asyncio.sleep(0.05)     # the counters are only visible through GET
    assert got["status"] == "failed" and not got.get("timesSent")


@pytest.mark.parametrize(("qos", "expected"), [
    pytest.param(None, 0, id="058_02_01"), pytest.param("1", 1, id="058_02_02"),
    pytest.param("2", 2, id="058_02_03")])
async def test_qos(client: httpx.AsyncClient, qos: str | None, expected: int) -> None:
    name = topic()
    info = {"notifierInfo": [{"key": "MQTT-QoS", "value": qos}]} if qos else {}
    _, received_qos = await notify_over_mqtt(client, f"mqtt://127.0.0.1:1883/{name}", name,
                                             endpoint=info)
    assert received_qos == expected


@pytest.mark.parametrize("version", [
    pytest.param(None, id="058_03_01"), pytest.param("mqtt3.1.1", id="058_03_02"),
    pytest.param("mqtt5.0", id="058_03_03")])
async def test_protocol_versions(client: httpx.AsyncClient, version: str | None) -> None:
    name = topic()
    info = {"notifierInfo": [{"key": "MQTT-Version", "value": version}]} if version else {}
    message, _ = await notify_over_mqtt(client, f"mqtt://127.0.0.1:1883/{name}", name,
                                        endpoint=info)
    assert message["body"]["type"] == "Notification"


async def test_message_is_well_formed(client: httpx.AsyncClient) -> None:
    # ETSI 058_04_01: metadata (Content-Type, Link, receiverInfo) and body
    name = topic()
    message, _ = await notify_over_mqtt(
        client, f"mqtt://127.0.0.1:1883/{name}", name,
        endpoint={"receiverInfo": [{"key": "test-receiver-key", "value": "test-receiver-info"}]})
    metadata, body = message["metadata"], message["body"]
    assert set(message) == {"metadata", "body"}
    assert metadata["Content-Type"] == "application/json"
    assert metadata["Link"].startswith("<")
    assert metadata["test-receiver-key"] == "test-receiver-info"
    assert body["type"] == "Notification"
    assert {"id", "type"} <= set(body["data"][0])

