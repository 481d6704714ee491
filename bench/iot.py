"""IoT agent benchmark: device → IoT agent → broker, over HTTP and MQTT (``python -m bench.iot``).

Against a ``cityos serve`` subprocess with the MQTT consumer on a real Mosquitto started for the run
(its own port and configuration: Mosquitto's defaults queue at most 1,000 messages per client and
drop the rest, so a burst larger than that is lost at the broker whatever the agent does — see
docs/iot-agent.md), per engine:

1. **HTTP**: simulated devices POST JSON measures to ``/iot/json`` as fast as ``--concurrency``
   connections allow; a 200 means durable, so the request time is the device → entity latency.
2. **MQTT backlog** (a restart during a burst): CityOS is stopped, ``--mqtt-total`` measures are
   published with QoS 1 and wait in its persistent session, CityOS starts again and drains them;
   measurements/s is the number stored over the span of their recording times in the history
   (the agent's own rate, whatever the speed of this load generator).
3. **MQTT paced**: ``--paced-rate`` measures/s for ``--paced-seconds``; latency is the history's
   recording time minus the measure's own ``TimeInstant`` (stamped when sent).

Every measure carries a sequence number; at the end the distinct (device, number) pairs in the
temporal history are counted: **lost** = sent − stored (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx

from bench import LOOPBACK
from bench.loadgen import Req, run_load
from bench.servers import (
    free_port,
    postgres_available,
    postgres_database,
    running_server,
    sqlite_database,
)
from cityos.ingest.iot import measure, provision_group, run_simulation

ATTR = "https://uri.etsi.org/ngsi-ld/default-context/n"
MQTT_URL = "mqtt://127.0.0.1:1883"
# what a city's broker for devices needs: no per-client queue limit (0 = unlimited), a wide
# in-flight window for throughput
MOSQUITTO_CONF = """listener {port} 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 1000
"""


@contextmanager
def mosquitto() -> Iterator[str]:
    """A Mosquitto for this run on a free port (removed afterwards); yields its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="cityos-bench-mqtt-"))
    port = free_port()
    (workdir / "mosquitto.conf").write_text(MOSQUITTO_CONF.format(port=port))
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(workdir / "mosquitto.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _stored(database_url: str, tenant: str) -> tuple[int, list[float], float]:
    """(distinct measures stored, their latencies in s, span of their recording times in s)."""
    sql_count = ("SELECT count(*) FROM (SELECT DISTINCT entity_id, {v} FROM attr_history "
                 "WHERE tenant = {p1} AND attr = {p2}) s")
    sql_lat = ("SELECT created_at - observed_at, created_at FROM attr_history "
               "WHERE tenant = {p1} AND attr = {p2}")
    if database_url.startswith("sqlite"):
        # SQLite keys history rows by series id (history_series holds tenant, entity, attribute)
        sql_count = sql_count.replace("FROM attr_history", "FROM attr_history JOIN "
                                      "history_series USING (sid)")
        sql_lat = sql_lat.replace("FROM attr_history", "FROM attr_history JOIN history_series "
                                  "USING (sid)")
        path = database_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            count = conn.execute(sql_count.format(v="json_extract(doc, '$.value')", p1="?", p2="?"),
                                 (tenant, ATTR)).fetchone()[0]
            rows = conn.execute(sql_lat.format(p1="?", p2="?"), (tenant, ATTR)).fetchall()
        finally:
            conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(database_url)
        try:
            count = await pg.fetchval(sql_count.format(v="doc->>'value'", p1="$1", p2="$2"),
                                      tenant, ATTR)
            rows = [tuple(r) for r in await pg.fetch(sql_lat.format(p1="$1", p2="$2"), tenant,
                                                     ATTR)]
        finally:
            await pg.close()
    latencies = [r[0] / 1e6 for r in rows]
    span = (max(r[1] for r in rows) - min(r[1] for r in rows)) / 1e6 if rows else 0.0
    return int(count), latencies, span


async def _wait_stored(database_url: str, tenant: str, expected: int,
                       timeout: float) -> tuple[int, list[float], float]:
    """Wait until ``expected`` measures are stored (or ``timeout``)."""
    deadline = time.perf_counter() + timeout
    while True:
        stored, lat, span = await _stored(database_url, tenant)
        if stored >= expected or time.perf_counter() > deadline:
            return stored, lat, span
        await asyncio.sleep(0.2)


async def _live_phases(base: str, database_url: str, mqtt_url: str,
                       args: argparse.Namespace, backlog: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60.0, trust_env=False,
                                 limits=httpx.Limits(max_connections=args.concurrency)) as client:
        tenant, apikey = f"benchhttp{secrets.token_hex(3)}", f"h{secrets.token_hex(4)}"
        await provision_group(client, tenant, apikey)
        devices = args.devices

        per = args.http_batch

        def make(i: int) -> Req:
            if per == 1:
                return Req("POST", f"/iot/json?k={apikey}&i=sim{i % devices}", body=measure(i))
            # a device sending several measurements in one request (a JSON array)
            body = b"[" + b",".join(measure(i * per + k) for k in range(per)) + b"]"
            return Req("POST", f"/iot/json?k={apikey}&i=sim{i % devices}", body=body, items=per)

        # aiohttp (bench/loadgen.py): httpx would cost this shared machine more CPU than the
        # server; no warm-up, so every acknowledged measure is counted in ``lost``
        stats = await run_load(base, make, concurrency=args.concurrency, duration=args.seconds,
                               max_requests=args.http_total, warmup=0.0)
        stored, _lat, _span = await _wait_stored(database_url, tenant, stats.items, 30)
        out["http"] = {"sent": stats.requests, "acked": stats.items,
                       "per_second": round(stats.item_rate),
                       "p50_ms": round(stats.percentile(50), 1),
                       "p95_ms": round(stats.percentile(95), 1),
                       "lost": stats.items - min(stored, stats.items)}

        tenant = f"benchpaced{secrets.token_hex(3)}"
        paced = await run_simulation(url=base, mqtt_url=mqtt_url, tenant=tenant,
                                     apikey=f"p{secrets.token_hex(4)}", devices=args.devices,
                                     rate=args.paced_rate,
                                     total=int(args.paced_rate * args.paced_seconds),
                                     transport="mqtt", client=client)
        stored, lat, _span = await _wait_stored(database_url, tenant, paced["acked"], 60)
        out["mqtt_paced"] = {"rate": args.paced_rate, "sent": paced["sent"],
                             "p50_ms": round(percentile(lat, 50) * 1000, 1),
                             "p95_ms": round(percentile(lat, 95) * 1000, 1),
                             "lost": paced["acked"] - stored}

        # the backlog phase's devices exist before CityOS stops (provisioning is not measured)
        await provision_group(client, backlog["tenant"], backlog["apikey"])
        for d in range(args.devices):
            r = await client.post(f"/iot/json?k={backlog['apikey']}&i=sim{d}",
                                  content=b'{"warm": 1}',
                                  headers={"content-type": "application/json"})
            r.raise_for_status()
    return out


async def _publish(mqtt_url: str, apikey: str, devices: int, total: int, per: int = 1) -> int:
    """Publish the backlog with QoS 1 while CityOS is down; how many measures the broker took
    (``per`` > 1: each message a JSON array of that many measures of one device)."""
    parts = urlsplit(mqtt_url)
    quiet = logging.getLogger("bench.iot.mqtt")
    quiet.setLevel(logging.ERROR)
    gate = asyncio.Semaphore(1000)
    taken = 0
    async with aiomqtt.Client(parts.hostname or LOOPBACK, parts.port or 1883,
                              max_inflight_messages=1000, logger=quiet) as mqtt:
        async def one(n: int) -> None:
            nonlocal taken
            seqs = range(n * per, min(n * per + per, total))
            payload = measure(n) if per == 1 else \
                b"[" + b",".join(measure(seq) for seq in seqs) + b"]"
            async with gate:
                await mqtt.publish(f"/json/{apikey}/sim{n % devices}/attrs", payload,
                                   qos=1, timeout=60)
                taken += len(seqs)

        await asyncio.gather(*(one(n) for n in range(-(-total // per))))
    return taken


def measure_engine(engine: str, args: argparse.Namespace,
                   baseline: Path | None = None) -> dict[str, Any]:
    """All phases on one engine, against a fresh server and database (running the CityOS found
    under ``baseline`` instead of this one when given)."""
    database = sqlite_database() if engine == "sqlite" else postgres_database()
    backlog = {"tenant": f"benchbacklog{secrets.token_hex(3)}",
               "apikey": f"b{secrets.token_hex(4)}"}
    with mosquitto() if args.mqtt == "private" else _given(args.mqtt) as mqtt_url, \
            database as (url, workdir):
        env = {"CITYOS_IOT_MQTT_URL": mqtt_url,
               "CITYOS_IOT_MQTT_CLIENT_ID": f"cityos-bench-{secrets.token_hex(4)}"}
        if baseline is not None:      # the server imports the baseline's ``cityos`` package
            env["PYTHONPATH"] = str(baseline)
        with running_server(url, workdir, env=env) as server:
            _wait_connected(server.base)
            result = asyncio.run(_live_phases(server.base, url, mqtt_url, args, backlog))
        # CityOS is down: the burst waits in its persistent session at the broker
        taken = asyncio.run(_publish(mqtt_url, backlog["apikey"], args.devices, args.mqtt_total,
                                     args.mqtt_batch))
        with running_server(url, workdir, env=env) as server:
            stored, _lat, span = asyncio.run(_wait_stored(url, backlog["tenant"], taken, 600))
        result["mqtt_backlog"] = {"sent": args.mqtt_total, "acked_by_broker": taken,
                                  "per_second": round(stored / span) if span else None,
                                  "lost": taken - stored}
    return {"engine": engine + (" (baseline)" if baseline is not None else ""), **result}


def _wait_connected(base: str) -> None:
    with httpx.Client(trust_env=False) as probe:      # wait for the MQTT consumer
        for _ in range(100):
            if probe.get(f"{base}/health").json()["iot"]["mqtt"]["status"] == "connected":
                return
            time.sleep(0.1)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def show(rows: list[dict[str, Any]]) -> None:
    """Print the results as a Markdown table."""
    print("| engine | HTTP /s | HTTP p95 | MQTT backlog /s | MQTT paced p50 / p95 | lost |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        lost = r["http"]["lost"] + r["mqtt_backlog"]["lost"] + r["mqtt_paced"]["lost"]
        print(f"| {r['engine']} | {r['http']['per_second']} | {r['http']['p95_ms']} ms | "
              f"{r['mqtt_backlog']['per_second']} | {r['mqtt_paced']['p50_ms']} / "
              f"{r['mqtt_paced']['p95_ms']} ms at {r['mqtt_paced']['rate']:g}/s | {lost} |")


def show_ratios(rows: list[dict[str, Any]]) -> None:
    """This CityOS over the baseline, per engine and phase (the same load, minutes apart)."""
    print("\n| engine | HTTP /s | MQTT backlog /s | MQTT paced p95 |")
    print("|---|---|---|---|")
    def ratio(before: dict[str, Any], after: dict[str, Any], phase: str, key: str) -> str:
        old, new = before[phase][key], after[phase][key]
        return f"{new / old:.2f}x" if old and new else "n/a"

    for b, a in zip(rows[::2], rows[1::2], strict=True):
        print(f"| {a['engine']} | {ratio(b, a, 'http', 'per_second')} | "
              f"{ratio(b, a, 'mqtt_backlog', 'per_second')} | "
              f"{ratio(b, a, 'mqtt_paced', 'p95_ms')} |")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--http-total", type=int, default=50000)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the HTTP phase")
    parser.add_argument("--mqtt-total", type=int, default=50000)
    parser.add_argument("--paced-rate", type=float, default=1000.0)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--mqtt", default="private",
                        help="'private' (a Mosquitto started for the run) or a broker URL such as "
                             f"{MQTT_URL} (its queue limits apply)")
    parser.add_argument("--http-batch", type=int, default=1,
                        help="measurements per HTTP request (a JSON array; 1 = one per request)")
    parser.add_argument("--mqtt-batch", type=int, default=1,
                        help="measurements per MQTT message of the backlog (a JSON array)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a directory holding another CityOS (a copy of ``cityos/``, e.g. "
                             "the last commit's): measured first, then this one, with ratios")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    if "postgresql" in engines and (reason := postgres_available()) is not None:
        print(f"PostgreSQL skipped: {reason}")
        engines.remove("postgresql")
    rows: list[dict[str, Any]] = []
    for engine in engines:
        if args.baseline is not None:
            rows.append(measure_engine(engine, args, args.baseline))
        rows.append(measure_engine(engine, args))
    show(rows)
    if args.baseline is not None:
        show_ratios(rows)
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
