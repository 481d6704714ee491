"""Test helpers for the notifier (no tests here): a registry, a store, a renderer, a receiver.

The registry and store are small stand-ins with exactly the methods the notifier uses; the HTTP
receiver is a real aiohttp server on 127.0.0.1 and MQTT goes through the real Mosquitto broker.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cityos.core.settings import Settings
from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.store.base import OutboxRow, QueryPlan
from cityos.data.ngsild.subscriptions.model import Counters, Endpoint, NotifyItem, Subscription

TYPE = "https://example.org/Parking"


def make_settings(**overrides: Any) -> Settings:
    """Fast retries, a short timeout, and 127.0.0.1 allowed (the receivers run there)."""
    values: dict[str, Any] = {"notification_allow": "127.0.0.1", "notification_backoff": 0.05,
                              "notification_retries": 3, "notification_timeout": 1.0}
    values.update(overrides)
    return Settings(**values)


class Registry:
    """The four registry methods the notifier uses."""

    def __init__(self, *subs: Subscription) -> None:
        self.subs: dict[tuple[str, str], Subscription] = {(s.tenant, s.id): s for s in subs}
        self._counters: dict[tuple[str, str], Counters] = {}
        self.paused: set[str] = set()

    def add(self, sub: Subscription) -> None:
        self.subs[(sub.tenant, sub.id)] = sub

    def get(self, tenant: str, sub_id: str) -> Subscription | None:
        return self.subs.get((tenant, sub_id))

    def all(self) -> list[Subscription]:
        return list(self.subs.values())

    def counters(self, tenant: str, sub_id: str) -> Counters:
        return self._counters.setdefault((tenant, sub_id), Counters())

    def status(self, sub: Subscription) -> str:
        return "paused" if sub.id in self.paused else "active"


@dataclass
class MemoryStore:
    """Outbox, documents and query, in memory."""

    outbox: dict[str, OutboxRow] = field(default_factory=dict)
    documents: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    entities: list[dict[str, Any]] = field(default_factory=list)
    done_calls: list[list[str]] = field(default_factory=list)
    put_many_calls: int = 0

    async def outbox_pending(self, limit: int = 1000) -> list[OutboxRow]:
        return list(self.outbox.values())[:limit]

    async def outbox_done(self, ids: list[str]) -> None:
        self.done_calls.append(list(ids))
        for i in ids:
            self.outbox.pop(i, None)

    async def put_document(self, kind: str, tenant: str, doc_id: str, doc: dict[str, Any],
                           *, create: bool = False) -> bool:
        self.documents[(kind, tenant, doc_id)] = dict(doc)
        return True

    async def put_documents(self, kind: str, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.put_many_calls += 1
        for tenant, doc_id, doc in docs:
            self.documents[(kind, tenant, doc_id)] = dict(doc)

    async def list_documents(self, kind: str, tenant: str | None = None) -> list[dict[str, Any]]:
        return [{**d, "_tenant": t} for (k, t, _), d in self.documents.items()
                if k == kind and tenant in (None, t)]

    async def delete_document(self, kind: str, tenant: str, doc_id: str) -> bool:
        return self.documents.pop((kind, tenant, doc_id), None) is not None

    async def query(self, plan: QueryPlan) -> tuple[list[dict[str, Any]], int | None]:
        keep = plan.python_filter()
        found = [e for e in self.entities if keep(e)]
        return found[plan.offset:plan.offset + plan.limit], None


def render(sub: Subscription, items: list[NotifyItem]) -> tuple[dict[str, Any], dict[str, str]]:
    """A minimal NGSI-LD notification: the real renderer belongs to the subscriptions API."""
    body = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
            "subscriptionId": sub.id, "data": [dict(i.entity, trigger=i.trigger) for i in items]}
    headers = dict(sub.endpoint.receiver_info)
    headers["Link"] = '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    return body, headers


def entity(n: int, value: Any = 1) -> dict[str, Any]:
    """An internal-form entity."""
    return {"id": f"urn:ngsi-ld:Parking:{n}", "type": [TYPE],
            "createdAt": "2026-01-01T00:00:00.000000Z", "modifiedAt": "2026-01-01T00:00:00.000000Z",
            "attrs": {"https://example.org/free": [{"type": "Property", "value": value}]}}


def row(sub_ids: list[str], n: int = 1, value: Any = 1, tenant: str = "") -> OutboxRow:
    """A notify outbox row as the write path creates it."""
    return OutboxRow(id=f"row-{uuid.uuid4().hex}", tenant=tenant, kind="notify", body={
        "subs": [[s, "attributeUpdated"] for s in sub_ids], "entity": entity(n, value),
        "previous": None, "at": "2026-01-01T00:00:00.000000Z"})


def subscription(uri: str, sub_id: str | None = None, **kwargs: Any) -> Subscription:
    endpoint = kwargs.pop("endpoint", None) or Endpoint(uri=uri)
    return Subscription(id=sub_id or f"urn:ngsi-ld:Subscription:{uuid.uuid4().hex[:8]}",
                        tenant=kwargs.pop("tenant", ""), endpoint=endpoint, **kwargs)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """A real HTTP server on 127.0.0.1 that records notifications.

    ``statuses`` are answered in turn (then 200); ``hang`` paths never answer.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.hang: set[str] = set()
        self.arrived = asyncio.Condition()
        self._release = asyncio.Event()         # lets hanging handlers end when stopping
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/notify") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path in self.hang:
            await self._release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        body = await request.json()
        if status < 300:
            self.received.append(Received(request.path, dict(request.headers), body))
            async with self.arrived:
                self.arrived.notify_all()
        return web.Response(status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server else []   # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, predicate: Callable[[list[Received]], bool],
                       timeout: float = 5.0) -> list[Received]:
        """Wait until ``predicate(received)`` holds ("arrives within a few seconds")."""
        async with asyncio.timeout(timeout):
            async with self.arrived:
                await self.arrived.wait_for(lambda: predicate(self.received))
        return self.received

    def entity_ids(self, path: str | None = None) -> list[str]:
        return [d["id"] for r in self.received if path in (None, r.path) for d in r.body["data"]]


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds, failing after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def notifying_client(database_url: str, **settings: Any) -> AsyncIterator[Any]:
    """An HTTP client on the whole app, its notifications allowed to 127.0.0.1 with fast retries.

    PostgreSQL is emptied before start-up, not after: the registry loads subscriptions at start.
    """
    import httpx

    from cityos.app import create_app
    from tests.conftest import _empty_postgres

    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
    values: dict[str, Any] = {"notification_allow": "127.0.0.1", "notification_backoff": 0.05,
                              "notification_retries": 2, "notification_timeout": 0.5, **settings}
    app = create_app(Settings.load(database_url=database_url, **values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            yield c
