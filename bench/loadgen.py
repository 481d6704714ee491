"""A closed-loop HTTP/1.1 load generator: a fixed number of workers, each with a keep-alive
connection, sending requests back to back for a bounded time and count.

aiohttp is used rather than httpx because it costs the client far less CPU per request (see
``python -m bench.clientcost``), which matters when client and server share two cores.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

try:
    import aiohttp
    from yarl import URL
except ImportError as missing:  # pragma: no cover - a hint for a venv without the dev extras
    raise SystemExit("python -m bench needs aiohttp: .venv/bin/pip install aiohttp "
                     "(it belongs in pyproject's dev extras)") from missing

from bench import LOOPBACK
from bench.procstat import CpuSampler

JSON_HEADERS = {"Content-Type": "application/json"}
T = TypeVar("T")


@dataclass(frozen=True)
class Req:
    """One request: method, path with an already percent-encoded query, optional JSON body."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] | None = None
    items: int = 1  # entities carried (batch requests), for entities/s


@dataclass
class Stats:
    """What one scenario measured (the warm-up is not included)."""

    requests: int = 0
    items: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds
    error_samples: list[str] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)    # process -> % of one core

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def item_rate(self) -> float:
        return self.items / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000.0

    def merged(self, other: Stats) -> Stats:
        """This and ``other`` (another round of the same scenario) as one measurement."""
        return Stats(requests=self.requests + other.requests, items=self.items + other.items,
                     errors=self.errors + other.errors, elapsed=self.elapsed + other.elapsed,
                     latencies=self.latencies + other.latencies)


def _check_loopback(base: str) -> None:
    host = URL(base).host
    if host != LOOPBACK:
        raise ValueError(f"the load generator only talks to {LOOPBACK}, not {host!r}")


def new_session(concurrency: int) -> aiohttp.ClientSession:
    """A session with at most ``concurrency`` keep-alive connections and no proxy/env lookups."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency,
                                     keepalive_timeout=120, use_dns_cache=True)
    return aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False,
                                 timeout=aiohttp.ClientTimeout(total=60),
                                 skip_auto_headers=("User-Agent", "Accept-Encoding"))


async def run_load(base: str, make: Callable[[int], Req], *, concurrency: int, duration: float,
                   max_requests: int, warmup: float = 1.0,
                   on_tick: Callable[[float, int], None] | None = None,
                   cpu: CpuSampler | None = None) -> Stats:
    """Send ``make(i)`` requests from ``concurrency`` workers for ``warmup + duration`` seconds,
    at most ``max_requests`` in all; return statistics of the part after the warm-up."""
    _check_loopback(base)
    stats = Stats()
    counter = iter(range(max_requests))
    measuring = False
    window_start = 0.0
    stop_at = time.perf_counter() + warmup + duration
    perf = time.perf_counter

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal measuring
        for i in counter:
            if perf() >= stop_at:
                return
            req = make(i)
            url = URL(base + req.path, encoded=True)
            headers = req.headers if req.headers is not None else (JSON_HEADERS if req.body else None)
            t0 = perf()
            try:
                async with session.request(req.method, url, data=req.body, headers=headers) as resp:
                    payload = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, payload = 0, repr(exc).encode()
            t1 = perf()
            if not measuring:
                continue
            stats.requests += 1
            stats.latencies.append(t1 - t0)
            stats.status_counts[status] = stats.status_counts.get(status, 0) + 1
            if 200 <= status < 300:
                stats.items += req.items
            else:
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    stats.error_samples.append(
                        f"{req.method} {req.path[:120]} -> {status} {payload[:300]!r}")

    async def ticker() -> None:
        nonlocal measuring, window_start
        await asyncio.sleep(warmup)
        if cpu:
            cpu.start()
        window_start = perf()
        measuring = True
        while perf() < stop_at:
            await asyncio.sleep(0.25)
            if on_tick:
                on_tick(min(perf() - window_start, duration), stats.requests)

    session = new_session(concurrency)
    try:
        tick = asyncio.create_task(ticker())
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        end = perf()
        tick.cancel()
        # elapsed covers the measured part only: from the end of warm-up to the last answer
        stats.elapsed = max(1e-9, end - window_start) if measuring else 0.0
        if cpu and measuring:
            stats.cpu = cpu.stop()
    finally:
        await session.close()
    return stats


async def send_all(base: str, reqs: Iterator[Req], *, concurrency: int,
                   on_done: Callable[[Req, int, bytes], None]) -> None:
    """Send a finite list of requests (data loading) with ``concurrency`` in flight."""
    _check_loopback(base)
    it = iter(reqs)  # one generator shared by the workers: requests are built lazily

    async def worker(session: aiohttp.ClientSession) -> None:
        for req in it:
            url = URL(base + req.path, encoded=True)
            headers = req.headers if req.headers is not None else JSON_HEADERS
            async with session.request(req.method, url, data=req.body, headers=headers) as resp:
                payload = await resp.read()
                on_done(req, resp.status, payload)

    async with new_session(concurrency) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def describe_errors(stats: Stats) -> Any:
    """A short summary of non-2xx answers for the report."""
    return {"status_counts": stats.status_counts, "samples": stats.error_samples}


def measure_round(out: dict[str, Stats], key: str, base: str, make: Callable[[int], Req], *,
                  concurrency: int, seconds: float) -> None:
    """One round of ``make`` against ``base`` for ``seconds``, merged into ``out[key]``.

    For benchmarks whose contenders take turns in short rounds, so that a change in the
    machine's load weighs on each alike; any non-2xx answer stops the benchmark.
    """
    stats = arun(run_load(base, make, concurrency=concurrency, duration=seconds,
                          max_requests=1_000_000, warmup=0.5))
    if stats.errors:
        raise RuntimeError(f"{key}: {stats.error_samples[:2]}")
    out[key] = out[key].merged(stats) if key in out else stats


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (uvloop when installed, as the server uses)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
