"""``python -m bench.fanout``: the broker's own CPU per update when updates fan out to subscriptions.

``bench.events`` measures the whole machine (load generator, receiver and broker share two
cores), so its throughput moves by ±25 % between rounds.  This one runs the broker in-process,
drives ``update_attributes`` straight through the broker at a paced rate (no HTTP in front),
sends the notifications to ``bench/receiver.py`` in its own process, and reads this process's
CPU time (every thread) from the first update until the receiver holds every notified entity.
The difference between the subscription scenarios and ``0`` is what matching, the outbox and
the notifier cost per update, the figure the "100 subscriptions lose at most 25 %" target is
about.

    python -m bench.fanout                       # 0, 1 and 100 subscriptions, 4,000 updates each
    python -m bench.fanout --subs 0 100 --updates 8000 --rate 1500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import LOOPBACK
from bench.events import receiver

TYPE = "BenchSensor"


def _sensor(i: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:{TYPE}:{i:06d}", "type": TYPE,
            "temperature": {"type": "Property", "value": 20.0},
            "sentAt": {"type": "Property", "value": 0.0}}


async def _receiver_count(client: httpx.AsyncClient, base: str) -> int:
    stats = (await client.get(f"{base}/count")).json()
    return int(stats["entities"])


async def scenario(subs: int, updates: int, rate: float, entities: int, workdir: Path,
                   receiver_url: str, linger: float | None) -> dict[str, float]:
    os.environ["CITYOS_INSECURE_NO_AUTH"] = "1"
    os.environ["CITYOS_NOTIFICATION_ALLOW"] = LOOPBACK
    if linger is not None:
        os.environ["CITYOS_NOTIFICATION_LINGER"] = str(linger)
    from cityos.app import create_app
    from cityos.core.settings import Settings
    from cityos.data.ngsild.actions import create_entity, update_attributes
    from cityos.data.ngsild.subscriptions.actions import create_subscription

    db = workdir / f"fanout-{subs}-{time.monotonic_ns()}.db"
    settings = Settings.load(database_url=f"sqlite:///{db}", history_enabled=True,
                             context_fetch_enabled=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(trust_env=False) as http:
        broker = app.state.broker
        tm = await broker.resolver.term_map(None)
        for i in range(entities):
            await create_entity(broker, "", _sensor(i), tm)
        for n in range(subs):
            await create_subscription(broker, "", {
                "id": f"urn:ngsi-ld:Subscription:fanout-{n}", "type": "Subscription",
                "entities": [{"type": TYPE}],
                "notification": {"format": "keyValues",
                                 "endpoint": {"uri": f"{receiver_url}/notify"}}}, tm, None)
        await http.post(f"{receiver_url}/reset")
        interval = 1.0 / rate
        cpu0, wall0 = time.process_time(), time.monotonic()
        pending: set[asyncio.Task[Any]] = set()
        for k in range(updates):
            due = wall0 + k * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(update_attributes(
                broker, "", f"urn:ngsi-ld:{TYPE}:{k % entities:06d}",
                {"temperature": {"type": "Property", "value": float(k)},
                 "sentAt": {"type": "Property", "value": time.time()}}, tm))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        expected = updates * subs
        deadline = time.monotonic() + 120
        while subs and await _receiver_count(http, receiver_url) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {await _receiver_count(http, receiver_url)} of {expected} "
                                 "notified entities arrived")
            await asyncio.sleep(0.05)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        metrics = broker.notifier.metrics()
    return {"subs": subs, "cpu_us_per_update": cpu / updates * 1e6, "wall_s": wall,
            "achieved_rate": updates / wall,
            "entities_per_post": metrics["itemsDelivered"] / max(metrics["delivered"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, nargs="+", default=[0, 1, 100])
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=1000.0, help="updates per second")
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--linger", type=float, default=None, help="notification linger, s")
    args = parser.parse_args()
    with receiver() as base, tempfile.TemporaryDirectory(prefix="cityos-fanout-") as tmp:
        rows = [asyncio.run(scenario(s, args.updates, args.rate, args.entities, Path(tmp),
                                     base, args.linger)) for s in args.subs]
    base_cpu = next((r["cpu_us_per_update"] for r in rows if r["subs"] == 0), None)
    print(f"{'subs':>5} {'CPU µs/update':>14} {'extra':>8} {'rate/s':>8} {'per POST':>9}")
    for r in rows:
        extra = "" if base_cpu is None else f"{r['cpu_us_per_update'] - base_cpu:+.0f}"
        print(f"{r['subs']:>5} {r['cpu_us_per_update']:>14.0f} {extra:>8} "
              f"{r['achieved_rate']:>8.0f} {r['entities_per_post']:>9.1f}")


if __name__ == "__main__":
    main()
