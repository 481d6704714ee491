"""Notifications: the NGSI-LD ``Notification`` body (clause 5.3.1) and its HTTP headers.

Entities are rendered by the broker's own renderer (:mod:`cityos.data.ngsild.render`) in the
subscription's format, attributes and language, and compacted with the subscription's
``@context``; this module only adds what notifications have and responses do not:

* ``showChanges`` (clause 4.5.18 of v1.8): each changed attribute carries its value before the
  write as ``previousValue`` (``previousObject``, ``previousLanguageMap``, ``previousVocab``,
  ``previousValueList``, ``previousObjectList``, ``previousJson`` for the other attribute types);
* deletions: a deleted entity is sent as ``id``, ``type`` and ``deletedAt`` (with ``showChanges``,
  also every attribute as ``urn:ngsi-ld:null`` with its previous value); an attribute deleted by
  an update is sent with the value ``urn:ngsi-ld:null``.

Two entry points: ``render_notification(sub, items)`` builds the body as a dict (tests, tools);
``render_notification.encode(sub, items)`` builds the same body straight as JSON bytes, which is
what the notifier sends.  With 100 subscriptions matching every change, rendering each entity
once per subscription was most of the broker's CPU, so ``encode`` serializes an entity once per
*rendering* (the members that change an entity's JSON, :func:`render_key`) and keeps the bytes on
the :class:`NotifyItem`, which the notifier shares between every subscription a change fired:
subscriptions rendered alike (the usual case) reuse the bytes, and the body is a join of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from cityos.core.ids import unique_id
from cityos.data.ngsild.context import CORE_CONTEXT_URL, is_core_url, link_header
from cityos.data.ngsild.model import (
    LANGUAGEPROPERTY,
    LISTRELATIONSHIP,
    VALUE_KEY,
    VOCABPROPERTY,
    Entity,
    Instance,
)
from cityos.data.ngsild.notify.clock import utc_stamp
from cityos.data.ngsild.payload import NULL_URI
from cityos.data.ngsild.render import (
    CONCISE,
    NORMALIZED,
    SIMPLIFIED,
    Decorate,
    RenderOptions,
    pick_language,
    render_entity,
    render_instance,
    visible_attributes,
)
from cityos.data.ngsild.subscriptions.model import (
    ATTRIBUTE_DELETED,
    ENTITY_DELETED,
    ENTITY_UPDATED,
    LD_FACE,
    NotifyItem,
    Subscription,
)
from cityos.data.ngsild.terms import TermMap, core_only

JSON, JSON_LD = "application/json", "application/ld+json"
NOTIFICATION_PREFIX = "urn:ngsi-ld:Notification:"
FORMS = {"normalized": NORMALIZED, "concise": CONCISE, "keyValues": SIMPLIFIED}
PREVIOUS = {"value": "previousValue", "object": "previousObject",
            "languageMap": "previousLanguageMap", "vocab": "previousVocab",
            "valueList": "previousValueList", "objectList": "previousObjectList",
            "json": "previousJson"}


def render_dict(sub: Subscription, items: list[NotifyItem], tm: TermMap | None = None,
                *, notified_at: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(the Notification body, the headers to send with it).

    ``tm`` compacts names; by default the subscription's own (``sub.term_map``, set when it was
    created or loaded), else the core context's.

    Headers: ``Content-Type`` (the endpoint's ``accept``), ``Link`` to the ``@context`` for
    ``application/json`` (``application/ld+json`` carries ``@context`` in the body instead),
    ``NGSILD-Tenant`` for a non-default tenant, and every ``receiverInfo`` pair.
    """
    if tm is None:
        tm = sub.term_map if isinstance(sub.term_map, TermMap) else core_only()
    opts = render_options(sub)
    return envelope(sub, items, [render_item(sub, item, tm, opts) for item in items],
                    notified_at=notified_at)


def render_options(sub: Subscription) -> RenderOptions:
    """How the entities of ``sub``'s notifications are shown."""
    return RenderOptions(form=FORMS.get(sub.format, NORMALIZED), sys_attrs=sub.sys_attrs,
                         attrs=sub.attributes, omit=sub.omit, pick_id=sub.show_id,
                         pick_type=sub.show_type, lang=sub.lang)


def envelope(sub: Subscription, items: list[NotifyItem], data: list[dict[str, Any]], *,
             notified_at: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The Notification around ``data`` (rendered from ``items``), and its headers."""
    body: dict[str, Any] = {
        "id": _notification_id(),
        "type": "Notification",
        "subscriptionId": sub.id,
        "notifiedAt": notified_at or _now(),
        "data": data,
    }
    reason = _trigger_reason(items)
    if reason is not None:
        body["triggerReason"] = reason
    context = sub.context if sub.context is not None else CORE_CONTEXT_URL
    if sub.endpoint.accept == JSON_LD:
        body["@context"] = context
    return body, _headers(sub)


def _headers(sub: Subscription) -> dict[str, str]:
    headers = {"Content-Type": sub.endpoint.accept}
    if sub.endpoint.accept != JSON_LD:
        context = sub.context if sub.context is not None else CORE_CONTEXT_URL
        headers["Link"] = link_header(_context_url(context))
    if sub.tenant:
        headers["NGSILD-Tenant"] = sub.tenant
    for key, value in sub.endpoint.receiver_info:
        headers[key] = value
    return headers


def _trigger_reason(items: list[NotifyItem]) -> str | None:
    """The batch's one trigger, or None when its items were fired by different ones."""
    if not items:
        return None
    reasons = {item.trigger for item in items}
    return reasons.pop() if len(reasons) == 1 else None


def _now() -> str:
    return utc_stamp(3)


def _notification_id() -> str:
    return NOTIFICATION_PREFIX + unique_id()


def render_key(sub: Subscription, tm: TermMap) -> tuple[Any, ...]:
    """What decides an entity's JSON in ``data``: equal keys render an item identically.

    The term map is compared by identity (the context resolver hands out one per @context), and
    holding it in the key keeps it alive, so a key can never be confused with a later map's.
    """
    return (sub.format, sub.attributes, sub.omit, sub.show_id, sub.show_type, sub.sys_attrs,
            sub.lang, sub.show_changes, sub.dataset_ids, tm)


_KEY_IDS: dict[tuple[Any, ...], int] = {}
_NEXT_KEY_ID = itertools.count()


def _key_id(key: tuple[Any, ...]) -> int:
    """A small number standing for a render key in ``NotifyItem.rendered``.

    Looking an item's bytes up by the key itself hashed its ten members once per item and
    subscription (a tuple does not keep its hash).  Numbers are never reused: when the table is
    cleared (it only bounds memory), an equal key gets a new number and an item alive across
    the clearing is at worst serialized twice, never confused with another rendering.
    """
    number = _KEY_IDS.get(key)
    if number is None:
        if len(_KEY_IDS) > 10_000:
            _KEY_IDS.clear()
        number = _KEY_IDS[key] = next(_NEXT_KEY_ID)
    return number


# Recent batches, (render key, id of the first item) -> (items, '...]' and triggerReason as
# bytes).  Subscriptions fed the same changes send together (the notifier's lanes share one
# clock) with the same items, so the second to the hundredth of them find their batch here and
# join nothing per item.  The entry holds its items, so the first item's id cannot be reused
# while the entry lives; a hit is checked by comparing the lists (identity first, in C).
BATCH_CACHE_SIZE = 512
_BATCHES: dict[tuple[int, int], tuple[list[NotifyItem], bytes]] = {}


@dataclass(slots=True)
class Prepared:
    """What ``encode`` needs of a subscription, worked out once (kept on the subscription)."""

    term_map: Any                 # the sub.term_map this was prepared for
    tm: TermMap
    opts: RenderOptions
    key: int                      # _key_id(render_key(...))
    head: bytes                   # '","type":"Notification","subscriptionId":...,"notifiedAt":"'
    tail: bytes                   # ',"@context":...}' or '}'
    headers: dict[str, str]       # shared by every send: never mutate


def _prepare(sub: Subscription) -> Prepared:
    prepared = sub.prepared
    if isinstance(prepared, Prepared) and prepared.term_map is sub.term_map:
        return prepared
    tm = sub.term_map if isinstance(sub.term_map, TermMap) else core_only()
    opts = render_options(sub)
    tail = b"}"
    if sub.endpoint.accept == JSON_LD:
        context = sub.context if sub.context is not None else CORE_CONTEXT_URL
        tail = b',"@context":' + orjson.dumps(context) + b"}"
    head = (b'","type":"Notification","subscriptionId":' + orjson.dumps(sub.id)
            + b',"notifiedAt":"')
    prepared = Prepared(sub.term_map, tm, opts, _key_id(render_key(sub, tm)), head, tail,
                        _headers(sub))
    sub.prepared = prepared
    return prepared


def encode_notification(sub: Subscription, items: list[NotifyItem], *,
                        notified_at: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body of :func:`render_dict` as JSON bytes, reusing entities already serialized.

    The headers dict is shared by every notification of the subscription: do not change it.
    """
    prepared = _prepare(sub)
    key = prepared.key
    batch_key = (key, id(items[0]) if items else 0)    # no object has id 0
    cached = _BATCHES.get(batch_key)
    if cached is not None and cached[0] == items:
        data = cached[1]
    else:
        parts = []
        for item in items:
            part = item.rendered.get(key)
            if part is None:
                part = orjson.dumps(render_item(sub, item, prepared.tm, prepared.opts))
                item.rendered[key] = part
            parts.append(part)
        reason = _trigger_reason(items)
        data = b"".join((b",".join(parts), b"]", b"" if reason is None
                         else b',"triggerReason":' + orjson.dumps(reason)))
        if len(_BATCHES) > BATCH_CACHE_SIZE:
            _BATCHES.clear()
        _BATCHES[batch_key] = (items, data)
    body = b"".join((b'{"id":"', _notification_id().encode(), prepared.head,
                     (notified_at or _now()).encode(), b'","data":[', data, prepared.tail))
    return body, prepared.headers


class FaceRenderer(Protocol):
    """How another face (NGSI v2) renders the notifications of its subscriptions."""

    def __call__(self, sub: Subscription,
                 items: list[NotifyItem]) -> tuple[dict[str, Any], dict[str, str]]: ...

    def encode(self, sub: Subscription, items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        ...


class NotificationRenderer:
    """``render_notification``: call it for a dict body, or ``.encode`` it for JSON bytes.

    Subscriptions of another face (``Subscription.face`` other than ``ngsi-ld``) are rendered by
    the renderer that face registered (:meth:`register`); the NGSI-LD path pays one comparison.
    """

    def __init__(self) -> None:
        self.faces: dict[str, FaceRenderer] = {}

    def register(self, face: str, renderer: FaceRenderer) -> None:
        """Render the subscriptions whose ``face`` is ``face`` with ``renderer``."""
        self.faces[face] = renderer

    def __call__(self, sub: Subscription, items: list[NotifyItem], tm: TermMap | None = None,
                 *, notified_at: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        if sub.face != LD_FACE:
            return self.faces[sub.face](sub, items)
        return render_dict(sub, items, tm, notified_at=notified_at)

    def encode(self, sub: Subscription, items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        if sub.face != LD_FACE:
            return self.faces[sub.face].encode(sub, items)
        return encode_notification(sub, items)

    async def encode_linked(self, query: Any, max_page: int, sub: Subscription,
                            items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        """For a subscription with ``join``: linked entities are looked up with ``query``."""
        # imported here: render_join builds on this module
        from cityos.data.ngsild.subscriptions.render_join import encode_linked

        return await encode_linked(query, max_page, sub, items)


render_notification = NotificationRenderer()


def _context_url(context: Any) -> str:
    """The one URL a ``Link`` header can name for ``context``.

    An inline context object has no URL: the receiver then gets the core context's, and the
    subscription should use ``application/ld+json`` or ``jsonldContext`` (docs/subscriptions.md).
    """
    if isinstance(context, str):
        return context
    if isinstance(context, list):
        urls = [c for c in context if isinstance(c, str) and not is_core_url(c)]
        if len(urls) == 1 and all(isinstance(c, str) for c in context):
            return urls[0]
    return CORE_CONTEXT_URL


def only_datasets(entity: Entity, dataset_ids: frozenset[str] | None) -> Entity:
    """``entity`` with only the attribute instances a subscription's ``datasetId`` selects.

    ``@none`` selects the default instance (the one without a ``datasetId``); an attribute left
    without instances is left out.  ``None`` (no ``datasetId`` member) keeps everything.
    """
    if dataset_ids is None:
        return entity
    attrs = {}
    for iri, instances in entity["attrs"].items():
        kept = [i for i in instances if i.get("datasetId", "@none") in dataset_ids]
        if kept:
            attrs[iri] = kept
    return {**entity, "attrs": attrs}


def render_item(sub: Subscription, item: NotifyItem, tm: TermMap, opts: RenderOptions,
                decorate: Decorate | None = None) -> dict[str, Any]:
    """One entity of ``data``; ``decorate`` embeds linked entities (``join=inline``)."""
    entity = only_datasets(item.entity, sub.dataset_ids)
    if item.trigger == ENTITY_DELETED:
        return _deleted_entity(sub, entity, tm, opts)
    out = render_entity(entity, tm, opts, decorate)
    previous = item.previous
    if previous is not None:
        previous = only_datasets(previous, sub.dataset_ids)
    if previous is None:
        return out
    if item.trigger in (ATTRIBUTE_DELETED, ENTITY_UPDATED):
        for iri, instances in previous["attrs"].items():
            if iri in entity["attrs"] or iri in opts.omit or \
                    (opts.attrs is not None and iri not in opts.attrs):
                continue
            markers = [_deleted_attribute(i, tm, opts, sub.show_changes) for i in instances]
            out[tm.compact(iri)] = markers[0] if len(markers) == 1 else markers
    if sub.show_changes and opts.form != SIMPLIFIED:
        for iri, instances in visible_attributes(entity, opts):
            before = previous["attrs"].get(iri)
            if before is None or before == instances:
                continue
            by_dataset = {i.get("datasetId"): i for i in before}
            rendered = [_with_previous(i, by_dataset.get(i.get("datasetId")), tm, opts)
                        for i in instances]
            out[tm.compact(iri)] = rendered[0] if len(rendered) == 1 else rendered
    return out


def _deleted_entity(sub: Subscription, entity: Entity, tm: TermMap,
                    opts: RenderOptions) -> dict[str, Any]:
    types = [tm.compact(t) for t in entity["type"]]
    out: dict[str, Any] = {"id": entity["id"], "type": types[0] if len(types) == 1 else types}
    if "deletedAt" in entity:
        out["deletedAt"] = entity["deletedAt"]
    if sub.show_changes and opts.form != SIMPLIFIED:
        for iri, instances in visible_attributes(entity, opts):
            markers = [_deleted_attribute(i, tm, opts, True) for i in instances]
            out[tm.compact(iri)] = markers[0] if len(markers) == 1 else markers
    return out


def _deleted_attribute(instance: Instance, tm: TermMap, opts: RenderOptions,
                       show_previous: bool) -> Any:
    """An attribute that no longer exists: its value is ``urn:ngsi-ld:null``."""
    kind = instance["type"]
    key = VALUE_KEY[kind]
    if opts.form == SIMPLIFIED:
        return NULL_URI
    out: dict[str, Any] = {} if opts.form == CONCISE else {"type": kind}
    out[key] = {"@none": NULL_URI} if kind == LANGUAGEPROPERTY else NULL_URI
    if "datasetId" in instance:
        out["datasetId"] = instance["datasetId"]
    if show_previous:
        out[PREVIOUS[key]] = _previous_value(instance, tm, None)
    return out


def _with_previous(instance: Instance, before: Instance | None, tm: TermMap,
                   opts: RenderOptions) -> Any:
    """A changed instance, rendered, with the value it had before (none if it is new)."""
    rendered = render_instance(instance, tm, opts)
    if not isinstance(rendered, dict) or rendered is instance.get("value"):
        rendered = {"value": rendered}  # a concise bare value cannot carry previousValue
    if before is None or before == instance:
        return rendered
    if instance["type"] == LANGUAGEPROPERTY == before["type"] and "lang" in rendered:
        rendered["previousValue"] = _previous_value(before, tm, opts.lang)
    else:
        rendered[PREVIOUS[VALUE_KEY[before["type"]]]] = _previous_value(before, tm, None)
    return rendered


def _previous_value(instance: Instance, tm: TermMap, lang: str | None) -> Any:
    kind = instance["type"]
    value = instance[VALUE_KEY[kind]]
    if kind == VOCABPROPERTY:
        return [tm.compact(v) for v in value] if isinstance(value, list) else tm.compact(value)
    if kind == LISTRELATIONSHIP:
        return [{"object": v} for v in value]
    if kind == LANGUAGEPROPERTY and lang is not None:
        return pick_language(value, lang)[1]
    return value
