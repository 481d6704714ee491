"""Device provisioning guards (ADR 0010): command endpoints obey the SSRF policy, API keys are
validated and belong to one tenant, invalid stored documents do not stop the registry."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.data.ngsild.notify import EndpointPolicy
from cityos.ingest.iot.commands import MAX_ANSWER, CommandSender

A = {"fiware-service": "citya"}
B = {"fiware-service": "cityb"}


async def test_a_private_command_endpoint_is_refused_at_provisioning(
        client: httpx.AsyncClient) -> None:
    for url in ("http://127.0.0.1:8080/cmd", "http://169.254.169.254/latest/meta-data",
                "http://localhost/cmd", "http://[::1]/x", "http://10.0.0.5/"):
        r = await client.post("/iot/devices", headers=A, json={"devices": [
            {"device_id": "evil", "endpoint": url, "commands": [{"name": "go"}]}]})
        assert r.status_code == 400, (url, r.text)
        assert "CITYOS_NOTIFICATION_ALLOW" in r.json()["message"]
    r = await client.post("/iot/devices", headers=A, json={"devices": [{"device_id": "ok"}]})
    assert r.status_code == 201
    r = await client.put("/iot/devices/ok", headers=A, json={"endpoint": "http://127.0.0.1/"})
    assert r.status_code == 400
    r = await client.get("/iot/devices", headers=A)
    assert [d["device_id"] for d in r.json()["devices"]] == ["ok"]
    assert "endpoint" not in r.json()["devices"][0]


@pytest.fixture
async def local_device() -> AsyncIterator[tuple[int, list[bytes], list[bytes]]]:
    """A local HTTP server: records each request head and answers with the queued reply."""
    heads: list[bytes] = []
    replies: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), b"0"))
        await reader.readexactly(length)
        writer.write(replies.pop(0))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], heads, replies


def _resolve_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every name resolve to 127.0.0.1 (what a rebinding DNS server would do)."""
    loop = asyncio.get_running_loop()

    async def fake(host: str, port: Any, **_kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", fake)


def _reply(status: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s"
            % (status.encode(), len(body), extra, body))


async def test_the_sender_checks_the_resolved_address_and_connects_to_it(
        monkeypatch: pytest.MonkeyPatch,
        local_device: tuple[int, list[bytes], list[bytes]]) -> None:
    port, heads, replies = local_device
    _resolve_to_loopback(monkeypatch)
    device = {"device_id": "d1", "endpoint": f"http://device.example.jp:{port}/cmd"}
    status, info = await CommandSender(None, EndpointPolicy())("t", device, "go", "1")
    assert status == "ERROR" and "127.0.0.1" in info and heads == []      # rebinding refused
    allowed = CommandSender(None, EndpointPolicy(allow="127.0.0.1"))
    replies.append(_reply("200 OK", b"d1@go|done"))
    assert await allowed("t", device, "go", "1") == ("OK", "done")
    assert f"host: device.example.jp:{port}".encode() in heads[0].lower()   # same request
    replies.append(_reply("302 Found", b"", b"Location: http://169.254.169.254/\r\n"))
    status, info = await allowed("t", device, "go", "1")
    assert (status, len(heads)) == ("ERROR", 2) and "302" in info        # not followed
    replies.append(_reply("200 OK", b"x" * (MAX_ANSWER + 10)))
    status, info = await allowed("t", device, "go", "1")
    assert status == "ERROR" and "more than" in info


async def test_a_non_string_apikey_is_refused_and_nothing_is_stored(
        client: httpx.AsyncClient) -> None:
    for apikey in (123, ["k"], {"a": 1}, True, "bad key!"):
        r = await client.post("/iot/devices", headers=A, json={"devices": [
            {"device_id": "d1", "apikey": apikey}]})
        assert r.status_code == 400, (apikey, r.text)
        assert r.json()["name"] == "WRONG_SYNTAX"
    r = await client.get("/iot/devices", headers=A)
    assert r.json()["count"] == 0
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:d1",
                         headers={"NGSILD-Tenant": "citya"})
    assert r.status_code == 404


async def test_invalid_stored_documents_are_skipped_on_load(
        client: httpx.AsyncClient, app: Any) -> None:
    r = await client.post("/iot/devices", headers=A, json={"devices": [
        {"device_id": "good", "apikey": "k1"}]})
    assert r.status_code == 201
    registry = app.state.iot_runtime.devices.registry
    await registry.store.put_document("iot-device", "citya", "bad", {
        "device_id": "bad", "apikey": 123, "entity_type": "Thing", "entity_name": "x"})
    await registry.store.put_document("iot-group", "citya", "x", {"apikey": ["no"]})
    await registry.load()
    assert set(registry.devices) == {("citya", "good")}


async def test_an_apikey_belongs_to_one_tenant(client: httpx.AsyncClient) -> None:
    r = await client.post("/iot/services", headers=A, json={"services": [
        {"apikey": "shared", "resource": "/iot/d", "entity_type": "Sensor"}]})
    assert r.status_code == 201
    r = await client.post("/iot/devices", headers=A, json={"devices": [
        {"device_id": "s1", "apikey": "shared"}]})
    assert r.status_code == 201
    # another tenant can neither reuse the key for a group (any resource) nor for a device
    r = await client.post("/iot/services", headers=B, json={"services": [
        {"apikey": "shared", "resource": "/iot/json", "entity_type": "Sensor"}]})
    assert r.status_code == 409 and r.json()["name"] == "DUPLICATE_GROUP"
    r = await client.post("/iot/devices", headers=B, json={"devices": [
        {"device_id": "s1", "apikey": "shared"}]})
    assert r.status_code == 409
    r = await client.post("/iot/devices", headers=B, json={"devices": [{"device_id": "s2"}]})
    assert r.status_code == 201
    # the key answers for tenant A only; B's key-less device answers to no unknown key
    r = await client.post("/iot/json?k=shared&i=s1", json={"temperature": 20})
    assert r.status_code == 200
    r = await client.post("/iot/json?k=anything&i=s2", json={"temperature": 20})
    assert r.status_code == 404
    r = await client.post("/iot/json?k=shared&i=s2", json={"temperature": 21})
    assert r.status_code == 200          # autoprovisioned in tenant A, B's s2 untouched
    r = await client.get("/iot/devices/s2", headers=A)
    assert r.status_code == 200
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:s2",
                         headers={"NGSILD-Tenant": "cityb"})
    assert "temperature" not in r.json()
