"""``python -m bench.soak``: does the broker's memory stay flat under hours of notifications?

DESIGN's reliability gate: "a soak run keeps memory flat".  This keeps one ``cityos serve``
busy at a fixed update rate for ``--minutes`` with history on, ``--subs`` subscriptions that
match every update (delivered to a local receiver) and ``--dead-subs`` whose endpoint refuses
every connection (their lanes retry, give up and cap their backlog).  The updates walk over
``--entities`` sensors, so every per-entity cache (series ids, temporal records, fan-out sets)
fills during the first pass and must stop growing after it.

Every ``--sample`` seconds it reads the server's memory from ``/proc``: ``RssAnon`` (the heap:
what a leak would grow) and ``RssFile`` (mapped file pages: code, and SQLite's memory-mapped
database, which grows with the data and is given back by the kernel when memory is short), plus
the notifier's queue lengths from ``/health``.  The verdict is the slope of ``RssAnon`` over the
second half of the run, by least squares, against ``--flat-mb-per-hour``.  At the end it waits for
the receiver to have every notification of the healthy subscriptions.

    python -m bench.soak --minutes 30 --json bench/RESULTS-soak.json --svg bench/RESULTS-soak.svg
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bench import LOOPBACK
from bench.events import drain, load_sensors, receiver, subscribe, update_maker
from bench.loadgen import JSON_HEADERS, arun, new_session
from bench.procstat import child_pids
from bench.servers import Server, free_port, postgres_database, running_server, sqlite_database
from bench.svgchart import Series, line_chart

console = Console()
MB = 1024 * 1024
IN_FLIGHT = 256          # updates awaiting their answer, at most (the rate drops past it)


def memory(pid: int) -> dict[str, float]:
    """The process's resident memory in MB: RssAnon, RssFile (0 when it is gone)."""
    found = {"RssAnon": 0.0, "RssFile": 0.0}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        key, _, value = line.partition(":")
        if key in found:
            found[key] = int(value.split()[0]) * 1024 / MB
    return found


def tree_memory(pid: int) -> dict[str, float]:
    """:func:`memory` of the server plus the processes it started (a dispatcher process,
    CITYOS_NOTIFIER=process); the children's heap also on its own, as ``ChildRssAnon``."""
    found = memory(pid)
    found["ChildRssAnon"] = 0.0
    for child in child_pids(pid):
        used = memory(child)
        found["RssAnon"] += used["RssAnon"]
        found["RssFile"] += used["RssFile"]
        found["ChildRssAnon"] += used["RssAnon"]
    return found


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 3:
        return float("nan")
    fit = statistics.linear_regression([t for t, _ in points], [m for _, m in points])
    return fit.slope * 3600


async def soak(server: Server, ids: list[str], args: argparse.Namespace,
               progress: Progress) -> tuple[int, int, list[dict[str, Any]]]:
    """Updates at ``args.rate`` for ``args.minutes``; (sent, answered 2xx, samples)."""
    make = update_maker(ids, [0])
    session = new_session(64)
    # a fresh connection per sample: uvicorn closes an idle one after 5 s, the sampling period,
    # and a request racing that close fails
    health = httpx.AsyncClient(base_url=server.base, timeout=30,
                               limits=httpx.Limits(max_keepalive_connections=0))
    slots = asyncio.Semaphore(IN_FLIGHT)
    seconds = args.minutes * 60
    total = int(args.rate * seconds)
    ok = sent = 0
    samples: list[dict[str, Any]] = []
    task = progress.add_task("soak", total=total)
    start = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal ok
        try:
            req = make(i)
            async with session.patch(server.base + req.path, data=req.body,
                                     headers=JSON_HEADERS) as resp:
                await resp.read()
                ok += resp.status < 300
        finally:
            slots.release()

    async def sampler() -> None:
        while True:
            sample: dict[str, Any] = {"t": round(time.perf_counter() - start, 2),
                                      **tree_memory(server.pid), "sent": sent}
            # memory is read first and kept even when /health does not answer: one slow
            # answer must not end the sampling (it did, in a first run on PostgreSQL)
            try:
                notifier = (await health.get("/health")).json().get("notifications", {})
            except (httpx.HTTPError, ValueError) as exc:
                sample["healthError"] = f"{type(exc).__name__}: {exc}"[:200]
            else:
                sample.update({key: notifier.get(key, 0) for key in
                               ("queued", "pendingRows", "dropped", "delivered")})
            samples.append(sample)
            await asyncio.sleep(args.sample)

    sampling = asyncio.create_task(sampler())
    running: set[asyncio.Task[None]] = set()
    try:
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            t = asyncio.create_task(one(i))
            running.add(t)
            t.add_done_callback(running.discard)
            sent += 1
            if i % 200 == 0:
                progress.update(task, completed=i)
        await asyncio.gather(*running)
        progress.update(task, completed=total)
    finally:
        if sampling.done() and sampling.exception() is not None:
            console.print(f"[red]sampling stopped: {sampling.exception()!r}")
        sampling.cancel()
        await session.close()
        await health.aclose()
    return sent, ok, samples


def verdict(samples: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    expected = args.minutes * 60 / args.sample
    if len(samples) < 0.9 * expected:
        raise SystemExit(f"only {len(samples)} of ~{expected:.0f} memory samples: no verdict")
    half = samples[len(samples) // 2:]
    anon = [(s["t"], s["RssAnon"]) for s in half]
    slope = slope_per_hour(anon)
    def most(key: str) -> int:
        return max((s[key] for s in samples if key in s), default=0)

    return {"rss_anon_start_mb": samples[0]["RssAnon"], "rss_anon_mid_mb": half[0]["RssAnon"],
            "rss_anon_end_mb": samples[-1]["RssAnon"],
            "rss_anon_max_mb": max(s["RssAnon"] for s in samples),
            "rss_file_end_mb": samples[-1]["RssFile"],
            "second_half_slope_mb_per_hour": slope,
            # the dispatcher's share (0 with the notifier inline)
            "child_rss_anon_end_mb": samples[-1].get("ChildRssAnon", 0.0),
            "child_second_half_slope_mb_per_hour": slope_per_hour(
                [(s["t"], s.get("ChildRssAnon", 0.0)) for s in half]),
            "flat": slope <= args.flat_mb_per_hour,
            "max_queued": most("queued"), "max_pending_rows": most("pendingRows"),
            "dropped_dead_items": most("dropped"),
            "health_errors": sum("healthError" in s for s in samples)}


def dead_counters(client: httpx.Client, sub_id: str) -> dict[str, Any]:
    """What a dead endpoint's subscription shows its owner: status and the failure count."""
    sub = client.get(f"/ngsi-ld/v1/subscriptions/{sub_id}").raise_for_status().json()
    notification = sub.get("notification", {})
    return {key: notification.get(key) for key in ("status", "timesSent", "timesFailed")}


def chart(samples: list[dict[str, Any]], args: argparse.Namespace) -> str:
    minutes = [s["t"] / 60 for s in samples]

    def line(label: str, key: str) -> Series:
        return Series(label, [(m, s[key]) for m, s in zip(minutes, samples, strict=True)])

    return line_chart(
        f"cityos serve on {args.engine}: memory over a {args.minutes:g}-minute soak "
        f"({args.rate:g} updates/s, {args.subs} + {args.dead_subs} dead subscriptions)",
        "minutes", "MB",
        [line("RssAnon (heap)", "RssAnon"),
         line("RssFile (mapped files: code, SQLite database)", "RssFile")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=200.0, help="updates per second")
    parser.add_argument("--entities", type=int, default=20_000, help="sensors updated in turn")
    parser.add_argument("--subs", type=int, default=10, help="subscriptions matching every update")
    parser.add_argument("--dead-subs", type=int, default=1,
                        help="subscriptions whose endpoint refuses connections")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--flat-mb-per-hour", type=float, default=10.0,
                        help="the heap's growth over the second half allowed as flat")
    parser.add_argument("--notifier", choices=("inline", "process"), default="inline",
                        help="where the server notifies (CITYOS_NOTIFIER, ADR 0017); with "
                             "process the dispatcher's memory is added to the server's")
    parser.add_argument("--json", type=Path, help="write the samples and the verdict here")
    parser.add_argument("--svg", type=Path, help="write the memory chart here")
    args = parser.parse_args(argv)
    database = sqlite_database if args.engine == "sqlite" else postgres_database
    env = {"CITYOS_HISTORY_ENABLED": "true", "CITYOS_NOTIFICATION_ALLOW": LOOPBACK,
           "CITYOS_NOTIFIER": args.notifier}
    with receiver() as recv, database() as (url, workdir), \
            running_server(url, workdir, env=env) as server, \
            httpx.Client(base_url=server.base, timeout=300) as client:
        console.print(f"creating {args.entities:,} sensors ...")
        ids = load_sensors(client, args.entities)
        subscribe(client, args.subs, recv)
        dead = subscribe(client, args.dead_subs, f"http://{LOOPBACK}:{free_port()}")
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed:,}/{task.total:,} updates"),
                      TimeRemainingColumn(), console=console) as progress:
            sent, ok, samples = arun(soak(server, ids, args, progress))
        console.print(f"{ok:,} of {sent:,} updates answered 2xx; waiting for the notifications ...")
        expected = sent * args.subs
        got = drain(recv, expected, timeout=300)
        result = verdict(samples, args)
        result.update(engine=args.engine, minutes=args.minutes, rate=args.rate,
                      entities=args.entities, subs=args.subs, dead_subs=args.dead_subs,
                      updates_sent=sent, updates_ok=ok, notified_expected=expected,
                      notified_entities=got["entities"],
                      dead_sub_counters=[dead_counters(client, sub_id) for sub_id in dead])
    for key, value in result.items():
        console.print(f"{key:32} {value:,.1f}" if isinstance(value, float) else
                      f"{key:32} {value}")
    if args.json:
        args.json.write_text(json.dumps({"result": result, "samples": samples}, indent=1))
    if args.svg:
        args.svg.write_text(chart(samples, args))
    lost = result["notified_entities"] < expected or ok < sent
    return 0 if result["flat"] and not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
