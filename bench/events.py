"""``python -m bench.events``: what subscriptions and history cost an update, and temporal reads.

Scenarios, per engine, each against a real ``cityos serve`` and a receiver in its own process:

* ``history off`` / ``history on``: attribute updates (PATCH .../attrs) with no subscription, on a
  server started with ``CITYOS_HISTORY_ENABLED`` false and true;
* ``1 subscription`` / ``100 subscriptions``: the same updates while 1 or 100 subscriptions match
  every one of them; throughput is compared with ``history on`` (the same server), and each
  notified entity's latency is measured from the moment its update was sent to its arrival;
  every expected notification must arrive (``delivered`` counts them);
* ``temporal aggregation``: one attribute with 100,000 instances, aggregated by hour with every
  aggregation method; p50 / p95 of the request.

Examples::

    python -m bench.events                         # both engines, 15 s per scenario
    python -m bench.events --engine sqlite --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from bench import LOOPBACK
from bench.loadgen import JSON_HEADERS, Req, Stats, arun, new_session, run_load
from bench.servers import free_port, postgres_database, running_server, sqlite_database

TYPE = "BenchSensor"
CT = {"Content-Type": "application/json"}
INSTANCES = 100_000
console = Console()


def sensor(i: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:{TYPE}:{i:06d}", "type": TYPE,
            "temperature": {"type": "Property", "value": 20.0},
            "sentAt": {"type": "Property", "value": 0.0}}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextmanager
def receiver() -> Iterator[str]:
    """A notification receiver process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.receiver", "--port", str(port)],
                               stdin=subprocess.DEVNULL)
    base = f"http://{LOOPBACK}:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/stats", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def load_sensors(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for start in range(0, count, 500):
        batch = [sensor(i) for i in range(start, min(count, start + 500))]
        r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(batch),
                        headers=CT)
        r.raise_for_status()
        ids += [e["id"] for e in batch]
    return ids


def update_maker(ids: list[str], sent: list[int]) -> Callable[[int], Req]:
    def make(i: int) -> Req:
        sent[0] += 1          # warm-up requests included: they notify too
        body = {"temperature": {"type": "Property", "value": 20.0 + (i % 100) / 10},
                "sentAt": {"type": "Property", "value": time.time()}}
        return Req("PATCH", f"/ngsi-ld/v1/entities/{ids[i % len(ids)]}/attrs", orjson.dumps(body))
    return make


def subscribe(client: httpx.Client, count: int, endpoint: str,
              one_entity_each: list[str] | None = None) -> list[str]:
    """``count`` subscriptions on every sensor, or each on one sensor of ``one_entity_each``."""
    made = []
    for n in range(count):
        selector = {"type": TYPE} if one_entity_each is None else \
            {"type": TYPE, "id": one_entity_each[n]}
        body = {"type": "Subscription", "entities": [selector],
                "watchedAttributes": ["temperature"],
                "notification": {"format": "keyValues", "attributes": ["temperature", "sentAt"],
                                 "endpoint": {"uri": f"{endpoint}/notify?n={n}",
                                              "accept": "application/json"}}}
        r = client.post("/ngsi-ld/v1/subscriptions", content=orjson.dumps(body), headers=CT)
        r.raise_for_status()
        made.append(r.headers["Location"].rsplit("/", 1)[-1])
    return made


def unsubscribe(client: httpx.Client, ids: list[str]) -> None:
    for sub_id in ids:
        client.delete(f"/ngsi-ld/v1/subscriptions/{sub_id}").raise_for_status()


def updates(base: str, ids: list[str], args: argparse.Namespace) -> tuple[Stats, int]:
    """Measured statistics, and how many updates were sent in all (warm-up included)."""
    sent = [0]
    stats = arun(run_load(base, update_maker(ids, sent), concurrency=args.concurrency,
                          duration=args.duration, max_requests=10_000_000, warmup=args.warmup))
    return stats, sent[0]


async def paced(base: str, ids: list[str], rate: float, seconds: float,
                acks: list[float] | None = None) -> int:
    """Send updates open-loop at ``rate`` per second (latency phase); how many were answered 2xx.

    A closed loop at saturation measures queueing in front of the server, not how fast a
    notification follows its write; at a fixed, sustainable rate it measures the latter.
    """
    make = update_maker(ids, [0])
    session = new_session(64)
    ok = 0
    interval = 1.0 / rate
    start = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal ok
        req = make(i)
        sent = time.perf_counter()
        async with session.patch(base + req.path, data=req.body, headers=JSON_HEADERS) as resp:
            await resp.read()
            ok += resp.status < 300
        if acks is not None:      # the update's own latency, to tell it from the notification's
            acks.append(time.perf_counter() - sent)

    tasks = []
    try:
        for i in range(int(rate * seconds)):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    finally:
        await session.close()
    return ok


def drain(recv: str, expected: int, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the receiver saw ``expected`` entities (or the timeout); its stats."""
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = httpx.get(f"{recv}/stats", timeout=30).json()
        if stats["entities"] >= expected or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def measure_engine(engine: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    database = sqlite_database if engine == "sqlite" else postgres_database
    for history in (False, True):
        env = {"CITYOS_HISTORY_ENABLED": str(history).lower(),
               "CITYOS_NOTIFICATION_ALLOW": LOOPBACK}
        with ExitStack() as stack:
            url, workdir = stack.enter_context(database())
            server = stack.enter_context(running_server(url, workdir, env=env))
            recv = stack.enter_context(receiver())
            client = stack.enter_context(httpx.Client(base_url=server.base, timeout=120))
            ids = load_sensors(client, args.entities)
            console.print(f"[bold]{engine}[/]: history {'on' if history else 'off'}, updates ...")
            base, _ = updates(server.base, ids, args)
            rows.append({"engine": engine, "scenario": f"history {'on' if history else 'off'}",
                         "updates_per_s": base.rate})
            if not history:
                continue
            for count, spread in ((1, False), (100, False), (100, True)):
                subs = subscribe(client, count, recv, ids[:count] if spread else None)
                httpx.post(f"{recv}/reset")
                name = f"{count} subscription(s)" + (" on 1 sensor each" if spread else "")
                console.print(f"[bold]{engine}[/]: {name} ...")
                stats, sent = updates(server.base, ids, args)
                if spread:      # update i goes to ids[i % len(ids)]: those among the first 100
                    full, rest = divmod(sent, len(ids))
                    expected = full * count + min(rest, count)
                else:
                    expected = (sent - stats.errors) * count
                got = drain(recv, expected)
                lat = got["latencies"]
                rows.append({"engine": engine, "scenario": name,
                             "updates_per_s": stats.rate,
                             "loss_vs_history_on": 1 - stats.rate / base.rate,
                             "expected_entities": expected,
                             "notified_entities": got["entities"],
                             "notifications": got["notifications"],
                             "latency_p50_ms": percentile(lat, 50) * 1000,
                             "latency_p99_ms": percentile(lat, 99) * 1000})
                # latency at a sustainable rate: half the throughput just measured
                if spread:
                    unsubscribe(client, subs)
                    continue
                rate = max(10.0, min(500.0, stats.rate / 2))
                httpx.post(f"{recv}/reset")
                acks: list[float] = []
                answered = arun(paced(server.base, ids, rate, args.latency_seconds, acks))
                paced_got = drain(recv, answered * count)
                rows[-1].update({
                    "paced_rate": rate, "paced_expected": answered * count,
                    "paced_notified": paced_got["entities"],
                    "paced_p50_ms": percentile(paced_got["latencies"], 50) * 1000,
                    "paced_p99_ms": percentile(paced_got["latencies"], 99) * 1000,
                    "paced_update_p50_ms": percentile(acks, 50) * 1000,
                    "paced_update_p99_ms": percentile(acks, 99) * 1000})
                unsubscribe(client, subs)
            rows.append(temporal_aggregation(engine, client, args))
    return rows


def temporal_aggregation(engine: str, client: httpx.Client,
                         args: argparse.Namespace) -> dict[str, Any]:
    entity = f"urn:ngsi-ld:{TYPE}:history"
    start = 1_767_225_600  # 2026-01-01T00:00:00Z; one instance a minute
    console.print(f"[bold]{engine}[/]: writing {INSTANCES:,} temporal instances ...")
    for first in range(0, INSTANCES, 1000):
        instances = [{"type": "Property", "value": (n % 600) / 10,
                      "observedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * n))}
                     for n in range(first, first + 1000)]
        body = {"id": entity, "type": TYPE, "temperature": instances}
        client.post("/ngsi-ld/v1/temporal/entities", content=orjson.dumps(body),
                    headers=CT).raise_for_status()
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * INSTANCES))
    path = (f"/ngsi-ld/v1/temporal/entities/{entity}?options=aggregatedValues&attrs=temperature"
            "&aggrMethods=totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"
            f"&aggrPeriodDuration=P1D&timerel=between&timeAt=2026-01-01T00:00:00Z&endTimeAt={end}")
    times = []
    for _ in range(args.aggr_runs):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    return {"engine": engine, "scenario": "temporal aggregation (100k instances, by day)",
            "p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000}


def show(rows: list[dict[str, Any]]) -> None:
    table = Table(title="subscriptions, notifications and history")
    for column in ("engine", "scenario", "updates/s", "loss", "delivered", "p50 ms", "p99/p95 ms",
                   "paced rate", "paced p50", "paced p99"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["engine"], row["scenario"],
            f"{row['updates_per_s']:,.0f}" if "updates_per_s" in row else "",
            f"{row['loss_vs_history_on']:.0%}" if "loss_vs_history_on" in row else "",
            f"{row['notified_entities']:,}" if "notified_entities" in row else "",
            f"{row.get('latency_p50_ms', row.get('p50_ms', float('nan'))):.1f}"
            if "latency_p50_ms" in row or "p50_ms" in row else "",
            f"{row.get('latency_p99_ms', row.get('p95_ms', float('nan'))):.1f}"
            if "latency_p99_ms" in row or "p95_ms" in row else "",
            f"{row['paced_rate']:.0f}/s" if "paced_rate" in row else "",
            f"{row['paced_p50_ms']:.1f}" if "paced_p50_ms" in row else "",
            f"{row['paced_p99_ms']:.1f}" if "paced_p99_ms" in row else "")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--entities", type=int, default=1000, help="sensors updated in turn")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--aggr-runs", type=int, default=40)
    parser.add_argument("--latency-seconds", type=float, default=10.0,
                        help="length of the fixed-rate latency phase per subscription count")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    rows: list[dict[str, Any]] = []
    for engine in engines:
        rows += measure_engine(engine, args)
    show(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
