"""NGSI v2 notifications (Orion's format) and a v2 subscription as GET shows it.

Body: ``{"subscriptionId": ..., "data": [entities]}`` with the entities rendered by the v2 face's
own :func:`render_entity` in the subscription's ``attrsFormat`` (``normalized``, ``keyValues``,
``values``), or Orion's NGSIv1-style ``legacy`` body (``contextResponses``).  Headers:
``Content-Type``, ``Fiware-Service`` (a non-default tenant), ``Fiware-ServicePath`` (the service
paths of the entities notified), ``Ngsiv2-AttrsFormat`` and ``httpCustom.headers``.

The renderer is registered with the NGSI-LD notification renderer for :data:`V2_FACE`
(``install_subscriptions``), so the one notifier delivers both faces' notifications.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from cityos.data.ngsild.subscriptions import Counters, NotifyItem, Subscription
from cityos.data.ngsild.subscriptions.model import ENTITY_CREATED, ENTITY_DELETED
from cityos.data.ngsild.terms import TermMap, core_only
from cityos.data.ngsiv2.mapping import paths_of
from cityos.data.ngsiv2.names import V2Names
from cityos.data.ngsiv2.render import KEY_VALUES, VALUES, render_entity
from cityos.data.ngsiv2.sub_parse import V2Spec

JSON = "application/json"
V2_KEY = "ngsi-v2"          # first member of a v2 rendering key in NotifyItem.rendered
ALTERATION_TYPE = "alterationType"
_ALTERATION_NAMES = {ENTITY_CREATED: "entityCreate", ENTITY_DELETED: "entityDelete"}
# registry status -> Orion's subscription status
_STATUS = {"paused": "inactive", "expired": "expired", "failed": "failed", "active": "active"}


def _spec(sub: Subscription) -> V2Spec:
    spec = sub.extension
    return spec if isinstance(spec, V2Spec) else V2Spec()


def _changed_names(item: NotifyItem, tm: TermMap) -> list[str] | None:
    """Attributes the change created or altered (``onlyChangedAttrs``); None: unknown."""
    if item.previous is None or item.trigger == ENTITY_DELETED:
        return None
    before = item.previous.get("attrs") or {}
    return [tm.compact(iri) for iri, instances in item.entity["attrs"].items()
            if before.get(iri) != instances]


def render_item(sub: Subscription, item: NotifyItem, tm: TermMap) -> Any:
    """One entity of ``data`` in the subscription's format (``legacy``: normalized here)."""
    spec = _spec(sub)
    attrs: list[str] | None = list(spec.attrs) if spec.attrs is not None else None
    if spec.only_changed:
        changed = _changed_names(item, tm)
        if changed is not None:
            attrs = changed if attrs is None or "*" in attrs else \
                [a for a in attrs if a in changed or a in ("dateCreated", "dateModified")]
    form = spec.attrs_format if spec.attrs_format in (KEY_VALUES, VALUES) else "normalized"
    out = render_entity(item.entity, tm, form, attrs, spec.metadata, spec.except_attrs)
    if spec.attrs is not None and ALTERATION_TYPE in spec.attrs:
        alteration = _ALTERATION_NAMES.get(item.trigger, "entityChange")
        if form == VALUES:
            out.append(alteration)
        elif form == KEY_VALUES:
            out[ALTERATION_TYPE] = alteration
        else:
            out[ALTERATION_TYPE] = {"type": "Text", "value": alteration, "metadata": {}}
    return out


def _legacy(entity: dict[str, Any]) -> dict[str, Any]:
    """A normalized v2 entity as an NGSIv1 contextResponse (Orion's ``legacy`` format)."""
    attributes = []
    for name, attr in entity.items():
        if name in ("id", "type"):
            continue
        rendered: dict[str, Any] = {"name": name, "type": attr["type"], "value": attr["value"]}
        if attr.get("metadata"):
            rendered["metadatas"] = [{"name": n, "type": m["type"], "value": m["value"]}
                                     for n, m in attr["metadata"].items()]
        attributes.append(rendered)
    return {"contextElement": {"attributes": attributes, "type": entity["type"],
                               "isPattern": "false", "id": entity["id"]},
            "statusCode": {"code": "200", "reasonPhrase": "OK"}}


def headers_of(sub: Subscription, items: list[NotifyItem]) -> dict[str, str]:
    """The headers of a notification carrying ``items``.

    One dict per subscription and service-path list, kept in ``sub.prepared`` (which the NGSI-LD
    renderer never touches for a v2 subscription): the HTTP sender reuses the request head it
    built for the same dict.  Shared: never mutate the result.
    """
    spec = _spec(sub)
    paths: list[str] = []
    for item in items:
        for path in paths_of(item.entity.get("scope")):
            if path not in paths:
                paths.append(path)
    joined = ", ".join(paths) or "/"
    cache = sub.prepared if isinstance(sub.prepared, dict) else {}
    headers: dict[str, str] | None = cache.get(joined)
    if headers is not None:
        return headers
    headers = {"Content-Type": JSON, "Ngsiv2-AttrsFormat": spec.attrs_format,
               "Fiware-ServicePath": joined}
    if sub.tenant:
        headers["Fiware-Service"] = sub.tenant
    for name, value in spec.headers:
        headers[name] = value
    if len(cache) < 64:                  # paths are few; this only bounds memory
        cache[joined] = headers
    sub.prepared = cache
    return headers


class V2NotificationRenderer:
    """Renders the notifications of v2 subscriptions (dict for tests, bytes for the notifier).

    Names are compacted through ``names.term_map``, the v2 face's term map resolved at start-up
    (read on every call, never resolved here: rendering is synchronous); none = the core context.
    """

    def __init__(self, names: V2Names | None = None) -> None:
        self.names = names

    @property
    def term_map(self) -> TermMap:
        """The v2 face's term map (the core context's when no :class:`V2Names` was given)."""
        return self.names.term_map if self.names is not None else core_only()

    def __call__(self, sub: Subscription,
                 items: list[NotifyItem]) -> tuple[dict[str, Any], dict[str, str]]:
        tm = self.term_map
        data = [render_item(sub, item, tm) for item in items]
        if _spec(sub).attrs_format == "legacy":
            body = {"subscriptionId": sub.id, "originator": "localhost",
                    "contextResponses": [_legacy(e) for e in data]}
        else:
            body = {"subscriptionId": sub.id, "data": data}
        return body, headers_of(sub, items)

    def encode(self, sub: Subscription, items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        """The body as JSON bytes; each entity is serialized once per rendering and kept on
        the item the notifier shares between subscriptions, as NGSI-LD's ``encode`` does."""
        spec = _spec(sub)
        if spec.attrs_format == "legacy":
            legacy, headers = self(sub, items)
            return orjson.dumps(legacy), headers
        key = (V2_KEY, spec.attrs_format, spec.attrs, spec.except_attrs, spec.metadata,
               spec.only_changed)
        tm = self.term_map
        parts = []
        for item in items:
            data = item.rendered.get(key)
            if data is None:
                data = item.rendered[key] = orjson.dumps(render_item(sub, item, tm))
            parts.append(data)
        encoded = b"".join((b'{"subscriptionId":', orjson.dumps(sub.id), b',"data":[',
                            b",".join(parts), b"]}"))
        return encoded, headers_of(sub, items)


def subscription_view(sub: Subscription, status: str, counters: Counters | None) -> dict[str, Any]:
    """The subscription as ``GET /v2/subscriptions`` shows it (Orion's members and defaults)."""
    spec = _spec(sub)
    doc = copy.deepcopy(sub.document)
    out: dict[str, Any] = {"id": sub.id}
    if "description" in doc:
        out["description"] = doc["description"]
    subject = doc.get("subject") or {}
    condition = subject.get("condition") or {}
    condition.setdefault("attrs", [])
    subject["condition"] = condition
    out["subject"] = subject
    notification = dict(doc.get("notification") or {})
    for kind in ("mqtt", "mqttCustom"):
        # Orion never returns the MQTT password; it stays stored for delivery only
        if isinstance(notification.get(kind), dict):
            notification[kind] = {k: v for k, v in notification[kind].items() if k != "passwd"}
    notification.setdefault("attrs", [])
    notification.setdefault("onlyChangedAttrs", False)
    notification.setdefault("attrsFormat", "normalized")
    notification.setdefault("covered", False)
    if counters is not None and (counters.times_sent or counters.times_failed):
        notification["timesSent"] = counters.times_sent + counters.times_failed
        for key, value in (("lastNotification", counters.last_notification),
                           ("lastSuccess", counters.last_success),
                           ("lastSuccessCode", counters.last_success_code),
                           ("lastFailure", counters.last_failure),
                           ("lastFailureReason", counters.last_failure_reason)):
            if value is not None:
                notification[key] = value
        if counters.consecutive_failures:
            notification["failsCounter"] = counters.consecutive_failures
    out["notification"] = notification
    if "expires" in doc:
        out["expires"] = doc["expires"]
    shown = _STATUS.get(status, status)
    out["status"] = "oneshot" if shown == "active" and spec.oneshot else shown
    if "throttling" in doc:
        out["throttling"] = doc["throttling"]
    return out
