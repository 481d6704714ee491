"""The in-memory index of context source registrations that keeps local requests fast.

Every entity request asks :meth:`RegistrationIndex.for_tenant` first; with no registration in the
tenant (the usual case) that is a dictionary lookup and the request runs exactly as before.  The
index is filled from the stored documents on first use and re-read every
:data:`REFRESH_SECONDS`, so a registration made through another API node sharing the database is
seen within that time; registrations made through this node are seen at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from cityos.data.ngsild.csource.model import KIND, Registration
from cityos.data.ngsild.payload import utc_now

REFRESH_SECONDS = 5.0


class RegistrationIndex:
    """Registrations by tenant, and the HTTP client used to forward requests to them."""

    def __init__(self, store: Any, settings: Any, resolver: Any = None) -> None:
        self.store = store
        self.settings = settings
        self.resolver = resolver          # the broker's ContextResolver (csource notifications)
        self._by_tenant: dict[str, dict[str, Registration]] = {}
        self._loaded_at = -1e18
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        # csource subscriptions: delivery counters by (tenant, id), notifications in flight
        self.csub_status: dict[tuple[str, str], dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def for_tenant(self, tenant: str) -> list[Registration]:
        """The tenant's registrations that have not expired (often none: then cheap)."""
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            await self.reload()
        regs = self._by_tenant.get(tenant)
        if not regs:
            return []
        now = utc_now()
        return [r for r in regs.values() if not r.expired(now)]

    async def reload(self) -> None:
        """Re-read every stored registration (all tenants)."""
        async with self._lock:
            if time.monotonic() - self._loaded_at <= REFRESH_SECONDS:
                return
            docs = await self.store.list_documents(KIND)
            fresh: dict[str, dict[str, Registration]] = {}
            for doc in docs:
                tenant = doc.pop("_tenant", "")
                old = self._by_tenant.get(tenant, {}).get(doc["id"])
                reg = Registration.from_doc(doc, tenant)
                if old is not None:
                    reg.status = old.status       # delivery counters live in memory
                fresh.setdefault(tenant, {})[reg.id] = reg
            self._by_tenant = fresh
            self._loaded_at = time.monotonic()

    def get(self, tenant: str, reg_id: str) -> Registration | None:
        """A registration this node knows, or ``None``."""
        return self._by_tenant.get(tenant, {}).get(reg_id)

    def put(self, reg: Registration) -> None:
        """Remember a registration just written through this node."""
        old = self.get(reg.tenant, reg.id)
        if old is not None:
            reg.status = old.status
        self._by_tenant.setdefault(reg.tenant, {})[reg.id] = reg

    def drop(self, tenant: str, reg_id: str) -> None:
        """Forget a registration just deleted through this node."""
        self._by_tenant.get(tenant, {}).pop(reg_id, None)

    def client(self) -> httpx.AsyncClient:
        """The shared client for forwarded requests (connections are reused across requests)."""
        if self._client is None:
            timeout = self.settings.federation_timeout
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                follow_redirects=False, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        """Close the forwarding client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def index_of(app: Any) -> RegistrationIndex:
    """The app's registration index, created on first use."""
    index: RegistrationIndex | None = getattr(app.state, "csource_index", None)
    if index is None:
        broker = app.state.broker
        index = RegistrationIndex(broker.store, broker.settings, broker.resolver)
        app.state.csource_index = index
    return index


async def close_index(app: Any) -> None:
    """At shutdown: stop csource notifications in flight and close the forwarding client."""
    index: RegistrationIndex | None = getattr(app.state, "csource_index", None)
    if index is None:
        return
    for task in list(index.tasks):
        task.cancel()
    await asyncio.gather(*index.tasks, return_exceptions=True)
    await index.aclose()
