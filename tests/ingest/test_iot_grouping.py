"""The IoT agent's group commit (ADR 0010): many measurements per store write, none merged away,
a bad one failing alone, and a shutdown in the middle of a burst losing nothing — on both engines."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityos.app import create_app
from cityos.core.problems import Problem
from cityos.core.settings import Settings
from cityos.ingest.iot.writer import MeasurementWriter


def measurement(entity: str, n: int, minute: int = 0) -> dict[str, Any]:
    """An entity fragment as the agent makes it from one measure group."""
    return {"id": f"urn:ngsi-ld:Counter:{entity}", "type": "Counter",
            "n": {"type": "Property", "value": n,
                  "observedAt": f"2026-11-26T00:{minute:02d}:00.000Z"}}


async def history(client: httpx.AsyncClient, tenant: str, entity: str) -> list[Any]:
    """The values of ``n`` in the temporal history, in the order the API gives them."""
    r = await client.get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Counter:{entity}",
                         params={"attrs": "n", "lastN": 1000}, headers={"NGSILD-Tenant": tenant})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    items = r.json().get("n", [])
    return [i["value"] for i in (items if isinstance(items, list) else [items])]


async def outcomes(futures: list[asyncio.Future[None]]) -> list[int]:
    """200 for each durable measurement, else its problem's status."""
    out: list[int] = []
    for future in futures:
        try:
            await future
            out.append(200)
        except Problem as exc:
            out.append(exc.status)
    return out


async def test_measurements_of_one_entity_in_one_burst_each_reach_history_in_order(
        app: Any, client: httpx.AsyncClient) -> None:
    writer: MeasurementWriter = app.state.iot.writer
    before = writer.groups
    # queued without yielding: the writer sees the whole burst at once
    futures = [writer.submit("burst", measurement("a", n, n)) for n in range(3)]
    futures += [writer.submit("burst", measurement(f"other{d}", 0)) for d in range(4)]
    assert await outcomes(futures) == [200] * 7
    # one group: a's three measurements as its three successive states, the others beside them
    assert writer.groups - before == 1
    assert writer.largest_group == 7
    assert await history(client, "burst", "a") == [0, 1, 2]
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Counter:a",
                         headers={"NGSILD-Tenant": "burst"})
    assert r.json()["n"]["value"] == 2        # written in arrival order: the last one stays


async def test_an_invalid_measurement_fails_alone(app: Any, client: httpx.AsyncClient) -> None:
    writer: MeasurementWriter = app.state.iot.writer
    bad = measurement("bad", 1)
    bad["n"]["observedAt"] = "yesterday"
    futures = [writer.submit("mixed", measurement("good1", 1)), writer.submit("mixed", bad),
               writer.submit("mixed", measurement("good2", 2))]
    assert await outcomes(futures) == [200, 400, 200]
    assert await history(client, "mixed", "good1") == [1]
    assert await history(client, "mixed", "good2") == [2]
    assert await history(client, "mixed", "bad") == []


async def test_a_failed_group_write_is_retried_member_by_member(
        app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    store = app.state.broker.store.inner      # the engine behind the guarded store
    write = store.write
    poison = "urn:ngsi-ld:Counter:poison"

    async def failing_write(tenant: str, ids: list[str], fn: Any) -> Any:
        if poison in ids:      # e.g. a driver error caused by this one entity's data
            raise RuntimeError("this entity cannot be stored")
        return await write(tenant, ids, fn)

    monkeypatch.setattr(store, "write", failing_write)
    writer: MeasurementWriter = app.state.iot.writer
    futures = [writer.submit("split", measurement(name, 7))
               for name in ("ok1", "poison", "ok2", "ok3")]
    assert await outcomes(futures) == [200, 503, 200, 200]
    assert writer.split_groups == 1
    for name in ("ok1", "ok2", "ok3"):
        assert await history(client, "split", name) == [7]


@pytest.fixture
def db_url(database_url: str, tmp_path: Path) -> str:
    """A database that outlives one app (a file for SQLite) so the app can be restarted."""
    return f"sqlite:///{tmp_path}/iot.db" if database_url == "sqlite://" else database_url


async def test_a_shutdown_during_a_burst_loses_nothing_acknowledged(db_url: str) -> None:
    tenant, key = f"t{uuid.uuid4().hex[:10]}", f"k{uuid.uuid4().hex[:10]}"
    devices, per_device = 10, 8
    app = create_app(Settings.load(database_url=db_url))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
        r = await c.post("/iot/services", headers={"fiware-service": tenant}, json={"services": [
            {"apikey": key, "entity_type": "Counter", "resource": "/iot/json"}]})
        assert r.status_code == 201

        async def send(n: int, d: int) -> tuple[int, int, int]:
            r = await c.post(f"/iot/json?k={key}&i=d{d}",
                             content=b'{"n": %d, "TimeInstant": "2026-11-26T00:%02d:00Z"}' % (n, n))
            return n, d, r.status_code

        first = await asyncio.gather(*(send(0, d) for d in range(devices)))   # devices exist
        half = per_device // 2
        burst = [asyncio.create_task(send(n, d)) for n in range(1, half) for d in range(devices)]
        await asyncio.sleep(0)            # the burst is queued in the writer ...
        writer: MeasurementWriter = app.state.iot.writer
        stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))   # ... the process
        while not writer.closed:          # stops, and more measurements arrive meanwhile
            await asyncio.sleep(0)
        burst += [asyncio.create_task(send(n, d)) for n in range(half, per_device)
                  for d in range(devices)]
        answers = [*first, *await asyncio.gather(*burst)]
        await stopping
    statuses = [status for *_x, status in answers]
    assert statuses == [200] * (half * devices) + [503] * ((per_device - half) * devices)

    app = create_app(Settings.load(database_url=db_url))    # the restart
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            for d in range(devices):     # acknowledged ones are stored; resend the 503s
                stored = set(await history(c, tenant, f"d{d}"))
                for n, dev, status in answers:
                    if dev == d and status == 200:
                        assert n in stored
                    elif dev == d:      # not acknowledged: the device sends it again
                        r = await c.post(f"/iot/json?k={key}&i=d{d}",
                                         content=b'{"n": %d}' % n)
                        assert r.status_code == 200
            for d in range(devices):
                assert set(await history(c, tenant, f"d{d}")) == set(range(per_device))
