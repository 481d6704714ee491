"""NGSI v2 subscription actions, storage and start-up wiring, on the NGSI-LD registry.

A v2 subscription is stored as a generic document of kind :data:`KIND` (the v2 body as
validated, its service path and times) and put in the one :class:`SubscriptionRegistry`; the
registry reloads such documents at start-up through :func:`from_document`
(:func:`install_subscriptions` tells it how).  Like the NGSI-LD actions: validate everything
first (body, then the endpoint against the SSRF policy), write the document, then update the
registry and tell the notifier, so the registry only ever matches stored subscriptions.

``oneshot``: the first notification rendered for a oneshot subscription turns it ``inactive``
(stored, so a restart does not fire it again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Callable
from typing import Any

from cityos.core.access import caller_description, may_see_owned
from cityos.core.problems import BadRequestData
from cityos.data.ngsild import Broker
from cityos.data.ngsild.notify import EndpointPolicy
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.subscriptions import NotifyItem, Subscription, SubscriptionRegistry
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsiv2.errors import V2Error, bad_request
from cityos.data.ngsiv2.names import V2Names, context_urls
from cityos.data.ngsiv2.sub_parse import V2_FACE, V2Spec, merge_patch, parse_v2_subscription
from cityos.data.ngsiv2.sub_render import V2NotificationRenderer

log = logging.getLogger("cityos.ngsiv2")

KIND = "v2-subscription"
NOT_FOUND = "The requested subscription has not been found. Check id"


def new_id() -> str:
    """An Orion-like subscription id (24 hexadecimal digits)."""
    return secrets.token_hex(12)


def to_document(sub: Subscription) -> dict[str, Any]:
    """The stored form of a v2 subscription."""
    spec = sub.extension
    path = spec.service_path if isinstance(spec, V2Spec) else "/#"
    return {"body": sub.document, "servicePath": path, "createdAt": sub.created_at,
            "modifiedAt": sub.modified_at, "owner": sub.owner}


def from_document(doc: dict[str, Any], tenant: str, tm: TermMap) -> Subscription:
    """Rebuild a stored v2 subscription, its names read through ``tm`` (the v2 face's term map
    now: the stored body keeps the v2 names as written), ``ValueError`` when it no longer
    validates."""
    body = doc["body"]
    try:
        sub = parse_v2_subscription(body, sub_id=body["id"], tenant=tenant,
                                    service_path=doc.get("servicePath", "/#"), tm=tm,
                                    now=doc.get("modifiedAt", ""), created_at=doc.get("createdAt"))
    except V2Error as exc:
        raise ValueError(exc.description) from None
    sub.owner = doc.get("owner")
    return sub


def registry_of(broker: Broker) -> SubscriptionRegistry:
    """The one subscription registry (both faces')."""
    registry = broker.registry
    if not isinstance(registry, SubscriptionRegistry):
        raise V2Error(500, "InternalServerError", "the subscription registry is not configured")
    return registry


def _check_endpoint(broker: Broker, sub: Subscription) -> None:
    try:
        EndpointPolicy.from_settings(broker.settings).check(sub.endpoint.uri)
    except BadRequestData as exc:
        raise bad_request(f"notification endpoint refused: {exc.detail}") from None


async def _publish(broker: Broker, sub: Subscription, *, create: bool) -> None:
    if not await broker.store.put_document(KIND, sub.tenant, sub.id, to_document(sub),
                                           create=create):
        raise V2Error(404, "NotFound", NOT_FOUND)
    registry_of(broker).put(sub)
    if broker.notifier is not None:
        broker.notifier.subscription_changed(sub)


async def create(broker: Broker, tenant: str, service_path: str, body: Any, tm: TermMap) -> str:
    """POST /v2/subscriptions: the new id (names read through the v2 face's ``tm``)."""
    if isinstance(body, dict) and "id" in body:
        raise bad_request("a subscription id is given by the broker, not in the request")
    sub = parse_v2_subscription(body, sub_id=new_id(), tenant=tenant, service_path=service_path,
                                tm=tm, now=utc_now())
    sub.owner = caller_description()
    _check_endpoint(broker, sub)
    await _publish(broker, sub, create=True)
    return sub.id


def retrieve(broker: Broker, tenant: str, sub_id: str) -> Subscription:
    """One v2 subscription of the tenant, or 404 NotFound."""
    sub = registry_of(broker).get(tenant, sub_id)
    if sub is None or sub.face != V2_FACE or not may_see_owned(sub.owner):
        raise V2Error(404, "NotFound", NOT_FOUND)
    return sub


def listed(broker: Broker, tenant: str) -> list[Subscription]:
    """The tenant's v2 subscriptions, oldest first."""
    return [s for s in registry_of(broker).of_tenant(tenant, V2_FACE) if may_see_owned(s.owner)]


async def update(broker: Broker, tenant: str, sub_id: str, patch: Any, tm: TermMap) -> None:
    """PATCH /v2/subscriptions/{id}: the members given replace the stored ones."""
    existing = retrieve(broker, tenant, sub_id)
    spec = existing.extension
    merged = merge_patch(existing.document, patch)
    sub = parse_v2_subscription(merged, sub_id=sub_id, tenant=tenant,
                                service_path=spec.service_path if isinstance(spec, V2Spec)
                                else "/#", tm=tm, now=utc_now(),
                                created_at=existing.created_at)
    sub.owner = existing.owner
    _check_endpoint(broker, sub)
    if "status" in merged and merged.get("status") != "inactive":
        registry = registry_of(broker)    # reactivated: a failing streak starts again
        registry.counters(tenant, sub_id).consecutive_failures = 0
    await _publish(broker, sub, create=False)


async def delete(broker: Broker, tenant: str, sub_id: str) -> None:
    """DELETE /v2/subscriptions/{id}."""
    retrieve(broker, tenant, sub_id)
    await broker.store.delete_document(KIND, tenant, sub_id)
    registry_of(broker).remove(tenant, sub_id)
    if broker.notifier is not None:
        broker.notifier.subscription_removed(tenant, sub_id)


class _OneshotRenderer(V2NotificationRenderer):
    """The v2 renderer, which also turns a oneshot subscription inactive once it fires.

    ``fired_once(sub)`` is told of it, at once (the lane sends nothing more for it either way):
    in the server it stores the subscription as inactive; in a dispatcher process it asks the
    server to (ADR 0017).
    """

    def __init__(self, names: V2Names, fired_once: Callable[[Subscription], None]) -> None:
        super().__init__(names)
        self.fired_once = fired_once

    def encode(self, sub: Subscription, items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        spec = sub.extension
        if isinstance(spec, V2Spec) and spec.oneshot and sub.is_active:
            sub.is_active = False      # at once: the lane sends nothing more for it
            self.fired_once(sub)
        return super().encode(sub, items)


async def deactivate_oneshot(broker: Broker, tenant: str, sub_id: str) -> None:
    """Store a oneshot subscription that has fired as inactive (a restart must not fire it
    again), and tell the registry and the notifier."""
    sub = registry_of(broker).get(tenant, sub_id)
    spec = sub.extension if sub is not None else None
    if sub is None or not isinstance(spec, V2Spec) or not spec.oneshot:
        return                                  # deleted or changed meanwhile
    document = {**sub.document, "status": "inactive"}
    replacement = dataclasses.replace(sub, is_active=False, document=document,
                                      extension=dataclasses.replace(spec, oneshot=False))
    try:
        if await broker.store.put_document(KIND, tenant, sub_id, to_document(replacement)):
            registry_of(broker).put(replacement)
            if broker.notifier is not None:
                broker.notifier.subscription_changed(replacement)
    except Exception:
        log.warning("could not store oneshot subscription %s as inactive", sub_id, exc_info=True)


class _Deactivations:
    """Runs :func:`deactivate_oneshot` in the server's loop, keeping the tasks alive."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, sub: Subscription) -> None:
        task = asyncio.get_running_loop().create_task(
            deactivate_oneshot(self.broker, sub.tenant, sub.id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def install_subscriptions(broker: Broker, renderer: Any) -> V2Names:
    """Wire v2 subscriptions into the broker's registry and notification renderer.

    Call once, before the registry loads (the composition root does): the registry then also
    reloads ``v2-subscription`` documents, and ``renderer.register`` routes the notifications
    of ``face == "ngsi-v2"`` subscriptions to the v2 renderer.  Returns the v2 face's
    :class:`V2Names` (core context only until :func:`resolve_names` runs), which the
    composition root keeps as ``app.state.v2_names`` for the routes.
    """
    names = V2Names()

    def rebuild(doc: dict[str, Any], tenant: str) -> Subscription:
        return from_document(doc, tenant, names.term_map)

    registry_of(broker).add_kind(KIND, rebuild)
    renderer.register(V2_FACE, _OneshotRenderer(names, _Deactivations(broker)))
    return names


def stored_form(sub: Subscription) -> tuple[str, dict[str, Any]]:
    """A v2 subscription as a dispatcher process rebuilds it (ADR 0017): its tenant and stored
    document.  Parsed v2 subscriptions hold Python tests that do not pickle."""
    return sub.tenant, to_document(sub)


def dispatcher_face(term_map: TermMap, fired_once: Callable[[Subscription], None]) -> tuple[
        str, Any, Callable[[Any], Subscription]]:
    """What a dispatcher process needs of the v2 face: its name, its renderer (names compacted
    through the server's v2 ``term_map``; a oneshot subscription that fires is reported to
    ``fired_once``) and how to rebuild a subscription from :func:`stored_form`."""
    names = V2Names()
    names.term_map = term_map

    def rebuild(form: Any) -> Subscription:
        tenant, doc = form
        return from_document(doc, tenant, names.term_map)

    return V2_FACE, _OneshotRenderer(names, fired_once), rebuild


async def resolve_names(broker: Broker, names: V2Names, setting: str, *,
                        reload: bool = True) -> list[str]:
    """Resolve the v2 face's ``@context`` (``CITYOS_V2_CONTEXT``'s comma-separated URLs) once,
    at start-up, and (``reload``) re-read the v2 subscriptions already loaded through it.

    Start-up resolves before the registry loads, so nothing is read twice; only with the demo,
    whose hosted context exists after the demo load (which itself follows the registry load),
    are the stored subscriptions parsed again: a stored body keeps the v2 names as written, so
    it then means what the face's names mean now.
    Raises :class:`V2ContextError` when a URL cannot be resolved.  Returns the URLs in use.
    """
    urls = context_urls(setting)
    await names.resolve(broker.resolver, urls)
    if urls and reload:
        # the registry's own bulk load (one index rebuild, not one per subscription); the
        # rebuild function installed above now reads v2 names through the resolved term map
        await registry_of(broker).load(broker.store, broker.resolver)
    return urls
