"""Reliability gate: ``kill -9`` under write load loses no acknowledged write.

Writers create entities as fast as they can; the server is killed with SIGKILL in the middle.
After a restart on the same database every entity whose create was acknowledged (201) must be
there, with its value — on the durable SQLite default and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx

from tests.e2e.server import start_server, stop_server

BASE = "/ngsi-ld/v1"


async def _hammer(base: str, prefix: str, acknowledged: list[str], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as client:
        n = 0
        while not stop.is_set():
            entity_id = f"urn:ngsi-ld:Counter:{prefix}-{n}"
            n += 1
            body = {"id": entity_id, "type": "Counter", "count": {"type": "Property", "value": n}}
            try:
                response = await client.post(f"{BASE}/entities", json=body)
            except httpx.HTTPError:
                return  # the server is gone
            if response.status_code == 201:
                acknowledged.append(entity_id)


async def _load_then_kill(base: str, process_pid: int, acknowledged: list[str]) -> None:
    stop = asyncio.Event()
    run = uuid.uuid4().hex[:8]  # fresh ids: the PostgreSQL database is shared across tests
    workers = [asyncio.create_task(_hammer(base, f"{run}-w{i}", acknowledged, stop))
               for i in range(8)]
    while len(acknowledged) < 300:
        await asyncio.sleep(0.01)
    import os

    os.kill(process_pid, signal.SIGKILL)
    stop.set()
    await asyncio.gather(*workers)


def test_kill_9_loses_no_acknowledged_write(database_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}" if database_url == "sqlite://" else database_url
    process, base = start_server(url)
    acknowledged: list[str] = []
    try:
        asyncio.run(_load_then_kill(base, process.pid, acknowledged))
        process.wait(timeout=10)
    finally:
        stop_server(process)
    assert len(acknowledged) >= 300
    process, base = start_server(url)
    try:
        missing: list[str] = []
        with httpx.Client(base_url=base, timeout=10.0) as client:
            for entity_id in acknowledged:
                response = client.get(f"{BASE}/entities/{entity_id}")
                if response.status_code != 200:
                    missing.append(entity_id)
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    finally:
        stop_server(process)
