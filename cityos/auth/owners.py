"""Re-resolve a stored owner (a subscription's creator) to what it may see now (ADR 0012 §9).

A subscription outlives the token it was created with: at each delivery its owner is looked up
again, so a disabled account or client, a removed role or an expired policy stops notifications
at once.  Lookups are cached for a second per owner: deliveries come in bursts.
"""

from __future__ import annotations

import time
from typing import Any

from cityos.auth.runtime import AuthRuntime
from cityos.core.access import Access, Principal

CACHE_SECONDS = 1.0


class OwnerResolver:
    """``access_for(owner, tenant)`` for the notifier."""

    def __init__(self, runtime: AuthRuntime) -> None:
        self.runtime = runtime
        self._cache: dict[tuple[str, str, str | None], tuple[float, Principal | None]] = {}

    async def _current(self, owner: dict[str, Any]) -> Principal | None:
        recorded = Principal.from_description(owner)
        key = (recorded.kind, recorded.subject, recorded.client_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        principal = await self._resolve(recorded)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, principal)
        return principal

    async def _resolve(self, recorded: Principal) -> Principal | None:
        directory = self.runtime.directory
        client = await directory.get_client(recorded.client_id) if recorded.client_id else None
        if recorded.client_id and (client is None or not client.valid_at(time.time())):
            return None
        if recorded.kind == "user":
            account = await directory.get_account(recorded.subject)
            if account is None or account.status != "active":
                return None
            org = await directory.get_organization(account.organization_id) \
                if account.organization_id else None
            return Principal(kind="user", subject=account.id, client_id=recorded.client_id,
                             organization=account.organization_id,
                             home_tenant=org.home_tenant if org else "", roles=account.roles,
                             scopes=recorded.scopes, amr=recorded.amr, purpose=recorded.purpose)
        if recorded.kind == "client" and client is not None:
            org = await directory.get_organization(client.organization_id) \
                if client.organization_id else None
            return Principal(kind="client", subject=client.client_id, client_id=client.client_id,
                             organization=client.organization_id,
                             home_tenant=org.home_tenant if org else "",
                             roles=frozenset(client.roles), scopes=recorded.scopes,
                             purpose=recorded.purpose)
        return None

    async def access_for(self, owner: dict[str, Any], tenant: str) -> Access | None:
        principal = await self._current(owner)
        if principal is None:
            return None
        evaluator = self.runtime.evaluator
        await evaluator.refresh()
        read = evaluator.view(principal, "entity.read", tenant)
        if read is None or (not principal.allows_scope("entities:read") and \
                not principal.allows_scope("subscriptions")):
            return None
        return Access(principal, "subscription.notify", tenant, read, None,
                      consents=self.runtime.consents, audit=self.runtime.audit)
