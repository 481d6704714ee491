"""Serve an ASGI app on a real port inside the test's event loop (no tests here).

Used where the code under test must reach another server over real HTTP: context sources
(``tests/data/test_csource_support.py``), files and APIs that importers and external systems pull
(``tests/ingest/test_import_support.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tests.e2e.server import free_port


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI ``app`` on a free port of 127.0.0.1 in this event loop; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:          # readiness, not timing: uvicorn sets it once listening
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
