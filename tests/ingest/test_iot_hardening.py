"""IoT agent hardening (ADR 0010): reserved measure names, size caps, poison MQTT messages,
expression limits, foreign command results, tenant names, service paths and registry reloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import httpx
import pytest

from cityos.core.problems import BadRequestData, ServiceUnavailable
from cityos.ingest.iot import evaluate, parse_expression
from cityos.ingest.iot.agent import MAX_GROUPS, MAX_MESSAGE
from cityos.ingest.iot.expressions import MAX_TEXT
from cityos.ingest.iot.mqtt import MqttSouthbound

SERVICE = {"fiware-service": "city", "fiware-servicepath": "/"}
LD = {"NGSILD-Tenant": "city"}


async def _group(client: httpx.AsyncClient, headers: dict[str, str] = SERVICE) -> None:
    r = await client.post("/iot/services", headers=headers, json={"services": [
        {"apikey": "hkey", "entity_type": "Sensor", "resource": "/iot/json"}]})
    assert r.status_code == 201, r.text


async def test_reserved_measure_names_are_refused(client: httpx.AsyncClient) -> None:
    await _group(client)
    assert (await client.post("/iot/json?k=hkey&i=s1", json={"t": 1})).status_code == 200
    for name in ("id", "type", "@context", "createdAt", "modifiedAt"):
        r = await client.post("/iot/json?k=hkey&i=s1", json={name: "urn:x", "t": 2})
        assert r.status_code == 400, (name, r.text)
        assert r.json()["name"] == "WRONG_SYNTAX" and name in r.json()["message"]
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s1", headers=LD)
    assert r.json()["t"]["value"] == 1


async def test_southbound_size_and_group_caps(client: httpx.AsyncClient) -> None:
    await _group(client)
    big = b"[" + b'{"t": 1},' * (MAX_MESSAGE // 9) + b'{"t": 1}]'
    r = await client.post("/iot/json?k=hkey&i=s1", content=big,
                          headers={"content-type": "application/json"})
    assert r.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:       # no Content-Length: read with a cap
        for _ in range(MAX_MESSAGE // 65536 + 2):
            yield b"t|1|" * 16384

    r = await client.post("/iot/d?k=hkey&i=s1", content=chunks())
    assert r.status_code == 413
    many = [{"t": i} for i in range(MAX_GROUPS + 1)]
    r = await client.post("/iot/json?k=hkey&i=s1", json=many)
    assert r.status_code == 413 and "measure groups" in r.json()["message"]
    r = await client.post("/iot/json?k=hkey&i=s1", json=many[:MAX_GROUPS])
    assert r.status_code == 200


class _FakeAgent:
    """Stands in for the IoT agent: fails as told, then succeeds."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.ingested = 0

    async def resolve(self, *_args: Any, **_kw: Any) -> Any:
        if self.errors:
            raise self.errors.pop(0)
        return type("Device", (), {"protocol": "PDI-IoTA-JSON", "tenant": "t",
                                   "device_id": "d"})()

    async def ingest(self, _device: Any, _groups: Any) -> int:
        self.ingested += 1
        return 1


class _FakeClient:
    def __init__(self) -> None:
        self.acks: list[int] = []
        self._client = self

    def ack(self, mid: int, _qos: int) -> None:
        self.acks.append(mid)


def _message(payload: bytes, mid: int = 7) -> aiomqtt.Message:
    return aiomqtt.Message("/json/k/d/attrs", payload, 1, False, mid, None)


@pytest.mark.parametrize("error", [TypeError("unhashable"), BadRequestData("bad name"),
                                   KeyError("device_id"), ValueError("x")])
async def test_poison_mqtt_messages_are_acknowledged_and_counted(error: Exception) -> None:
    consumer = MqttSouthbound(_FakeAgent(error), "mqtt://broker.invalid:1883",  # type: ignore[arg-type]
                              retry_delay=0)
    client = _FakeClient()
    await consumer._handle(client, _message(b'{"t": 1}'))  # type: ignore[arg-type]
    assert client.acks == [7] and consumer.rejected == 1


async def test_oversized_mqtt_payloads_are_rejected() -> None:
    agent = _FakeAgent()
    consumer = MqttSouthbound(agent, "mqtt://broker.invalid:1883")  # type: ignore[arg-type]
    client = _FakeClient()
    payload = b'{"t": "' + b"x" * MAX_MESSAGE + b'"}'                 # valid, but too large
    await consumer._handle(client, _message(payload))  # type: ignore[arg-type]
    assert client.acks == [7] and consumer.rejected == 1 and agent.ingested == 0


async def test_a_store_outage_delays_the_ack_until_the_write_succeeds() -> None:
    down = ServiceUnavailable("store unavailable")
    agent = _FakeAgent(down, down)
    consumer = MqttSouthbound(agent, "mqtt://broker.invalid:1883",  # type: ignore[arg-type]
                              retry_delay=0)
    client = _FakeClient()
    await consumer._handle(client, _message(b'{"t": 1}'))  # type: ignore[arg-type]
    assert client.acks == [7] and consumer.rejected == 0 and agent.ingested == 1


def test_expressions_cannot_blow_up_memory() -> None:
    assert evaluate(parse_expression('replace(s, "", "x")'), {"s": "abc"}) is None
    grow = 'replace(replace(replace(replace(s, "a", "aaaaaaaaaa"), "a", "aaaaaaaaaa"), ' \
           '"a", "aaaaaaaaaa"), "a", "aaaaaaaaaa")'
    assert evaluate(parse_expression(grow), {"s": "a" * 100}) is None
    assert evaluate(parse_expression('concat(s, s)'), {"s": "x" * MAX_TEXT}) is None
    assert evaluate(parse_expression('replace(s, "a", "b")'), {"s": "aXa"}) == "bXb"
