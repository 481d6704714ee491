"""Simulated devices for demos and load (``cityos devices simulate``, ``python -m bench.iot``).

Provisions one service group (JSON payloads) and sends ``total`` measures from ``devices``
devices at ``rate`` per second, over HTTP (``/iot/json``) or MQTT (``/json/{apikey}/{id}/attrs``).
Each measure carries a sequence number ``n`` so a reader can prove that none was lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson

ENTITY_TYPE = "SimulatedSensor"


async def provision_group(client: httpx.AsyncClient, tenant: str, apikey: str) -> None:
    """The service group every simulated device autoprovisions from."""
    r = await client.post("/iot/services", headers={"fiware-service": tenant}, json={"services": [{
        "apikey": apikey, "resource": "/iot/json", "entity_type": ENTITY_TYPE,
        "attributes": [{"object_id": "t", "name": "temperature", "type": "Number",
                        "unitCode": "CEL"}]}]})
    if r.status_code not in (201, 409):
        raise RuntimeError(f"provisioning failed: {r.status_code} {r.text}")


def measure(seq: int) -> bytes:
    """One JSON measure with sequence number ``seq``, stamped with the time it is sent
    (so the history's recording time minus ``observedAt`` is the device-to-entity latency)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps({"n": seq, "t": round(15 + random.random() * 10, 2), "TimeInstant": now})


async def run_simulation(*, url: str, mqtt_url: str, tenant: str, apikey: str, devices: int,
                         rate: float, total: int, transport: str,
                         advance: Callable[[int], None] = lambda n: None,
                         client: httpx.AsyncClient | None = None,
                         concurrency: int = 64) -> dict[str, Any]:
    """Send ``total`` measures; returns sent / acked / failed counts and per-send latencies."""
    own = client is None
    http = client or httpx.AsyncClient(base_url=url, timeout=30.0,
                                       limits=httpx.Limits(max_connections=concurrency))
    outcome: dict[str, Any] = {"sent": 0, "acked": 0, "failed": 0, "latencies": []}
    try:
        await provision_group(http, tenant, apikey)
        if transport == "mqtt":
            await _mqtt(mqtt_url, apikey, devices, rate, total, outcome, advance)
        else:
            await _http(http, apikey, devices, rate, total, outcome, advance, concurrency)
    finally:
        if own:
            await http.aclose()
    return outcome


async def _paced(rate: float, total: int, one: Callable[[int], Coroutine[Any, Any, None]],
                 outcome: dict[str, Any]) -> None:
    """Start ``one(seq)`` ``total`` times at ``rate`` per second (in 10 ms ticks), each as its
    own task so a slow answer never holds the pace back, then wait for all of them."""
    started = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    seq = 0
    while seq < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while seq < due:
            outcome["sent"] += 1
            task = asyncio.create_task(one(seq))
            pending.add(task)
            task.add_done_callback(pending.discard)
            seq += 1
        await asyncio.sleep(0.01)
    while pending:
        await asyncio.gather(*list(pending))


async def _http(client: httpx.AsyncClient, apikey: str, devices: int, rate: float, total: int,
                outcome: dict[str, Any], advance: Callable[[int], None], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(seq: int) -> None:
        async with gate:
            begun = time.perf_counter()
            try:
                r = await client.post(f"/iot/json?k={apikey}&i=sim{seq % devices}",
                                      content=measure(seq),
                                      headers={"content-type": "application/json"})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            outcome["acked" if ok else "failed"] += 1
            outcome["latencies"].append(time.perf_counter() - begun)
            advance(1)

    await _paced(rate, total, one, outcome)


async def _mqtt(mqtt_url: str, apikey: str, devices: int, rate: float, total: int,
                outcome: dict[str, Any], advance: Callable[[int], None]) -> None:
    parts = urlsplit(mqtt_url)
    quiet = logging.getLogger("cityos.simulator.mqtt")
    quiet.setLevel(logging.ERROR)       # aiomqtt warns about every queued publish
    gate = asyncio.Semaphore(1000)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883,
                              max_inflight_messages=1000, logger=quiet) as mqtt:
        async def one(seq: int) -> None:
            try:
                async with gate:
                    await mqtt.publish(f"/json/{apikey}/sim{seq % devices}/attrs",
                                       measure(seq), qos=1, timeout=60)
                outcome["acked"] += 1
            except aiomqtt.MqttError:
                outcome["failed"] += 1
            advance(1)

        await _paced(rate, total, one, outcome)
