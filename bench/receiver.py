"""A notification receiver for the benchmarks: ``python -m bench.receiver --port P``.

It runs in its own process so that receiving does not compete with the load generator's event
loop.  Every notified entity carries the wall-clock time at which its update was sent (the
attribute ``sentAt``); the receiver records ``arrival - sentAt`` per entity.  ``GET /stats``
returns the count and the latencies; ``POST /reset`` forgets them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from aiohttp import web


class Tally:
    """What arrived."""

    def __init__(self) -> None:
        self.notifications = 0
        self.entities = 0
        self.latencies: list[float] = []

    def add(self, body: dict[str, Any]) -> None:
        now = time.time()
        self.notifications += 1
        for entity in body.get("data", []):
            self.entities += 1
            sent = entity.get("sentAt")
            value = sent.get("value") if isinstance(sent, dict) else sent
            if isinstance(value, int | float):
                self.latencies.append(now - value)


def build_app() -> web.Application:
    tally = Tally()

    async def notify(request: web.Request) -> web.Response:
        tally.add(orjson.loads(await request.read()))
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({
            "notifications": tally.notifications, "entities": tally.entities,
            "latencies": tally.latencies}), content_type="application/json")

    async def reset(request: web.Request) -> web.Response:
        tally.__init__()  # type: ignore[misc]
        return web.Response(status=204)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/notify", notify)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Count and time benchmark notifications.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
