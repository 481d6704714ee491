"""``python -m bench.events``: what subscriptions and history cost an update, and temporal reads.

Scenarios, per engine, each against a real ``cityos serve`` and a receiver in its own process:

* ``history off`` / ``history on``: attribute updates (PATCH .../attrs) with no subscription, on a
  server started with ``CITYOS_HISTORY_ENABLED`` false and true;
* ``1 subscription`` / ``100 subscriptions``: the same updates while 1 or 100 subscriptions match
  every one of them; ``100 subscriptions on 1 sensor each``: 100 subscriptions each naming one
  sensor by id, so one update in ten matches one of them; throughput is compared with
  ``history on`` (the same server), and each notified entity's latency is measured from the
  moment its update was sent to its arrival; every expected notification must arrive
  (``delivered`` counts them);
* ``temporal aggregation``: one attribute with 100,000 instances, aggregated by hour with every
  aggregation method; p50 / p95 of the request.

Examples::

    python -m bench.events                         # both engines, 15 s per scenario
    python -m bench.events --engine sqlite --duration 5
    python -m bench.events --subs spread --skip-history-off --skip-aggregation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
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
from bench.procstat import child_pids, postgres_cpu, process_cpu
from bench.servers import Server, free_port, postgres_database, running_server, sqlite_database
from cityos.ops.gc_tuning import tune_garbage_collector

TYPE = "BenchSensor"
CT = {"Content-Type": "application/json"}
INSTANCES = 100_000
# --subs names -> (subscriptions, each on one sensor of its own?)
SUBSCRIPTION_SCENARIOS = {"spread": (100, True), "1": (1, False), "100": (100, False)}
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
        counts: dict[str, Any] = httpx.get(f"{recv}/count", timeout=30).json()
        if counts["entities"] >= expected or time.monotonic() > deadline:
            stats: dict[str, Any] = httpx.get(f"{recv}/stats", timeout=30).json()
            return stats
        time.sleep(0.5)


class ServerCpu:
    """CPU seconds the server (and the processes it started) uses between :meth:`start` and
    :meth:`seconds`; on PostgreSQL plus its database's processes (per process: one that ended
    meanwhile is lost, never counted negative)."""

    def __init__(self, server: Server, engine: str) -> None:
        self.server, self.engine = server, engine
        self.begin: dict[int, float] = {}

    def read(self) -> dict[int, float]:
        """CPU seconds so far per process."""
        used = {self.server.pid: process_cpu(self.server.pid)}
        # with CITYOS_NOTIFIER=process the notifier's work is in a child of the server
        used.update({pid: process_cpu(pid) for pid in child_pids(self.server.pid)})
        if self.engine == "postgresql":
            used.update(postgres_cpu(self.server.database_url.rsplit("/", 1)[-1]))
        return used

    def start(self) -> ServerCpu:
        """Begin counting."""
        self.begin = self.read()
        return self

    def seconds(self) -> float:
        """CPU seconds since :meth:`start`."""
        return sum(max(0.0, v - self.begin.get(pid, 0.0)) for pid, v in self.read().items())


def measure_engine(engine: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every scenario of one engine, ``args.rounds`` times, interleaved.

    The servers with history off and on run side by side and each round measures all scenarios
    again, so a round's losses compare measurements seconds apart: on a shared machine the
    absolute rates drift far more than that.
    """
    rows: list[dict[str, Any]] = []
    database = sqlite_database if engine == "sqlite" else postgres_database
    with ExitStack() as stack:
        servers: dict[bool, tuple[Server, httpx.Client, list[str]]] = {}
        for history in (False, True) if not args.skip_history_off else (True,):
            env = {"CITYOS_HISTORY_ENABLED": str(history).lower(),
                   "CITYOS_NOTIFICATION_ALLOW": LOOPBACK, "CITYOS_NOTIFIER": args.notifier}
            url, workdir = stack.enter_context(database())
            server = stack.enter_context(running_server(url, workdir, env=env))
            client = stack.enter_context(httpx.Client(base_url=server.base, timeout=120))
            servers[history] = (server, client, load_sensors(client, args.entities))
        recv = stack.enter_context(receiver())
        for rnd in range(args.rounds):
            last = rnd == args.rounds - 1
            for history, (server, _, ids) in servers.items():
                label = f"history {'on' if history else 'off'}"
                console.print(f"[bold]{engine}[/] round {rnd + 1}: {label} ...")
                cpu = ServerCpu(server, engine).start()
                base, sent = updates(server.base, ids, args)
                rows.append({"engine": engine, "scenario": label, "round": rnd + 1,
                             "updates_per_s": base.rate,
                             "cpu_us_per_update": cpu.seconds() / sent * 1e6})
            if False in servers:
                rows[-1]["loss_vs_history_off"] = 1 - rows[-1]["updates_per_s"] / \
                    rows[-2]["updates_per_s"]
            baseline = rows[-1]
            server, client, ids = servers[True]
            for name in args.subs:
                rows.append(subscription_scenario(engine, server, client, ids, recv, name,
                                                  baseline, args, paced_phase=last))
                rows[-1]["round"] = rnd + 1
        if not args.skip_aggregation:
            rows.append(temporal_aggregation(engine, servers[True][1], args))
    return rows


def subscription_scenario(engine: str, server: Server, client: httpx.Client, ids: list[str],
                          recv: str, scenario: str, baseline: dict[str, Any],
                          args: argparse.Namespace, *, paced_phase: bool) -> dict[str, Any]:
    """Updates while the ``scenario``'s subscriptions exist; compared with ``baseline``."""
    count, spread = SUBSCRIPTION_SCENARIOS[scenario]
    subs = subscribe(client, count, recv, ids[:count] if spread else None)
    httpx.post(f"{recv}/reset")
    name = f"{count} subscription(s)" + (" on 1 sensor each" if spread else "")
    console.print(f"[bold]{engine}[/]: {name} ...")
    meter = ServerCpu(server, engine).start()
    stats, sent = updates(server.base, ids, args)
    if spread:      # update i goes to ids[i % len(ids)]: those among the first 100
        full, rest = divmod(sent, len(ids))
        expected = full * count + min(rest, count)
    else:
        expected = (sent - stats.errors) * count
    got = drain(recv, expected)
    # CPU until every notification arrived: the notifier's work lags the updates
    cpu = meter.seconds() / sent * 1e6
    lat = got["latencies"]
    row = {"engine": engine, "scenario": name, "updates_per_s": stats.rate,
           "loss_vs_history_on": 1 - stats.rate / baseline["updates_per_s"],
           "cpu_us_per_update": cpu,
           "cpu_vs_history_on": cpu / baseline["cpu_us_per_update"] - 1,
           "expected_entities": expected, "notified_entities": got["entities"],
           "notifications": got["notifications"],
           "latency_p50_ms": percentile(lat, 50) * 1000,
           "latency_p99_ms": percentile(lat, 99) * 1000}
    if not spread and paced_phase:
        # latency at a sustainable rate: half the throughput just measured
        rate = max(10.0, min(500.0, stats.rate / 2))
        httpx.post(f"{recv}/reset")
        acks: list[float] = []
        answered = arun(paced(server.base, ids, rate, args.latency_seconds, acks))
        paced_got = drain(recv, answered * count)
        row.update({
            "paced_rate": rate, "paced_expected": answered * count,
            "paced_notified": paced_got["entities"],
            "paced_p50_ms": percentile(paced_got["latencies"], 50) * 1000,
            "paced_p99_ms": percentile(paced_got["latencies"], 99) * 1000,
            "paced_update_p50_ms": percentile(acks, 50) * 1000,
            "paced_update_p99_ms": percentile(acks, 99) * 1000})
    unsubscribe(client, subs)
    return row


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


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per engine and scenario: medians over the rounds, deliveries summed."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["engine"], row["scenario"]), []).append(row)
    summary = []
    for (engine, scenario), group in groups.items():
        out: dict[str, Any] = {"engine": engine, "scenario": scenario, "rounds": len(group)}
        for key in ("updates_per_s", "loss_vs_history_on", "loss_vs_history_off",
                    "cpu_us_per_update", "cpu_vs_history_on", "p50_ms", "p95_ms"):
            values = [r[key] for r in group if key in r]
            if values:
                out[key] = statistics.median(values)
                if len(values) > 1 and key.startswith("loss"):
                    out[key + "_range"] = [min(values), max(values)]
        for key in ("expected_entities", "notified_entities"):
            if any(key in r for r in group):
                out[key] = sum(r.get(key, 0) for r in group)
        for r in group:
            out.update({k: v for k, v in r.items() if k.startswith("paced")})
        summary.append(out)
    return summary


def show(summary: list[dict[str, Any]]) -> None:
    """The medians as a table."""
    table = Table(title="subscriptions, notifications and history (medians over the rounds)")
    for column in ("engine", "scenario", "updates/s", "loss", "CPU µs/update", "delivered",
                   "paced rate", "paced p50 / p99 ms", "p50 / p95 ms"):
        table.add_column(column)
    for row in summary:
        loss = row.get("loss_vs_history_on", row.get("loss_vs_history_off"))
        spread = row.get("loss_vs_history_on_range", row.get("loss_vs_history_off_range"))
        table.add_row(
            row["engine"], row["scenario"],
            f"{row['updates_per_s']:,.0f}" if "updates_per_s" in row else "",
            (f"{loss:.1%}" + (f" ({spread[0]:.0%}..{spread[1]:.0%})" if spread else ""))
            if loss is not None else "",
            f"{row['cpu_us_per_update']:,.0f}" if "cpu_us_per_update" in row else "",
            f"{row['notified_entities']:,} / {row['expected_entities']:,}"
            if "expected_entities" in row else "",
            f"{row['paced_rate']:.0f}/s" if "paced_rate" in row else "",
            f"{row['paced_p50_ms']:.1f} / {row['paced_p99_ms']:.1f}" if "paced_p99_ms" in row
            else "",
            f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f}" if "p95_ms" in row else "")
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    # the load generator stamps each update's send time: its own collector pauses would count
    # as notification latency (ADR 0014)
    tune_garbage_collector(20_000)
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
    parser.add_argument(
        "--subs", type=lambda text: [n for n in text.split(",") if n and n != "none"],
        default=["spread", "1", "100"],
        help="subscription scenarios to run, in this order (default spread,1,100; the history "
             "grows with every scenario, so the first one runs closest to the baseline); "
             "'none': only history off / on")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every scenario this many times, interleaved; the table "
                             "shows the median (the JSON keeps every round)")
    parser.add_argument("--skip-history-off", action="store_true",
                        help="do not measure the server with history off")
    parser.add_argument("--skip-aggregation", action="store_true",
                        help="do not measure temporal aggregation")
    parser.add_argument("--notifier", choices=("inline", "process"), default="inline",
                        help="where the servers notify (CITYOS_NOTIFIER, ADR 0017)")
    args = parser.parse_args(argv)
    unknown = set(args.subs) - SUBSCRIPTION_SCENARIOS.keys()
    if unknown:
        parser.error(f"unknown --subs {sorted(unknown)}; choose from "
                     f"{sorted(SUBSCRIPTION_SCENARIOS)}")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    rows: list[dict[str, Any]] = []
    for engine in engines:
        rows += measure_engine(engine, args)
    summary = summarize(rows)
    show(summary)
    if args.json:
        args.json.write_text(json.dumps({"median": summary, "rounds": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
