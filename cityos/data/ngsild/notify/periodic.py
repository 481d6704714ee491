"""Periodic subscriptions (``timeInterval``): the current state of matching entities, every interval.

A periodic subscription is not driven by changes: one task per subscription wakes every
``timeInterval`` seconds, queries the store for the entities the subscription selects (entity
selectors, ``q``, geo-query, scope) and sends them.  The first notification goes out at once
unless the counters loaded at start-up show one less than an interval ago, so a restart does not
double the rate.  Nothing is sent when nothing matches (an empty ``data`` array tells the
receiver nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cityos.data.ngsild.store.base import QueryPlan, Selector, TypeExpr
from cityos.data.ngsild.subscriptions.model import Subscription
from cityos.data.ngsild.times import now_micros, to_micros


def plan_for(sub: Subscription, *, limit: int, offset: int = 0) -> QueryPlan:
    """The store query selecting ``sub``'s entities.

    With several selectors, ``types`` and ``ids`` are only a prefilter covering all of them (the
    engines apply ``selectors`` exactly afterwards, see :class:`QueryPlan`).
    """
    selectors = sub.selectors
    return QueryPlan(tenant=sub.tenant, selectors=selectors, types=_type_prefilter(selectors),
                     ids=_id_prefilter(selectors), q=sub.q, geo=sub.geo, scope=sub.scope_q,
                     limit=limit, offset=offset)


def _type_prefilter(selectors: tuple[Selector, ...] | None) -> TypeExpr | None:
    if not selectors or any(s.types is None for s in selectors):
        return None
    alternatives: list[frozenset[str]] = []
    for selector in selectors:
        assert selector.types is not None
        alternatives.extend(g for g in selector.types.alternatives if g not in alternatives)
    return TypeExpr(tuple(alternatives))


def _id_prefilter(selectors: tuple[Selector, ...] | None) -> tuple[str, ...] | None:
    if not selectors or any(s.ids is None for s in selectors):
        return None
    return tuple(dict.fromkeys(i for s in selectors for i in s.ids or ()))


async def matching_pages(store: Any, sub: Subscription, page_size: int,
                         max_entities: int) -> AsyncIterator[list[dict[str, Any]]]:
    """The entities ``sub`` selects, page by page, at most ``max_entities`` in all."""
    offset = 0
    while offset < max_entities:
        limit = min(page_size, max_entities - offset)
        entities, _ = await store.query(plan_for(sub, limit=limit, offset=offset))
        if entities:
            yield entities
        if len(entities) < limit:
            return
        offset += len(entities)


def first_delay(interval: float, last_notification: str | None) -> float:
    """Seconds until the first notification: none, or what is left of the current interval."""
    if not last_notification:
        return 0.0
    try:
        elapsed = (now_micros() - to_micros(last_notification)) / 1e6
    except Exception:
        return 0.0
    return max(0.0, min(interval, interval - elapsed))
