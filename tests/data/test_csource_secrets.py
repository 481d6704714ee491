"""Credentials in contextSourceInfo are redacted for readers and csource notifications, while
forwarded requests still carry them to the source."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.data.test_csource_support import BASE, CSR, registration, served_stub, settings

__all__ = ["settings"]
CSUB = f"{BASE}/csourceSubscriptions"
R1 = "urn:ngsi-ld:ContextSourceRegistration:r1"
INFO = [{"key": "Authorization", "value": "Bearer city-a-token"},
        {"key": "X-Api-KEY", "value": "k-123"}, {"key": "x-refresh-token", "value": "t-456"},
        {"key": "Client-Secret", "value": "s-789"}, {"key": "X-City", "value": "kobe"}]


def _redacted(info: list[dict[str, Any]]) -> None:
    values = {kv["key"]: kv["value"] for kv in info}
    assert values == {"Authorization": "********", "X-Api-KEY": "********",
                      "x-refresh-token": "********", "Client-Secret": "********",
                      "X-City": "kobe"}


async def test_reads_and_notifications_redact_forwarding_keeps(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.replies[("POST", "/notify")] = (204, b"")
        stub.reply("GET", "/entities/urn:ngsi-ld:Vehicle:V1", 200,
                   {"id": "urn:ngsi-ld:Vehicle:V1", "type": "Vehicle"})
        assert (await client.post(CSR, json=registration(url, contextSourceInfo=INFO))
                ).status_code == 201
        _redacted((await client.get(f"{CSR}/{R1}")).json()["contextSourceInfo"])
        _redacted((await client.get(CSR, params={"type": "Vehicle"})).json()[0]
                  ["contextSourceInfo"])
        sub = {"type": "Subscription", "entities": [{"type": "Vehicle"}],
               "notification": {"endpoint": {"uri": f"{url}/notify"}}}
        assert (await client.post(CSUB, json=sub)).status_code == 201
        [note] = await stub.wait_for(1)
        _redacted(orjson.loads(note["body"])["data"][0]["contextSourceInfo"])
        assert b"city-a-token" not in note["body"]
        got = await client.get(f"{BASE}/entities/urn:ngsi-ld:Vehicle:V1")
        assert got.status_code == 200
        forwarded = stub.received[-1]["headers"]
        assert forwarded["authorization"] == "Bearer city-a-token"
        assert forwarded["x-api-key"] == "k-123"
