"""A real HTTP notification receiver for end-to-end tests, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.e2e.server import free_port


class Receiver:
    """Records every notification POSTed to ``url``; answers 503 while ``accepting`` is False."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/notify"
        self.accepting = True
        self.notifications: list[dict[str, Any]] = []
        self.refused = 0
        self._lock = threading.Lock()

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        with self._lock:
            if not self.accepting:
                self.refused += 1
                return web.Response(status=503)
            self.notifications.append(body)
        return web.Response(status=204)

    def entities(self) -> list[dict[str, Any]]:
        """Every entity of every notification so far."""
        with self._lock:
            return [e for n in self.notifications for e in n.get("data", [])]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        """Poll until ``predicate(self)`` holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return bool(predicate(self))


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A :class:`Receiver` listening on 127.0.0.1 until the block ends."""
    receiver = Receiver()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/notify", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", receiver.port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="test-receiver", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
