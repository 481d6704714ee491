"""Every subscription of every tenant, in memory, and the hot path that matches writes to them.

:meth:`SubscriptionRegistry.match` runs inside the store's write transaction (on the SQLite writer
thread, or on the event loop for PostgreSQL) for every entity a write changes, so it does no I/O,
never awaits and takes no lock.  Writers (the API, a handful of times a day) never change a
structure a reader may be walking: they build new dictionaries and swap them in with one
attribute assignment, which is atomic in CPython, so a reader sees either the old or the new
state, never half of one (copy-on-write).

Per tenant the subscriptions that can fire are indexed by entity type IRI: one that selects
entities by type only needs to be looked at for entities of that type.  Those selecting by id or
idPattern alone, or by watchedAttributes alone, are kept in one short list looked at for every
entity of the tenant.  Paused and periodic subscriptions are not indexed at all.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cityos.core.problems import Problem
from cityos.data.ngsild.context import ContextResolver
from cityos.data.ngsild.history import CREATED, DELETED, UPDATED
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store.base import Change, EntityStore, QueryPlan, TypeExpr
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


@dataclass(frozen=True, slots=True)
class _CompiledSelector:
    ids: frozenset[str] | None
    pattern: re.Pattern[str] | None
    types: TypeExpr | None

    def selects(self, entity: Entity) -> bool:
        if self.ids is not None and entity["id"] not in self.ids:
            return False
        if self.types is not None and not self.types.matches(entity["type"]):
            return False
        return self.pattern is None or self.pattern.search(entity["id"]) is not None


@dataclass(frozen=True, slots=True)
class _Compiled:
    """Subscriptions prepared for matching: regexes compiled, q/geoQ/scopeQ as one predicate.

    Subscriptions that select the same changes (same entities, watched attributes, triggers, q,
    geoQ and scopeQ; typically many receivers of the same feed) share one ``_Compiled``, so a
    change is judged once for all of them; ``members`` are the subscriptions themselves.
    """

    sub: Subscription
    selectors: tuple[_CompiledSelector, ...] | None
    state_filter: Callable[[Entity], bool] | None
    members: tuple[Subscription, ...] = ()

    @classmethod
    def of(cls, sub: Subscription, members: tuple[Subscription, ...] = ()) -> _Compiled:
        selectors = None
        if sub.selectors is not None:
            selectors = tuple(
                _CompiledSelector(frozenset(s.ids) if s.ids is not None else None,
                                  re.compile(s.id_pattern) if s.id_pattern is not None else None,
                                  s.types)
                for s in sub.selectors)
        state_filter = None
        if sub.q is not None or sub.geo is not None or sub.scope_q is not None:
            # the one authoritative implementation of q, geo relations and scopes (ADR 0005)
            state_filter = QueryPlan(tenant=sub.tenant, q=sub.q, geo=sub.geo,
                                     scope=sub.scope_q).python_filter()
        if sub.predicate is not None:
            state_filter = _both(state_filter, sub.predicate)
        return cls(sub, selectors, state_filter, members or (sub,))

    def selects(self, entity: Entity) -> bool:
        return self.selectors is None or any(s.selects(entity) for s in self.selectors)


@dataclass(frozen=True)
class _TenantIndex:
    by_type: dict[str, tuple[_Compiled, ...]]
    untyped: tuple[_Compiled, ...]

    @classmethod
    def build(cls, subs: list[Subscription]) -> _TenantIndex:
        by_type: dict[str, list[_Compiled]] = {}
        untyped: list[_Compiled] = []
        now = now_micros()
        alike: dict[tuple[object, ...], list[Subscription]] = {}
        for sub in subs:
            if not sub.is_active or sub.time_interval is not None or \
                    (sub.expires_at is not None and sub.expires_at <= now):
                continue
            alike.setdefault(_criteria(sub), []).append(sub)
        for members in alike.values():
            sub = members[0]
            compiled = _Compiled.of(sub, tuple(members))
            keys = _type_keys(sub)
            if keys is None:
                untyped.append(compiled)
            for key in keys or ():
                by_type.setdefault(key, []).append(compiled)
        return cls({k: tuple(v) for k, v in by_type.items()}, tuple(untyped))


def _criteria(sub: Subscription) -> tuple[object, ...]:
    """What decides which changes fire ``sub`` (everything but where and how it notifies)."""
    return (sub.selectors, sub.watched, sub.triggers, repr(sub.q), repr(sub.geo), sub.scope_q,
            sub.predicate)


def _both(first: Callable[[Entity], bool] | None,
          second: Callable[[Entity], bool]) -> Callable[[Entity], bool]:
    """A filter passing what both pass (``first`` may be absent)."""
    if first is None:
        return second
    return lambda entity: first(entity) and second(entity)


def _type_keys(sub: Subscription) -> set[str] | None:
    """Types of which a selected entity has at least one; None when any entity may be selected."""
    if sub.selectors is None:
        return None
    keys: set[str] = set()
    for selector in sub.selectors:
        if selector.types is None:
            return None
        keys |= selector.types.candidate_types()
    return keys


_EMPTY = _TenantIndex({}, ())


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
        self._index: dict[str, _TenantIndex] = {}
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
        for sub_id in sub_ids:
            sub = self._subs.get((tenant, sub_id))
            if sub is not None and (sub.show_changes or ATTRIBUTE_DELETED in sub.triggers
                                    or ENTITY_UPDATED in sub.triggers or sub.keep_previous):
                return True
        return False

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
            built = _TenantIndex.build([s for (t, _), s in subs.items() if t == tenant])
            if built.by_type or built.untyped:
                index[tenant] = built
            else:
                index.pop(tenant, None)
        self._subs = subs
        self._index = index

    # -- the hot path -----------------------------------------------------------------------
    def match(self, tenant: str, change: Change, kinds: dict[str, str]) -> list[tuple[str, str]]:
        """(subscription id, trigger) of every subscription of ``tenant`` that ``change`` fires.

        Only active, unexpired, non-periodic subscriptions are considered.  Selectors, ``q``,
        ``geoQ`` and ``scopeQ`` are evaluated on the entity after the change (before it, for a
        deletion).  ``kinds``: attribute IRI -> created / updated / deleted.
        """
        index = self._index.get(tenant, _EMPTY)
        entity = change.after if change.after is not None else change.before
        if entity is None or (not index.untyped and not index.by_type):
            return []
        fired: list[tuple[str, str]] = []
        now: int | None = None
        candidates: list[tuple[_Compiled, ...]] = [index.by_type[t] for t in entity["type"]
                                                   if t in index.by_type]
        candidates.append(index.untyped)
        # a subscription indexed under two types the entity both has must fire once
        seen: set[int] | None = set() if len(candidates) > 2 else None
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
                for sub in compiled.members:
                    if sub.expires_at is not None:
                        now = now if now is not None else now_micros()
                        if sub.expires_at <= now:
                            continue
                    fired.append((sub.id, trigger))
        return fired


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

