"""Commands to actuators over HTTP (AS-CT-1): an NGSI-LD update reaches the device's endpoint and
its answer, a missing answer or a missing transport end up in {cmd}_status / {cmd}_info."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.core.settings import Settings

LD = {"NGSILD-Tenant": "city"}
H = {"fiware-service": "city"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The test devices listen on 127.0.0.1, which the SSRF policy refuses unless allowed."""
    return Settings.load(database_url=database_url, notification_allow="127.0.0.1")


@pytest.fixture
async def device_endpoint() -> AsyncIterator[tuple[str, list[bytes], list[bytes]]]:
    """A tiny HTTP device: records each command and answers with the next queued body."""
    received: list[bytes] = []
    answers: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), b"0"))
        received.append(await reader.readexactly(length))
        body = answers.pop(0) if answers else b""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/cmd", received, answers


async def status_of(client: httpx.AsyncClient, entity_id: str, command: str,
                    wanted: str) -> dict[str, Any]:
    """The entity once ``{command}_status`` is ``wanted`` (commands run after the write)."""
    for _ in range(300):
        r = await client.get(f"/ngsi-ld/v1/entities/{entity_id}", headers=LD)
        body: dict[str, Any] = r.json()
        if body[f"{command}_status"]["value"] == wanted:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"{command}_status never became {wanted}: {body}")


async def test_an_http_device_runs_the_command_and_answers(
        client: httpx.AsyncClient, device_endpoint: tuple[str, list[bytes], list[bytes]]) -> None:
    url, received, answers = device_endpoint
    answers.append(b"lamp2@switch|switched on")
    r = await client.post("/iot/devices", headers=H, json={"devices": [
        {"device_id": "lamp2", "entity_type": "Streetlight", "endpoint": url,
         "commands": [{"name": "switch", "type": "command"}]}]})
    assert r.status_code == 201, r.text
    r = await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:lamp2/attrs/switch",
                           headers=LD, json={"type": "Property", "value": "on"})
    assert r.status_code == 204
    body = await status_of(client, "urn:ngsi-ld:Streetlight:lamp2", "switch", "OK")
    assert body["switch_info"]["value"] == "switched on"
    assert received == [b"lamp2@switch|on"]


async def test_a_command_without_an_answer_expires(
        client: httpx.AsyncClient, app: Any,
        device_endpoint: tuple[str, list[bytes], list[bytes]]) -> None:
    url, received, _answers = device_endpoint
    app.state.iot_runtime.commands.timeout = 0.2
    await client.post("/iot/devices", headers=H, json={"devices": [
        {"device_id": "sign1", "entity_type": "Signage", "endpoint": url,
         "protocol": "PDI-IoTA-JSON", "commands": [{"name": "show", "type": "command"}]}]})
    r = await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Signage:sign1/attrs/show",
                           headers=LD, json={"type": "Property", "value": "避難所はこちら"})
    assert r.status_code == 204
    await status_of(client, "urn:ngsi-ld:Signage:sign1", "show", "EXPIRED")
    assert received == ['{"show":"避難所はこちら"}'.encode()]


async def test_a_command_to_an_mqtt_device_without_a_broker_is_an_error(
        client: httpx.AsyncClient, app: Any) -> None:
    await client.post("/iot/devices", headers=H, json={"devices": [
        {"device_id": "valve1", "entity_type": "Valve", "transport": "MQTT",
         "commands": [{"name": "open", "type": "command"}]}]})
    r = await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Valve:valve1/attrs/open",
                           headers=LD, json={"type": "Property", "value": "1"})
    assert r.status_code == 204
    body = await status_of(client, "urn:ngsi-ld:Valve:valve1", "open", "ERROR")
    assert "MQTT" in body["open_info"]["value"]
    watcher = app.state.iot_runtime.commands
    sent = watcher.sent
    r = await client.post("/ngsi-ld/v1/entities/urn:ngsi-ld:Valve:valve1/attrs",
                          headers=LD, json={"note": {"type": "Property", "value": "x"}})
    assert r.status_code == 204                              # another attribute: no command
    r = await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Valve:valve1/attrs/open",
                           headers=LD, json={"type": "Property", "value": "2"})
    for _ in range(300):
        if watcher.sent > sent:
            break
        await asyncio.sleep(0.02)
    assert watcher.sent == sent + 1        # the second command only, not the other attribute
