"""The per-tenant index the subscription registry matches changes with (see registry.py).

Built once per subscription write, read by every write: subscriptions that select the same
changes are compiled once (:class:`Compiled`) and indexed by exact entity id, by type IRI, or
kept in a short list looked at for every entity (``untyped``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cityos.core.patterns import UserPattern, stored_user_pattern
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr
from cityos.data.ngsild.subscriptions.model import (
    ATTRIBUTE_DELETED,
    ENTITY_UPDATED,
    Subscription,
)
from cityos.data.ngsild.times import now_micros


@dataclass(frozen=True, slots=True)
class CompiledSelector:
    """One entity selector ready to test: ids as a set, idPattern compiled."""

    ids: frozenset[str] | None
    pattern: UserPattern | None                # RE2: linear time on any client's pattern
    types: TypeExpr | None

    def selects(self, entity: Entity) -> bool:
        """Whether the selector selects ``entity``."""
        if self.ids is not None and entity["id"] not in self.ids:
            return False
        if self.types is not None and not self.types.matches(entity["type"]):
            return False
        return self.pattern is None or self.pattern.search(entity["id"]) is not None


@dataclass(frozen=True, slots=True)
class Compiled:
    """Subscriptions prepared for matching: regexes compiled, q/geoQ/scopeQ as one predicate.

    Subscriptions that select the same changes (same entities, watched attributes, triggers, q,
    geoQ and scopeQ; typically many receivers of the same feed) share one ``Compiled``, so a
    change is judged once for all of them; ``members`` are the subscriptions themselves.
    """

    sub: Subscription
    selectors: tuple[CompiledSelector, ...] | None
    state_filter: Callable[[Entity], bool] | None
    members: tuple[Subscription, ...] = ()
    # trigger -> ((subscription id, trigger), ...) of every member, built on first use: with 100
    # subscriptions on one feed, building those pairs per change was most of what matching cost.
    # Unused when a member can expire (each change then checks expiry member by member).
    fired: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    expiring: bool = False

    @classmethod
    def of(cls, sub: Subscription, members: tuple[Subscription, ...] = ()) -> Compiled:
        selectors = None
        if sub.selectors is not None:
            selectors = tuple(
                CompiledSelector(frozenset(s.ids) if s.ids is not None else None,
                                  stored_user_pattern(s.id_pattern) if s.id_pattern is not None
                                  else None,
                                  s.types)
                for s in sub.selectors)
        state_filter = None
        if sub.q is not None or sub.geo is not None or sub.scope_q is not None:
            # the one authoritative implementation of q, geo relations and scopes (ADR 0005)
            state_filter = QueryPlan(tenant=sub.tenant, q=sub.q, geo=sub.geo,
                                     scope=sub.scope_q).python_filter()
        if sub.predicate is not None:
            state_filter = _both(state_filter, sub.predicate)
        members = members or (sub,)
        return cls(sub, selectors, state_filter, members,
                   expiring=any(m.expires_at is not None for m in members))

    def selects(self, entity: Entity) -> bool:
        """Whether any selector selects ``entity`` (no selectors: every entity)."""
        return self.selectors is None or any(s.selects(entity) for s in self.selectors)


@dataclass(frozen=True)
class TenantIndex:
    """One tenant's matchable subscriptions, indexed (immutable: replaced, never changed)."""

    by_id: dict[str, tuple[Compiled, ...]]
    by_type: dict[str, tuple[Compiled, ...]]
    untyped: tuple[Compiled, ...]
    # ids of the tenant's subscriptions whose notifications need the state before a change
    needs_previous: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        """No subscription can fire (nothing to match, nothing needs the state before)."""
        return not (self.by_id or self.by_type or self.untyped)

    @classmethod
    def build(cls, subs: list[Subscription]) -> TenantIndex:
        """The index of ``subs``: active, unexpired, non-periodic ones only."""
        by_id: dict[str, list[Compiled]] = {}
        by_type: dict[str, list[Compiled]] = {}
        untyped: list[Compiled] = []
        now = now_micros()
        alike: dict[tuple[object, ...], list[Subscription]] = {}
        for sub in subs:
            if not sub.is_active or sub.time_interval is not None or \
                    (sub.expires_at is not None and sub.expires_at <= now):
                continue
            alike.setdefault(_criteria(sub), []).append(sub)
        for members in alike.values():
            sub = members[0]
            compiled = Compiled.of(sub, tuple(members))
            keys = _index_keys(sub)
            if keys is None:
                untyped.append(compiled)
                continue
            ids, types = keys
            for entity_id in ids:
                by_id.setdefault(entity_id, []).append(compiled)
            for key in types:
                by_type.setdefault(key, []).append(compiled)
        previous = frozenset(sub.id for sub in subs if _needs_previous(sub))
        return cls({k: tuple(v) for k, v in by_id.items()},
                   {k: tuple(v) for k, v in by_type.items()}, tuple(untyped), previous)


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


def _index_keys(sub: Subscription) -> tuple[set[str], set[str]] | None:
    """(entity ids, types) under which ``sub`` is indexed; None when any entity may be selected.

    Each selector contributes its ids when it names some (an entity it selects has one of
    them, whatever its type or idPattern also demand), else its candidate types.  A selector
    naming neither (idPattern alone) may select any entity.
    """
    if sub.selectors is None:
        return None
    ids: set[str] = set()
    types: set[str] = set()
    for selector in sub.selectors:
        if selector.ids is not None:
            ids.update(selector.ids)
        elif selector.types is not None:
            types |= selector.types.candidate_types()
        else:
            return None
    return ids, types


def _needs_previous(sub: Subscription) -> bool:
    """Whether notifications of ``sub`` show anything of the state before the change."""
    return bool(sub.show_changes or ATTRIBUTE_DELETED in sub.triggers
                or ENTITY_UPDATED in sub.triggers or sub.keep_previous)


EMPTY = TenantIndex({}, {}, ())
