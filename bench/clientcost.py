"""``python -m bench.clientcost``: what one request costs the load generator, httpx vs aiohttp.

Both clients send the same GETs of one entity to a real ``cityos serve`` with the same number of
keep-alive connections; the number that matters on a 2-core machine is the client's CPU time per
request, since every microsecond the client spends is taken from the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from bench.data import BASE, parking_spot
from bench.loadgen import arun, new_session
from bench.procstat import process_cpu, self_cpu
from bench.servers import running_server, sqlite_database

REQUESTS = 20_000
CONCURRENCY = 16
ENTITY = "urn:ngsi-ld:ParkingSpot:clientcost"


async def _drive(send: Callable[[], Awaitable[int]]) -> int:
    remaining = iter(range(REQUESTS))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for _ in remaining:
            if not 200 <= await send() < 300:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return errors


async def with_httpx(url: str) -> int:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=30) as client:
        async def send() -> int:
            return (await client.get(url)).status_code
        return await _drive(send)


async def with_aiohttp(url: str) -> int:
    async with new_session(CONCURRENCY) as session:
        async def send() -> int:
            async with session.get(url) as resp:
                await resp.read()
                return resp.status
        return await _drive(send)


def main() -> None:
    console = Console()
    table = Table("client", "req/s", "client CPU µs/request", "server CPU µs/request", "errors",
                  title=f"{REQUESTS:,} GET /entities/{{id}}, {CONCURRENCY} connections")
    with sqlite_database() as (db, workdir), running_server(db, workdir) as server:
        body = orjson.dumps(parking_spot(ENTITY, __import__("random").Random(1)))
        httpx.post(f"{server.base}{BASE}/entities", content=body,
                   headers={"Content-Type": "application/json"}).raise_for_status()
        url = f"{server.base}{BASE}/entities/{ENTITY}"
        for name, run in (("httpx", with_httpx), ("aiohttp", with_aiohttp),
                          ("httpx", with_httpx), ("aiohttp", with_aiohttp)):
            c0, s0, t0 = self_cpu(), process_cpu(server.pid), time.perf_counter()
            errors = arun(run(url))
            c1, s1, t1 = self_cpu(), process_cpu(server.pid), time.perf_counter()
            table.add_row(name, f"{REQUESTS / (t1 - t0):,.0f}",
                          f"{(c1 - c0) / REQUESTS * 1e6:,.0f}",
                          f"{(s1 - s0) / REQUESTS * 1e6:,.0f}", str(errors))
    console.print(table)


if __name__ == "__main__":
    main()
