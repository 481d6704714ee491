"""Every subscription of every tenant, in memory, and the hot path that matches writes to them.

:meth:`SubscriptionRegistry.match` runs inside the store's write transaction (on the SQLite writer
thread, or on the event loop for PostgreSQL) for every entity a write changes, so it does no I/O,
never awaits and takes no lock.  Writers (the API, a handful of times a day) never change a
structure a reader may be walking: they build new dictionaries and swap them in with one
attribute assignment, which is atomic in CPython, so a reader sees either the old or the new
state, never half of one (copy-on-write).

Per tenant the subscriptions that can fire are indexed by exact entity id and by entity type
IRI: one whose selectors all name ids (``entities: [{"id": ...}]``, with or without a type) is
looked at only for those entities, one that selects by type only for entities of that type, so
1,000 subscriptions each watching one sensor cost an update one dictionary lookup, not 1,000
selector tests.  A subscription with several selectors may sit under ids and types at once; match
then looks at it once.  Those selecting by idPattern alone, or by watchedAttributes alone, are
kept in one short list looked at for every entity of the tenant.  Paused and periodic
subscriptions are not indexed at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cityos.core.problems import Problem
from cityos.data.ngsild.context import ContextResolver
from cityos.data.ngsild.history import CREATED, DELETED, UPDATED
from cityos.data.ngsild.store.base import Change, EntityStore
from cityos.data.ngsild.subscriptions.index import EMPTY, Compiled, TenantIndex
from cityos.data.ngsild.subscriptions.model import (
    ATTRIBUTE_CREATED,
    ATTRIBUTE_DELETED,
    ATTRIBUTE_UPDATED,
    ENTITY_CREATED,
    ENTITY_DELETED,
    ENTITY_UPDATED,
    Counters,
    Subscription,
)
from cityos.data.ngsild.subscriptions.storage import KIND, from_document
from cityos.data.ngsild.subscriptions.terms import replay
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import now_micros

log = logging.getLogger("cityos.subscriptions")

Key = tuple[str, str]  # (tenant, subscription id)
# attribute change kind -> the trigger it fires, in the order a change with several kinds is named
_ATTRIBUTE_TRIGGERS = ((UPDATED, ATTRIBUTE_UPDATED), (CREATED, ATTRIBUTE_CREATED),
                       (DELETED, ATTRIBUTE_DELETED))


def fired_trigger(sub: Subscription, change: Change, kinds: dict[str, str]) -> str | None:
    """The notificationTrigger ``change`` fires for ``sub``, or None (clause 5.2.12).

    A watchedAttributes list narrows every trigger except entityDeleted to changes of the
    attributes it names.  Without notificationTrigger the defaults attributeCreated and
    attributeUpdated apply, so creating an entity notifies (its attributes were created).
    """
    triggers = sub.triggers
    watched = sub.watched
    if change.after is None:
        return ENTITY_DELETED if ENTITY_DELETED in triggers else None
    relevant = kinds if watched is None else {a: k for a, k in kinds.items() if a in watched}
    if change.before is None:
        if ENTITY_CREATED in triggers and (relevant or watched is None):
            return ENTITY_CREATED
        return ATTRIBUTE_CREATED if ATTRIBUTE_CREATED in triggers and relevant else None
    if ENTITY_UPDATED in triggers and (relevant or (watched is None and _reshaped(change))):
        return ENTITY_UPDATED
    if relevant:
        present = set(relevant.values())
        for kind, trigger in _ATTRIBUTE_TRIGGERS:
            if kind in present and trigger in triggers:
                return trigger
    return None


def _reshaped(change: Change) -> bool:
    """Type or scope changed (an entity update that touches no attribute)."""
    before, after = change.before or {}, change.after or {}
    return bool(before.get("type") != after.get("type") or before.get("scope") != after.get("scope"))


class SubscriptionRegistry:
    """All subscriptions of all tenants; see the module docstring for the concurrency rules."""

    def __init__(self) -> None:
        self._subs: dict[Key, Subscription] = {}
        # stored document kind -> how to rebuild a subscription of it (another face adds its own)
        self._kinds: dict[str, Callable[[dict[str, Any], str], Subscription]] = {
            KIND: from_document}
        self._index: dict[str, TenantIndex] = {}
        self._counters: dict[Key, Counters] = {}
        self._write_lock = threading.Lock()   # writers only; match() never takes it

    # -- start-up ---------------------------------------------------------------------------
    async def load(self, store: EntityStore, resolver: ContextResolver) -> int:
        """Read every stored subscription; returns how many were loaded.

        A subscription whose document no longer validates is logged and left out rather than
        stopping the whole broker from starting.  Delivery counters are loaded by the notifier.
        """
        loaded: list[Subscription] = []
        for kind, rebuild in self._kinds.items():
            for doc in await store.list_documents(kind):
                tenant = doc.get("_tenant", "")
                try:
                    sub = rebuild(doc, tenant)
                except (Problem, KeyError, TypeError, ValueError) as exc:
                    log.warning("subscription %s of tenant %r not loaded: %s",
                                (doc.get("body") or {}).get("id"), tenant, exc)
                    continue
                if kind == KIND:
                    sub.term_map = await compaction_term_map(sub, resolver)
                loaded.append(sub)
        with self._write_lock:
            subs = dict(self._subs)
            for sub in loaded:
                subs[(sub.tenant, sub.id)] = sub
            self._publish(subs, {sub.tenant for sub in loaded})
        return len(loaded)

    def add_kind(self, kind: str, rebuild: Callable[[dict[str, Any], str], Subscription]) -> None:
        """Also load documents of ``kind`` at start-up, rebuilt by ``rebuild(doc, tenant)``.

        For the subscriptions of another face (NGSI v2): they live in the same registry, so they
        fire on every write like NGSI-LD ones, but are stored in their own form.
        """
        self._kinds[kind] = rebuild

    # -- reads ------------------------------------------------------------------------------
    def get(self, tenant: str, sub_id: str) -> Subscription | None:
        """One subscription, or None."""
        return self._subs.get((tenant, sub_id))

    def wants_previous(self, tenant: str, sub_ids: list[str]) -> bool:
        """Whether a change firing ``sub_ids`` must carry the entity's state before it.

        ``showChanges`` shows previous values; ``attributeDeleted`` and ``entityUpdated``
        notifications show each attribute the change removed as ``urn:ngsi-ld:null`` (ETSI
        046_22), which only the state before the change knows.
        """
        needs = self._index.get(tenant, EMPTY).needs_previous
        return bool(needs) and any(sub_id in needs for sub_id in sub_ids)

    def all(self) -> list[Subscription]:
        """Every subscription of every tenant."""
        return list(self._subs.values())

    def of_tenant(self, tenant: str, face: str | None = None) -> list[Subscription]:
        """The tenant's subscriptions (of one ``face``, or all), oldest first (the order GET
        /subscriptions pages in)."""
        subs = [s for (t, _), s in self._subs.items()
                if t == tenant and (face is None or s.face == face)]
        subs.sort(key=lambda s: (s.created_at, s.id))
        return subs

    def counters(self, tenant: str, sub_id: str) -> Counters:
        """The delivery counters of a subscription, created on first use."""
        key = (tenant, sub_id)
        found = self._counters.get(key)
        if found is None:
            found = self._counters.setdefault(key, Counters())
        return found

    def status(self, sub: Subscription) -> str:
        """``paused`` (isActive false), ``expired``, ``failed`` (last delivery failed) or
        ``active``."""
        if not sub.is_active:
            return "paused"
        if sub.expires_at is not None and sub.expires_at <= now_micros():
            return "expired"
        counters = self._counters.get((sub.tenant, sub.id))
        if counters is not None and counters.failing:
            return "failed"
        return "active"

    # -- writes -----------------------------------------------------------------------------
    def put(self, sub: Subscription) -> None:
        """Add or replace a subscription."""
        with self._write_lock:
            subs = dict(self._subs)
            subs[(sub.tenant, sub.id)] = sub
            self._publish(subs, {sub.tenant})

    def put_all(self, subs: list[Subscription]) -> None:
        """Add or replace many subscriptions at once (one index rebuild per tenant)."""
        with self._write_lock:
            merged = dict(self._subs)
            for sub in subs:
                merged[(sub.tenant, sub.id)] = sub
            self._publish(merged, {sub.tenant for sub in subs})

    def remove(self, tenant: str, sub_id: str) -> bool:
        """Forget a subscription and its counters; False when there was none."""
        with self._write_lock:
            if (tenant, sub_id) not in self._subs:
                return False
            subs = dict(self._subs)
            del subs[(tenant, sub_id)]
            counters = dict(self._counters)
            counters.pop((tenant, sub_id), None)
            self._counters = counters
            self._publish(subs, {tenant})
            return True

    def _publish(self, subs: dict[Key, Subscription], tenants: set[str]) -> None:
        """Swap in ``subs`` and the rebuilt indexes of ``tenants`` (write lock held)."""
        index = dict(self._index)
        for tenant in tenants:
            built = TenantIndex.build([s for (t, _), s in subs.items() if t == tenant])
            if not built.empty or built.needs_previous:
                index[tenant] = built
            else:
                index.pop(tenant, None)
        self._subs = subs
        self._index = index

    # -- the hot path -----------------------------------------------------------------------
    def match(self, tenant: str, change: Change,
              kinds: dict[str, str]) -> Sequence[tuple[str, str]]:
        """(subscription id, trigger) of every subscription of ``tenant`` that ``change`` fires.

        Only active, unexpired, non-periodic subscriptions are considered.  Selectors, ``q``,
        ``geoQ`` and ``scopeQ`` are evaluated on the entity after the change (before it, for a
        deletion).  ``kinds``: attribute IRI -> created / updated / deleted.

        When one group of alike subscriptions fired and nothing else, the answer is that
        group's prebuilt tuple itself, the same object change after change: the notifier hands
        a run of such changes to each subscription's queue in one step (notify/dispatcher.py).
        """
        index = self._index.get(tenant, EMPTY)
        entity = change.after if change.after is not None else change.before
        if entity is None or index.empty:
            return []
        fired: list[tuple[str, str]] = []
        alone: tuple[tuple[str, str], ...] | None = None   # one prebuilt tuple, nothing else
        now: int | None = None
        candidates: list[tuple[Compiled, ...]] = []
        if index.by_id:
            by_id = index.by_id.get(entity["id"])
            if by_id is not None:
                candidates.append(by_id)
        if index.by_type:
            candidates += [index.by_type[t] for t in entity["type"] if t in index.by_type]
        # a subscription indexed under the entity's id and its type, or under two of its types,
        # must fire once (the untyped ones are indexed nowhere else)
        seen: set[int] | None = set() if len(candidates) > 1 else None
        candidates.append(index.untyped)
        for group in candidates:
            for compiled in group:
                if seen is not None:
                    if id(compiled) in seen:
                        continue
                    seen.add(id(compiled))
                if not compiled.selects(entity):
                    continue
                trigger = fired_trigger(compiled.sub, change, kinds)
                if trigger is None:
                    continue
                if compiled.state_filter is not None and not compiled.state_filter(entity):
                    continue
                if not compiled.expiring:
                    pairs = compiled.fired.get(trigger)
                    if pairs is None:    # a race builds the same tuple twice: harmless
                        pairs = compiled.fired[trigger] = tuple(
                            (sub.id, trigger) for sub in compiled.members)
                    if not fired and alone is None:
                        alone = pairs
                        continue
                    if alone is not None:
                        fired.extend(alone)
                        alone = None
                    fired.extend(pairs)
                    continue
                if alone is not None:            # keep the order the groups fired in
                    fired.extend(alone)
                    alone = None
                for sub in compiled.members:
                    if sub.expires_at is not None:
                        now = now if now is not None else now_micros()
                        if sub.expires_at <= now:
                            continue
                    fired.append((sub.id, trigger))
        return alone if alone is not None else fired


async def compaction_term_map(sub: Subscription, resolver: ContextResolver) -> TermMap:
    """The term map notifications of ``sub`` are compacted with.

    When its ``@context`` cannot be resolved now (a remote server is down at start-up), the
    names the subscription itself used compact back to what its author wrote, which beats
    sending full IRIs.
    """
    try:
        return await resolver.term_map(sub.context)
    except Problem as exc:
        log.warning("@context of subscription %s unavailable (%s); compacting with its own terms",
                    sub.id, exc.detail)
        recorded: dict[str, str] = {}
        for terms in sub.terms.values():
            recorded.update(terms)
        return replay(recorded)

