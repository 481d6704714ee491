"""Subscription actions: the one way routes (and later the CLI or importers) change subscriptions.

Each action validates everything first (the body, then the endpoint against the SSRF policy),
then writes the store document, then updates the in-memory registry and tells the notifier, so a
subscription the registry matches against is always one that is stored.
"""

from __future__ import annotations

from typing import Any

from cityos.core.access import caller_description, may_see_owned
from cityos.core.problems import AlreadyExists, InternalError, ResourceNotFound
from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.notify.policy import EndpointPolicy
from cityos.data.ngsild.payload import check_uri, utc_now
from cityos.data.ngsild.subscriptions.model import LD_FACE, Subscription
from cityos.data.ngsild.subscriptions.parse import parse_subscription, patch_subscription
from cityos.data.ngsild.subscriptions.registry import SubscriptionRegistry
from cityos.data.ngsild.subscriptions.storage import KIND, to_document
from cityos.data.ngsild.terms import TermMap


def registry_of(broker: Broker) -> SubscriptionRegistry:
    """The registry the composition root gave the broker."""
    registry = broker.registry
    if not isinstance(registry, SubscriptionRegistry):
        raise InternalError("the subscription registry is not configured")
    return registry


def _missing(sub_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"subscription {sub_id} does not exist")


async def _finish(broker: Broker, sub: Subscription, request_tm: TermMap,
                  request_context: Any) -> None:
    """Endpoint policy and the notification term map: the checks that need the broker."""
    EndpointPolicy.from_settings(broker.settings).check(sub.endpoint.uri)
    if sub.context == request_context:
        sub.term_map = request_tm
    else:  # a jsonldContext names another context (503 when it cannot be fetched)
        sub.term_map = await broker.resolver.term_map(sub.context)


async def create_subscription(broker: Broker, tenant: str, body: Any, tm: TermMap,
                              context: Any) -> str:
    """POST /subscriptions: the new subscription's id (``AlreadyExists`` when taken)."""
    sub = parse_subscription(body, tm, tenant, utc_now(), context=context)
    sub.owner = caller_description()
    await _finish(broker, sub, tm, context)
    registry = registry_of(broker)
    if not await broker.store.put_document(KIND, tenant, sub.id, to_document(sub), create=True):
        raise AlreadyExists(f"subscription {sub.id} already exists")
    registry.put(sub)
    if broker.notifier is not None:
        broker.notifier.subscription_changed(sub)
    return sub.id


def retrieve_subscription(broker: Broker, tenant: str, sub_id: str) -> Subscription:
    """One subscription of the tenant (``ResourceNotFound`` otherwise)."""
    check_uri(sub_id, "subscription id")
    sub = registry_of(broker).get(tenant, sub_id)
    # NGSI v2 subscriptions are /v2/subscriptions'; another organization's look absent
    if sub is None or sub.face != LD_FACE or not may_see_owned(sub.owner):
        raise _missing(sub_id)
    return sub


def list_subscriptions(broker: Broker, tenant: str) -> list[Subscription]:
    """Every NGSI-LD subscription of the tenant, oldest first."""
    return [s for s in registry_of(broker).of_tenant(tenant, LD_FACE) if may_see_owned(s.owner)]


async def update_subscription(broker: Broker, tenant: str, sub_id: str, body: Any, tm: TermMap,
                              context: Any) -> None:
    """PATCH /subscriptions/{id}."""
    existing = retrieve_subscription(broker, tenant, sub_id)
    sub = patch_subscription(existing, body, tm, utc_now(), context=context)
    sub.owner = existing.owner
    if sub.context == existing.context and existing.term_map is not None:
        sub.term_map = existing.term_map
        EndpointPolicy.from_settings(broker.settings).check(sub.endpoint.uri)
    else:
        await _finish(broker, sub, tm, context)
    registry = registry_of(broker)
    if not await broker.store.put_document(KIND, tenant, sub.id, to_document(sub)):
        raise _missing(sub_id)  # deleted meanwhile (another node)
    registry.put(sub)
    if broker.notifier is not None:
        broker.notifier.subscription_changed(sub)


async def delete_subscription(broker: Broker, tenant: str, sub_id: str) -> None:
    """DELETE /subscriptions/{id}."""
    check_uri(sub_id, "subscription id")
    registry = registry_of(broker)
    existing = registry.get(tenant, sub_id)
    if existing is not None and (existing.face != LD_FACE or not may_see_owned(existing.owner)):
        raise _missing(sub_id)
    stored = await broker.store.delete_document(KIND, tenant, sub_id)
    known = registry.remove(tenant, sub_id)
    if not stored and not known:
        raise _missing(sub_id)
    if broker.notifier is not None:
        broker.notifier.subscription_removed(tenant, sub_id)


def tenant_is_known(tenant: str, has_entities: bool, registry: SubscriptionRegistry) -> bool:
    """Whether a read of ``tenant`` names a tenant that exists (it has entities or subscriptions)."""
    return not tenant or has_entities or bool(registry.of_tenant(tenant))
