"""The policy evaluator: which policies allow a principal an action in a tenant, and what they show.

It holds an immutable snapshot of all policies, swapped when the directory's configuration version
changes (checked at most once a second, so every node follows an edit within a second).  A
decision is a dictionary lookup while the snapshot and the validity boundaries stay the same.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cityos.auth.directory import Directory, Policy
from cityos.core.access import AccessView, Principal

CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class _Snapshot:
    version: int
    policies: tuple[Policy, ...]


class PolicyEvaluator:
    """Allow-only evaluation of the directory's policies (ADR 0012 §8)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._snapshot = _Snapshot(-1, ())
        self._checked = 0.0
        self._local = 0
        self._lock = asyncio.Lock()
        self._cache: dict[tuple[object, ...], AccessView | None] = {}
        self._decisions: dict[tuple[object, ...], Decision] = {}

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the policies if the directory changed (at most once per CHECK_INTERVAL)."""
        now = time.monotonic()
        local = self.directory.local_changes
        if not force and now - self._checked < CHECK_INTERVAL and local == self._local:
            return
        async with self._lock:
            if not force and now - self._checked < CHECK_INTERVAL and local == self._local:
                return
            self._local = local
            version = await self.directory.config_version()
            if version != self._snapshot.version:
                policies = tuple(await self.directory.list_policies())
                self._snapshot = _Snapshot(version, policies)
                self._cache, self._decisions = {}, {}
            self._checked = time.monotonic()

    def view(self, who: Principal, action: str, tenant: str, now: float | None = None) -> AccessView | None:
        """The union of what every valid policy matching ``who``, ``action`` and ``tenant`` allows;
        None when none does."""
        now = time.time() if now is None else now
        key = (who.kind, who.subject, who.roles, who.client_id, who.organization, who.home_tenant,
               action, tenant, self._snapshot.version, int(now))
        if key in self._cache:
            return self._cache[key]
        views = [AccessView(None if p.types is None else frozenset(p.types),
                            None if p.attributes is None else frozenset(p.attributes))
                 for p in self._snapshot.policies
                 if p.valid_at(now) and _subject_matches(p, who) and _action_matches(p, action)
                 and _tenant_matches(p, who, tenant)]
        result = AccessView.union(views)
        if len(self._cache) > 10_000:
            self._cache = {}
        self._cache[key] = result
        return result

    def allows(self, who: Principal, action: str, tenant: str) -> bool:
        return self.view(who, action, tenant) is not None

    def decision(self, who: Principal, action: str, tenant: str) -> Decision:
        """Everything one request needs from the policies, in one cached lookup: whether
        ``action`` is allowed, the read view, the write view and whether it may mark personal
        data."""
        now = time.time()
        key = (who.kind, who.subject, who.roles, who.client_id, who.organization,
               who.home_tenant, action, tenant, self._snapshot.version, int(now))
        found = self._decisions.get(key)
        if found is None:
            allowed = self.view(who, action, tenant, now) is not None
            read = self.view(who, "entity.read", tenant, now)
            # other actions that write entities (imports, provisioning) write under entity.write
            write_action = action if action in ("entity.write", "entity.delete") else "entity.write"
            write = self.view(who, write_action, tenant, now)
            found = Decision(allowed, read, write, self.view(who, "pd.manage", tenant, now) is not None)
            if len(self._decisions) > 10_000:
                self._decisions = {}
            self._decisions[key] = found
        return found


@dataclass(frozen=True)
class Decision:
    allowed: bool
    read: AccessView | None
    write: AccessView | None
    may_manage_pd: bool


def _subject_matches(policy: Policy, who: Principal) -> bool:
    kind, subject = policy.subject_kind, policy.subject
    if kind == "role":
        return subject in who.roles
    if kind == "account":
        return who.kind == "user" and who.subject == subject
    if kind == "client":
        return who.client_id == subject
    if kind == "organization":
        return who.organization == subject and who.kind != "anonymous"
    return False


def _action_matches(policy: Policy, action: str) -> bool:
    return "*" in policy.actions or action in policy.actions


def _tenant_matches(policy: Policy, who: Principal, tenant: str) -> bool:
    for allowed in policy.tenants:
        if allowed == "*" or allowed == tenant or (allowed == "@home" and tenant == who.home_tenant):
            return True
    return False
