"""Forwarded requests: answers are read up to a byte cap, management.timeout is clamped."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cityos.core.settings import Settings
from tests.data.test_csource_support import BASE, CSR, make_settings, registration, served_stub

V1 = "urn:ngsi-ld:Vehicle:V1"
R1 = "urn:ngsi-ld:ContextSourceRegistration:r1"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A 2 kB answer cap and a 0.3 s federation timeout."""
    return make_settings(database_url, federation_max_answer_bytes=2000, federation_timeout=0.3)


async def test_oversized_answer_counts_as_failed(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        big = {"id": V1, "type": "Vehicle", "note": {"type": "Property", "value": "x" * 5000}}
        stub.reply("GET", f"/entities/{V1}", 200, big)
        stub.reply("GET", "/entities", 200, [big])
        assert (await client.post(CSR, json=registration(url))).status_code == 201
        got = await client.get(f"{BASE}/entities/{V1}")
        assert got.status_code == 404
        assert "111 city-b" in got.headers["ngsild-warning"]
        assert "larger than 2000 bytes" in got.headers["ngsild-warning"]
        listed = await client.get(f"{BASE}/entities", params={"type": "Vehicle"})
        assert listed.status_code == 200 and listed.json() == []
        status = (await client.get(f"{CSR}/{R1}")).json()
        assert status["status"] == "failed" and status["timesFailed"] == 2
        small = {"id": V1, "type": "Vehicle"}
        stub.reply("GET", f"/entities/{V1}", 200, small)
        assert (await client.get(f"{BASE}/entities/{V1}")).status_code == 200


async def test_management_timeout_cannot_exceed_the_federation_timeout(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.hang = asyncio.Event()
        body = registration(url, management={"timeout": 600_000})     # ten minutes asked
        assert (await client.post(CSR, json=body)).status_code == 201
        got = await client.get(f"{BASE}/entities/{V1}")
        stub.hang.set()
        assert got.status_code == 404
        assert "no answer within 0.3 s" in got.headers["ngsild-warning"]
