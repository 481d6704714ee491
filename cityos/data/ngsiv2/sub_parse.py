"""An NGSI v2 subscription body (Orion's) -> the broker's one internal :class:`Subscription`.

v2 subscriptions live in the NGSI-LD subscription registry and are delivered by the same notifier
(ADR 0008); what only v2 has — the notification format, the service path the subscription was
created under, ``onlyChangedAttrs``, custom headers — rides along as a :class:`V2Spec` in
``Subscription.extension``, and ``Subscription.face`` is :data:`V2_FACE`, which picks the v2
notification renderer (``sub_render.py``).

Matching reuses the v2 face's own query code (``query.build_query``): ``q``, ``mq`` and
geo-queries become the same query tree and ``GeoQuery`` a ``GET /v2/entities`` would use, the
service path its ``scopeQ``; what NGSI-LD cannot express (``typePattern``, the root-only path
``/``, ``q`` on ``dateCreated``) becomes the subscription's ``predicate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cityos.core.patterns import UserPattern, user_pattern_search
from cityos.core.problems import BadRequestData
from cityos.data.ngsild import TermMap
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import parse_datetime
from cityos.data.ngsild.store.base import Selector, TypeExpr
from cityos.data.ngsild.subscriptions.model import (
    ENTITY_CREATED,
    ENTITY_DELETED,
    ENTITY_UPDATED,
    Endpoint,
    Subscription,
)
from cityos.data.ngsild.times import to_micros
from cityos.data.ngsiv2.errors import bad_request
from cityos.data.ngsiv2.mapping import V2_PREFIX, check_identifier, entity_id
from cityos.data.ngsiv2.query import build_query, stored_pattern, type_regex

V2_FACE = "ngsi-v2"
FORMATS = ("normalized", "keyValues", "values", "legacy")
STATUSES = ("active", "inactive", "oneshot")
# v2 alterationTypes -> the registry's triggers (entityChange and entityUpdate are one: the
# broker records an update even when values stay the same, its modification time changes)
ALTERATIONS = {"entityCreate": ENTITY_CREATED, "entityChange": ENTITY_UPDATED,
               "entityUpdate": ENTITY_UPDATED, "entityDelete": ENTITY_DELETED}
DEFAULT_ALTERATIONS = ("entityCreate", "entityChange")
METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
_TOP = {"id", "description", "subject", "notification", "expires", "status", "throttling"}
_READ_ONLY = {"timesSent", "lastNotification", "lastSuccess", "lastSuccessCode", "lastFailure",
              "lastFailureReason", "failsCounter"}
_SUBJECT = {"entities", "condition"}
_CONDITION = {"attrs", "expression", "alterationTypes", "notifyOnMetadataChange"}
# what GET adds (timesSent ...) is accepted back, so a subscription read can be written again
_NOTIFICATION = {"http", "httpCustom", "mqtt", "mqttCustom", "attrs", "exceptAttrs",
                 "attrsFormat", "metadata", "onlyChangedAttrs", "covered", *_READ_ONLY}
_HTTP = {"url", "timeout"}
_HTTP_CUSTOM = {"url", "timeout", "headers", "qs", "method"}
_MQTT = {"url", "topic", "qos", "user", "passwd"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")


@dataclass(frozen=True)
class V2Spec:
    """What a v2 subscription needs beyond the internal model (``Subscription.extension``)."""

    attrs_format: str = "normalized"
    attrs: tuple[str, ...] | None = None           # None: every attribute
    except_attrs: tuple[str, ...] = ()
    metadata: tuple[str, ...] | None = None
    only_changed: bool = False
    service_path: str = "/#"
    headers: tuple[tuple[str, str], ...] = ()      # httpCustom.headers
    oneshot: bool = False


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return value


def _names(value: Any, what: str, tm: TermMap) -> list[str]:
    if not isinstance(value, list):
        raise bad_request(f"{what} must be a JSON array")
    return [check_identifier(v, f"{what} element", tm) for v in value]


def _known(value: dict[str, Any], allowed: set[str], what: str) -> None:
    """400 for a member Orion does not know here (or CityOS does not support)."""
    unknown = set(value) - allowed
    if unknown:
        raise bad_request(f"unknown or unsupported field in {what}: {sorted(unknown)[0][:40]}")


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what} must be a non-empty string")
    return value


def _selectors(entities: Any, tm: TermMap) -> tuple[tuple[Selector, ...] | None,
                                                      Callable[[Entity], bool] | None]:
    """Native selectors, or (with any ``typePattern``) one Python test of all of them."""
    if not isinstance(entities, list) or not entities:
        raise bad_request("subject.entities must be a non-empty JSON array")
    native: list[Selector] = []
    patterns: list[UserPattern | None] = []
    for raw in entities:
        item = _object(raw, "an element of subject.entities")
        if "id" in item and "idPattern" in item:
            raise bad_request("id and idPattern cannot be used at the same time")
        if "type" in item and "typePattern" in item:
            raise bad_request("type and typePattern cannot be used at the same time")
        if "id" not in item and "idPattern" not in item:
            raise bad_request("subject.entities elements need id or idPattern")
        unknown = set(item) - {"id", "idPattern", "type", "typePattern"}
        if unknown:
            raise bad_request(f"unknown field in subject.entities: {sorted(unknown)[0][:40]}")
        ids = (entity_id(item["id"]),) if "id" in item else None
        pattern = None
        if "idPattern" in item:
            pattern = stored_pattern(_string(item["idPattern"], "idPattern"), "idPattern",
                                     V2_PREFIX)
        types = TypeExpr((frozenset({tm.expand(check_identifier(item["type"], "entity type", tm))}),)) \
            if "type" in item else None
        native.append(Selector(ids=ids, id_pattern=pattern, types=types))
        patterns.append(type_regex(_string(item["typePattern"], "typePattern"))
                        if "typePattern" in item else None)
    if not any(patterns):
        return tuple(native), None
    compiled = list(zip(native, patterns, strict=True))

    def selected(entity: Entity) -> bool:
        for selector, type_pattern in compiled:
            if selector.ids is not None and entity["id"] not in selector.ids:
                continue
            if selector.id_pattern is not None and \
                    not user_pattern_search(selector.id_pattern, entity["id"]):
                continue
            if selector.types is not None and not selector.types.matches(entity["type"]):
                continue
            if type_pattern is not None and \
                    not any(type_pattern.search(tm.compact(t)) for t in entity["type"]):
                continue
            return True
        return False
    return None, selected


def _endpoint(notification: dict[str, Any]) -> tuple[Endpoint, tuple[tuple[str, str], ...]]:
    """Where notifications go (``http``, ``httpCustom``, ``mqtt`` or ``mqttCustom``)."""
    kinds = [k for k in ("http", "httpCustom", "mqtt", "mqttCustom") if k in notification]
    if len(kinds) != 1:
        raise bad_request("notification needs exactly one of http, httpCustom, mqtt, mqttCustom")
    kind = kinds[0]
    spec = _object(notification[kind], f"notification.{kind}")
    _known(spec, {"http": _HTTP, "httpCustom": _HTTP_CUSTOM}.get(kind, _MQTT) | {
        "payload", "json", "ngsi"}, f"notification.{kind}")
    for unsupported in ("payload", "json", "ngsi"):
        if unsupported in spec:
            raise bad_request(f"notification.{kind}.{unsupported} (payload templates) is not "
                              "supported")
    url = _string(spec.get("url"), f"notification.{kind}.url")
    parts = urlsplit(url)
    if kind.startswith("http"):
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise bad_request(f"Invalid URL: {url[:100]}")
        info: list[tuple[str, str]] = []
        headers: list[tuple[str, str]] = []
        if kind == "httpCustom":
            method = spec.get("method", "POST")
            if method not in METHODS:
                raise bad_request(f"Invalid HTTP method: {str(method)[:20]}")
            if method != "POST":
                info.append(("HTTP-Method", method))
            for name, value in _object(spec.get("headers", {}), "httpCustom.headers").items():
                if not _HEADER_NAME.match(name) or not isinstance(value, str) or \
                        any(c in value for c in "\r\n\0"):
                    raise bad_request(f"Invalid header in httpCustom.headers: {name[:40]}")
                headers.append((name, value))
            qs = _object(spec.get("qs", {}), "httpCustom.qs")
            if any(not isinstance(v, str) for v in qs.values()):
                raise bad_request("httpCustom.qs values must be strings")
            if qs:
                url += ("&" if parts.query else "?") + urlencode(qs)
        return Endpoint(uri=url, notifier_info=info), tuple(headers)
    if parts.scheme.lower() not in ("mqtt", "mqtts") or not parts.hostname or \
            parts.path not in ("", "/"):
        raise bad_request(f"Invalid URL: {url[:100]} (mqtt://host:port, the topic apart)")
    topic = _string(spec.get("topic"), f"notification.{kind}.topic")
    if "+" in topic or "#" in topic:
        raise bad_request("an MQTT topic to publish to may not contain + or #")
    qos = spec.get("qos", 0)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise bad_request("MQTT qos must be 0, 1 or 2")
    user, password = spec.get("user"), spec.get("passwd")
    netloc = parts.netloc
    if user is not None or password is not None:
        if not isinstance(user, str) or not isinstance(password, str):
            raise bad_request("MQTT user and passwd must be given together, as strings")
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{netloc.rpartition('@')[2]}"
    uri = f"{parts.scheme}://{netloc}/{quote(topic, safe='/')}"
    return Endpoint(uri=uri, notifier_info=[("MQTT-QoS", str(qos)),
                                            ("MQTT-Envelope", "none")]), ()


def _expression(condition: dict[str, Any], tenant: str, tm: TermMap,
                service_path: str) -> tuple[Any, Any, str | None, Callable[[Entity], bool] | None]:
    """(q tree, GeoQuery, scopeQ, extra test) of ``condition.expression`` and the path."""
    expression = _object(condition.get("expression", {}), "condition.expression")
    unknown = set(expression) - {"q", "mq", "georel", "geometry", "coords"}
    if unknown:
        raise bad_request(f"unknown field in condition.expression: {sorted(unknown)[0][:40]}")
    params = {k: v for k, v in expression.items() if v != ""}
    for key, value in params.items():
        if not isinstance(value, str):
            raise bad_request(f"condition.expression.{key} must be a string")
    try:
        query = build_query(tenant, params, tm, [service_path], count=False)
    except BadRequestData as exc:       # shared geo / q code raises NGSI-LD problems
        raise bad_request(exc.detail) from None
    return query.plan.q, query.plan.geo, query.plan.scope, query.post


def parse_v2_subscription(body: Any, *, sub_id: str, tenant: str, service_path: str,
                          tm: TermMap, now: str, created_at: str | None = None) -> Subscription:
    """The internal subscription of a v2 body (400 BadRequest in Orion's words when invalid).

    ``body`` is kept, as validated, as ``Subscription.document`` (what GET shows and the store
    keeps); ``service_path`` is the one ``Fiware-ServicePath`` it was created under.
    """
    doc = _object(body, "the subscription")
    unknown = set(doc) - _TOP
    if unknown:
        raise bad_request(f"unknown field in subscription: {sorted(unknown)[0][:40]}")
    if "description" in doc and (not isinstance(doc["description"], str)
                                 or len(doc["description"]) > 1024):
        raise bad_request("description must be a string of at most 1024 characters")
    subject = _object(doc.get("subject"), "subject")
    _known(subject, _SUBJECT, "subject")
    notification = _object(doc.get("notification"), "notification")
    _known(notification, _NOTIFICATION, "notification")
    if notification.get("covered", False) is not False:
        raise bad_request("notification.covered: true is not supported")
    selectors, type_test = _selectors(subject.get("entities"), tm)
    condition = _object(subject.get("condition", {}), "subject.condition")
    _known(condition, _CONDITION, "subject.condition")
    if condition.get("notifyOnMetadataChange", True) is not True:
        raise bad_request("notifyOnMetadataChange: false is not supported (metadata changes "
                          "always notify)")
    watched_names = _names(condition.get("attrs", []), "condition.attrs", tm)
    alterations = condition.get("alterationTypes", list(DEFAULT_ALTERATIONS))
    if not isinstance(alterations, list) or not alterations or \
            any(a not in ALTERATIONS for a in alterations):
        raise bad_request("condition.alterationTypes: each must be one of "
                          + ", ".join(ALTERATIONS))
    q, geo, scope, post = _expression(condition, tenant, tm, service_path)
    tests = [t for t in (type_test, post) if t is not None]
    predicate: Callable[[Entity], bool] | None = None
    if len(tests) == 1:
        predicate = tests[0]
    elif tests:
        def predicate(entity: Entity) -> bool:
            return all(test(entity) for test in tests)
    endpoint, headers = _endpoint(notification)
    attrs = _names(notification.get("attrs", []), "notification.attrs", tm)
    except_attrs = _names(notification.get("exceptAttrs", []), "notification.exceptAttrs", tm)
    if attrs and except_attrs:
        raise bad_request("notification: attrs and exceptAttrs cannot be used at the same time")
    fmt = notification.get("attrsFormat", "normalized")
    if fmt not in FORMATS:
        raise bad_request(f"invalid attrsFormat: {str(fmt)[:40]} (one of {', '.join(FORMATS)})")
    only_changed = notification.get("onlyChangedAttrs", False)
    if not isinstance(only_changed, bool):
        raise bad_request("onlyChangedAttrs must be true or false")
    metadata = _names(notification.get("metadata", []), "notification.metadata", tm)
    status = doc.get("status", "active")
    if status not in STATUSES:
        raise bad_request("status is not valid: it has to be either active, inactive or oneshot")
    throttling = doc.get("throttling")
    if throttling is not None and (isinstance(throttling, bool)
                                   or not isinstance(throttling, int | float) or throttling < 0):
        raise bad_request("throttling must be a number of seconds, 0 or more")
    expires_at = None
    document = {**doc, "id": sub_id,
                "notification": {k: v for k, v in notification.items() if k not in _READ_ONLY}}
    if "expires" in doc:
        try:
            document["expires"] = parse_datetime(doc["expires"], "expires")
            expires_at = to_micros(document["expires"])
        except BadRequestData:
            raise bad_request("expires has an invalid format (ISO 8601 expected)") from None
    spec = V2Spec(attrs_format=fmt, attrs=tuple(attrs) or None, except_attrs=tuple(except_attrs),
                  metadata=tuple(metadata) or None, only_changed=only_changed,
                  service_path=service_path, headers=headers, oneshot=status == "oneshot")
    return Subscription(
        id=sub_id, tenant=tenant, endpoint=endpoint, selectors=selectors,
        watched=frozenset(tm.expand(n) for n in watched_names) or None,
        triggers=frozenset(ALTERATIONS[a] for a in alterations), q=q, geo=geo, scope_q=scope,
        throttling=float(throttling) if throttling else None, expires_at=expires_at,
        is_active=status != "inactive", created_at=created_at or now, modified_at=now,
        document=document, face=V2_FACE, extension=spec, predicate=predicate,
        keep_previous=only_changed)


def merge_patch(document: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A PATCH body applied to a stored v2 document: each top-level member given replaces the
    stored one (Orion's rule), ``id`` cannot change."""
    changes = _object(patch, "the subscription update")
    if not changes:
        raise bad_request("empty subscription update")
    if "id" in changes:
        raise bad_request("the id of a subscription cannot be changed")
    unknown = set(changes) - _TOP
    if unknown:
        raise bad_request(f"unknown field in subscription: {sorted(unknown)[0][:40]}")
    return {**document, **changes}
