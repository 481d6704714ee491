"""Notifications with linked entities: ``notification.join`` and ``joinLevel`` (clause 4.5.23).

The entity query API's linked entity retrieval (:mod:`cityos.data.ngsild.join`) does the work;
this module only puts its result into a notification:

* ``flat``: ``data`` holds the notified entities, then every entity their relationships reach
  within ``joinLevel`` hops, each once;
* ``inline``: each relationship of a notified entity carries the entity it points to in
  ``entity`` (``entityList`` for a ListRelationship); in keyValues the linked entity replaces the
  relationship's value.

``notification.attributes`` and the subscription's ``datasetId`` apply to the notified entities;
linked entities are shown whole, in the same format, ``sysAttrs`` and ``lang``.  A deleted entity
has no links to follow.  The linked entities are looked up when the notification is sent (one
bounded id query per level, in the subscription's tenant), so they show their state at that time;
the bytes are not shared with other subscriptions (render-once applies to join-less ones).
"""

from __future__ import annotations

from typing import Any

import orjson

from cityos.data.ngsild.join import (
    FLAT,
    INLINE,
    INLINE_COPIES,
    JoinSpec,
    Query,
    collect_linked,
    inline_decorator,
)
from cityos.data.ngsild.render import render_entity
from cityos.data.ngsild.subscriptions.model import ENTITY_DELETED, NotifyItem, Subscription
from cityos.data.ngsild.subscriptions.render import (
    envelope,
    only_datasets,
    render_item,
    render_options,
)
from cityos.data.ngsild.terms import TermMap, core_only


async def render_linked(query: Query, max_page: int, sub: Subscription, items: list[NotifyItem],
                        *, notified_at: str | None = None
                        ) -> tuple[dict[str, Any], dict[str, str]]:
    """(the Notification body, its headers) for a subscription with ``join``.

    ``query`` fetches entities by id (the store's query); ``max_page`` bounds each level.
    """
    tm = sub.term_map if isinstance(sub.term_map, TermMap) else core_only()
    opts = render_options(sub)
    if sub.join not in (FLAT, INLINE):
        data = [render_item(sub, item, tm, opts) for item in items]
        return envelope(sub, items, data, notified_at=notified_at)
    roots = [only_datasets(item.entity, sub.dataset_ids) for item in items
             if item.trigger != ENTITY_DELETED]
    spec = JoinSpec(sub.join, sub.join_level)
    graph = await collect_linked(query, max_page, sub.tenant, roots, spec, opts, tm)
    hook = inline_decorator(graph, INLINE_COPIES * max_page, opts.form) \
        if sub.join == INLINE else None
    data = [render_item(sub, item, tm, opts, hook) for item in items]
    if sub.join == FLAT:
        data.extend(render_entity(entity, tm, shown) for entity, shown in graph.flat)
    return envelope(sub, items, data, notified_at=notified_at)


async def encode_linked(query: Query, max_page: int, sub: Subscription,
                        items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
    """:func:`render_linked` as JSON bytes."""
    body, headers = await render_linked(query, max_page, sub, items)
    return orjson.dumps(body), headers
