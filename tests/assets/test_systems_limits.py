"""A paged pull stops at its item / byte limits: what it has is imported, status ``partial``."""

from __future__ import annotations

import httpx
import pytest

from cityos.assets.systems import pullers
from tests.assets.test_systems_pull import Stub, _register, _run, settings, stub

__all__ = ["settings", "stub"]
ORION = {"service": "kobe", "servicePath": "/", "type": "WeatherObserved", "pageSize": 3}


async def test_pull_stops_at_the_item_limit(client: httpx.AsyncClient, stub: tuple[Stub, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server, base = stub
    monkeypatch.setattr(pullers, "MAX_PULL_ITEMS", 4)
    await _register(client, {"id": "orion", "kind": "orion-v2", "url": base, "options": ORION})
    outcome = await _run(client, "orion")
    assert outcome["status"] == "partial", outcome
    assert outcome["counts"]["imported"] == 4 and outcome["counts"]["pulled"] == 4
    assert "limit of 4 entities" in outcome["lastError"]
    assert [r["params"]["offset"] for r in server.requests] == ["0", "3"]


async def test_pull_stops_at_the_byte_limit(client: httpx.AsyncClient, stub: tuple[Stub, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server, base = stub
    monkeypatch.setattr(pullers, "MAX_PULL_BYTES", 100)
    await _register(client, {"id": "orion", "kind": "orion-v2", "url": base, "options": ORION})
    outcome = await _run(client, "orion")
    assert outcome["status"] == "partial" and outcome["counts"]["imported"] == 3
    assert "MiB per run" in outcome["lastError"]
    assert len(server.requests) == 1
