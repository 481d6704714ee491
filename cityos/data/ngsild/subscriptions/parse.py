"""Subscription bodies -> :class:`Subscription` (ETSI GS CIM 009 v1.8, clauses 5.2.12, 5.8.1-5.8.2).

Everything is validated before anything is stored, and each failure is a ``BadRequestData`` that
names the member at fault.  Names (entity types, attributes, the ``geoproperty``, the attributes
in ``q``) are expanded with the caller's ``@context``; every expansion is recorded per top-level
member (:mod:`.terms`), so the stored subscription can be parsed again at start-up with no remote
context, and a PATCH under another ``@context`` re-expands only the members it replaces.

``document`` keeps the body as the client wrote it (read-only members and ``@context`` removed,
``id`` filled in, ``expiresAt`` in UTC): GET shows it again, re-compacted for its own caller.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.geoquery import GeoQuery, parse_geoquery
from cityos.data.ngsild.payload import check_name, check_uri, parse_datetime
from cityos.data.ngsild.qlang import expand_q, parse_q
from cityos.data.ngsild.queryparams import parse_selector
from cityos.data.ngsild.store.base import Selector
from cityos.data.ngsild.subscriptions.model import DEFAULT_TRIGGERS, TRIGGERS, Subscription
from cityos.data.ngsild.subscriptions.parse_notification import (
    parse_notification,
    writable_members,
)
from cityos.data.ngsild.subscriptions.terms import RecordingTermMap, replay
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import now_micros, to_micros

ID_PREFIX = "urn:ngsi-ld:Subscription:"
_MEMBERS = frozenset({"id", "type", "subscriptionName", "description", "entities",
                      "watchedAttributes", "notificationTrigger", "timeInterval", "q", "geoQ",
                      "scopeQ", "isActive", "expiresAt", "throttling", "lang", "jsonldContext",
                      "datasetId", "notification"})
READ_ONLY = frozenset({"status", "createdAt", "modifiedAt", "@context"})
_GEO_MEMBERS = frozenset({"geometry", "coordinates", "georel", "geoproperty"})
_LANG = re.compile(r"^[A-Za-z0-9\-*,;.= ]{1,100}$")
_SCOPE = re.compile(r"^/[^\s,]*$")
MAX_TEXT = 4096


def parse_subscription(body: Any, tm: TermMap, tenant: str, now: str, *,
                       context: Any = None, member_tms: Mapping[str, TermMap] | None = None,
                       check_expiry: bool = True, created_at: str | None = None) -> Subscription:
    """A whole subscription (POST /subscriptions, and re-reading a stored one).

    ``context``: the request's ``@context`` (notifications are compacted with it unless the body
    names a ``jsonldContext``).  ``member_tms``: term maps for some members that differ from
    ``tm`` (stored or unchanged members).  ``check_expiry``: ``expiresAt`` must be in the future
    (on create; a stored subscription may well have expired since).
    """
    document = writable_members(body, READ_ONLY, _MEMBERS, "the subscription")
    recorders: dict[str, RecordingTermMap] = {}

    def tm_for(member: str) -> TermMap:
        recorder = RecordingTermMap((member_tms or {}).get(member, tm))
        recorders[member] = recorder
        return recorder

    if document.get("type") != "Subscription":
        raise BadRequestData("type must be \"Subscription\"" if "type" in document
                             else "type is missing: a subscription has type \"Subscription\"")
    sub_id = check_uri(document["id"], "id") if "id" in document else ID_PREFIX + str(uuid.uuid4())
    document = {"id": sub_id, **{k: v for k, v in document.items() if k != "id"}}
    for key in ("subscriptionName", "description"):
        if key in document and (not isinstance(document[key], str) or len(document[key]) > MAX_TEXT):
            raise BadRequestData(f"{key} must be a string of at most {MAX_TEXT} characters")
    selectors = _entities(document["entities"], tm_for("entities")) if "entities" in document \
        else None
    watched = _names(document["watchedAttributes"], "watchedAttributes",
                     tm_for("watchedAttributes")) if "watchedAttributes" in document else None
    triggers = _triggers(document.get("notificationTrigger"))
    time_interval = _positive(document.get("timeInterval"), "timeInterval")
    throttling = _positive(document.get("throttling"), "throttling")
    q = _q(document["q"], tm_for("q")) if "q" in document else None
    geo = _geo(document["geoQ"], tm_for("geoQ")) if "geoQ" in document else None
    scope_q = _scope_q(document["scopeQ"]) if "scopeQ" in document else None
    is_active = document.get("isActive", True)
    if not isinstance(is_active, bool):
        raise BadRequestData("isActive must be true or false")
    expires_at = None
    if "expiresAt" in document:
        document["expiresAt"] = parse_datetime(document["expiresAt"], "expiresAt")
        expires_at = to_micros(document["expiresAt"])
        if check_expiry and expires_at <= now_micros():
            raise BadRequestData(f"expiresAt {document['expiresAt']} is not in the future")
    lang = document.get("lang")
    if lang is not None and (not isinstance(lang, str) or not _LANG.match(lang)):
        raise BadRequestData(f"invalid lang {str(lang)[:40]!r}")
    if "jsonldContext" in document:
        check_uri(document["jsonldContext"], "jsonldContext")
    dataset_ids = _dataset_ids(document["datasetId"]) if "datasetId" in document else None
    if "notification" not in document:
        raise BadRequestData("notification is missing: it says where and how to notify")
    params = parse_notification(document["notification"], tm_for("notification"))
    document["notification"] = params.document
    _check_combination(selectors, watched, time_interval, throttling)
    return Subscription(
        id=sub_id, tenant=tenant, endpoint=params.endpoint, selectors=selectors, watched=watched,
        triggers=triggers, q=q, geo=geo, scope_q=scope_q, attributes=params.attributes,
        omit=params.omit, show_id=params.show_id, show_type=params.show_type,
        format=params.format, show_changes=params.show_changes, sys_attrs=params.sys_attrs,
        lang=lang, dataset_ids=dataset_ids, join=params.join, join_level=params.join_level,
        throttling=throttling, time_interval=time_interval, expires_at=expires_at,
        is_active=is_active, context=document.get("jsonldContext", context),
        created_at=created_at or now, modified_at=now, document=document,
        terms={m: r.recorded for m, r in recorders.items() if r.recorded},
        name=document.get("subscriptionName"))


def patch_subscription(existing: Subscription, body: Any, tm: TermMap, now: str, *,
                       context: Any = None) -> Subscription:
    """PATCH /subscriptions/{id}: each member of ``body`` replaces the stored one (clause 5.8.2).

    ``null`` removes a member; ``notification`` is merged one level deep, so ``{"notification":
    {"format": "keyValues"}}`` keeps the endpoint.  The result is validated as a whole.
    ``context``: the PATCH request's ``@context`` (``tm`` is its term map).
    """
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the body must be a non-empty JSON object of subscription members")
    if "id" in body and body["id"] != existing.id:
        raise BadRequestData("id cannot be changed")
    merged = copy.deepcopy(existing.document)
    member_tms: dict[str, TermMap] = {m: replay(t) for m, t in existing.terms.items()}
    for key, value in body.items():
        if key in READ_ONLY:
            continue
        if value is None:
            if key in ("id", "type", "notification"):
                raise BadRequestData(f"{key} cannot be removed")
            merged.pop(key, None)
            continue
        if key == "notification" and isinstance(value, dict) and \
                isinstance(merged.get("notification"), dict):
            notification = dict(merged["notification"])
            for inner, inner_value in value.items():
                if inner_value is None:
                    notification.pop(inner, None)
                else:
                    notification[inner] = inner_value
            merged["notification"] = notification
            if not {"attributes", "pick", "omit"} & set(value):
                continue  # the stored attribute names keep their expansion
        else:
            merged[key] = value
        member_tms[key] = tm
    # notifications keep the @context of the create request; when a jsonldContext named it
    # instead and this PATCH removes it, the PATCH request's own @context takes over
    if "jsonldContext" not in existing.document:
        context = existing.context
    return parse_subscription(merged, tm, existing.tenant, now, context=context,
                              member_tms=member_tms, check_expiry=False,
                              created_at=existing.created_at)


def _check_combination(selectors: tuple[Selector, ...] | None, watched: frozenset[str] | None,
                       time_interval: float | None, throttling: float | None) -> None:
    """Rules between members (clause 5.2.12)."""
    if selectors is None and watched is None:
        raise BadRequestData("a subscription needs entities or watchedAttributes (or both)")
    if time_interval is not None and watched is not None:
        raise BadRequestData("timeInterval and watchedAttributes cannot be used together: a "
                             "periodic subscription notifies on time, not on changes")
    if time_interval is not None and throttling is not None:
        raise BadRequestData("timeInterval and throttling cannot be used together")


def _entities(raw: Any, tm: TermMap) -> tuple[Selector, ...]:
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("entities must be a non-empty array of EntitySelectors")
    selectors = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadRequestData(f"entities[{index}] must be a JSON object")
        selectors.append(parse_selector(item, tm, f"entities[{index}]"))
    return tuple(selectors)


def _names(raw: Any, member: str, tm: TermMap) -> frozenset[str]:
    if not isinstance(raw, list) or not raw:
        raise BadRequestData(f"{member} must be a non-empty array of attribute names")
    return frozenset(tm.expand(check_name(name)) for name in raw)


def _dataset_ids(raw: Any) -> frozenset[str]:
    """``datasetId`` (clause 5.2.12, selection as in 4.5.5): the attribute instances notified.

    An array of dataset URIs; ``@none`` names the default instance (the one without a datasetId).
    """
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("datasetId must be a non-empty array of dataset URIs (or \"@none\")")
    return frozenset(v if v == "@none" else check_uri(v, "datasetId") for v in raw)


def _triggers(raw: Any) -> frozenset[str]:
    if raw is None:
        return DEFAULT_TRIGGERS
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("notificationTrigger must be a non-empty array")
    for value in raw:
        if not isinstance(value, str) or value not in TRIGGERS:   # an array is unhashable
            raise BadRequestData(f"notificationTrigger {str(value)[:40]!r} is not one of "
                                 f"{sorted(TRIGGERS)}")
    return frozenset(raw)


def _positive(raw: Any, member: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise BadRequestData(f"{member} must be a number of seconds greater than 0")
    return float(raw)


def _q(raw: Any, tm: TermMap) -> Any:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequestData("q must be a non-empty string in the NGSI-LD query language")
    return expand_q(parse_q(raw), tm.expand)


def _geo(raw: Any, tm: TermMap) -> GeoQuery:
    if not isinstance(raw, dict):
        raise BadRequestData("geoQ must be a JSON object with georel, geometry and coordinates")
    unknown = set(raw) - _GEO_MEMBERS
    if unknown:
        raise BadRequestData(f"geoQ has unknown members {sorted(unknown)}")
    geo = parse_geoquery(raw.get("georel"), raw.get("geometry"), raw.get("coordinates"),
                         raw.get("geoproperty"))
    if geo is None:
        raise BadRequestData("geoQ needs georel, geometry and coordinates")
    return GeoQuery(georel=geo.georel, geometry=geo.geometry,
                    geoproperty=tm.expand(geo.geoproperty), max_distance=geo.max_distance,
                    min_distance=geo.min_distance)


def _scope_q(raw: Any) -> str:
    """``/a/b,/c/#``: comma-separated scope paths, ``#`` and ``+`` as the last level."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT:
        raise BadRequestData("scopeQ must be a non-empty string")
    for option in raw.split(","):
        if not _SCOPE.match(option.strip()):
            raise BadRequestData(f"scopeQ option {option[:60]!r} must be a path such as /Kobe/#")
    return raw
