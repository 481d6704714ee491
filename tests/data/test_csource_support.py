"""Fixtures shared by the context source tests (no tests here).

Remote context sources are real HTTP servers on free ports of 127.0.0.1, served by uvicorn in the
test's event loop: a second CityOS app (:func:`served_cityos`) or a small stub whose answers a
test sets (:class:`Stub`).  Forwarding to 127.0.0.1 is refused by the default SSRF policy, so the
settings allow it exactly as an operator of two cities on one machine would
(``CITYOS_NOTIFICATION_ALLOW=127.0.0.1``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.stub_server import serve

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
CSR = f"{BASE}/csourceRegistrations"


def make_settings(database_url: str, **extra: Any) -> Settings:
    """Test settings that let forwarded requests go to 127.0.0.1, with a short timeout."""
    values: dict[str, Any] = {"max_batch_size": 100, "max_page_size": 200,
                              "context_fetch_timeout": 2.0, "notification_allow": "127.0.0.1",
                              "federation_timeout": 1.0, "federation_id": "city-b"}
    return Settings.load(database_url=database_url, **{**values, **extra})


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Overrides conftest's settings: forwarding to 127.0.0.1 is allowed."""
    return make_settings(database_url)


@asynccontextmanager
async def served_cityos(**extra: Any) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A second, real CityOS (city A, in-memory SQLite) on a free port, and a client to it."""
    settings = make_settings("sqlite://", federation_id="city-a", **extra)
    async with serve(create_app(settings)) as base, httpx.AsyncClient(base_url=base) as client:
        yield base, client


@dataclass
class Stub:
    """A tiny context source: answers what a test sets and records what it received."""

    replies: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    hang: asyncio.Event | None = None       # set: every request waits until the event is set
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` requests arrived (a guard of 10 s against hanging forever)."""
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.received) >= count)

        await asyncio.wait_for(enough(), 10)
        return self.received

    def reply(self, method: str, path: str, status: int, body: Any = b"") -> None:
        """Answer ``method path`` (path below /ngsi-ld/v1) with ``status`` and ``body``."""
        import orjson

        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.replies[(method, BASE + path)] = (status, raw)

    async def handle(self, request: Request) -> Response:
        self.received.append({"method": request.method, "path": request.url.path,
                              "query": dict(request.query_params),
                              "headers": dict(request.headers), "body": await request.body()})
        async with self.arrived:
            self.arrived.notify_all()
        if self.hang is not None:
            await self.hang.wait()
        status, raw = self.replies.get((request.method, request.url.path), (404, b""))
        return Response(raw, status, media_type="application/json" if raw else None)


@asynccontextmanager
async def served_stub() -> AsyncIterator[tuple[str, Stub]]:
    """A :class:`Stub` on a free port; yields its base URL and the stub."""
    stub = Stub()
    app = Starlette(routes=[Route("/{path:path}", stub.handle,
                                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
    async with serve(app) as base:
        yield base, stub


def registration(endpoint: str, *, reg_id: str = "urn:ngsi-ld:ContextSourceRegistration:r1",
                 entities: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A registration body for Vehicles at ``endpoint``."""
    info: dict[str, Any] = {"entities": entities or [{"type": "Vehicle"}]}
    body: dict[str, Any] = {"id": reg_id, "type": "ContextSourceRegistration",
                            "information": [info], "endpoint": endpoint}
    body.update(extra)
    return body


def vehicle(entity_id: str, speed: float = 50, observed: str | None = None,
            **attrs: Any) -> dict[str, Any]:
    """A Vehicle entity in the normalized form."""
    prop: dict[str, Any] = {"type": "Property", "value": speed}
    if observed:
        prop["observedAt"] = observed
    return {"id": entity_id, "type": "Vehicle", "speed": prop, **attrs}
