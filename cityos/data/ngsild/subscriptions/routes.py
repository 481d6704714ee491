"""HTTP routes of the NGSI-LD subscription API: ``/subscriptions`` (clause 6.10 - 6.11).

Thin: framing and negotiation exactly as for entities (``negotiation.py``, ``responses.py``),
then one action each.  201 + ``Location`` on create, 204 on update and delete, paging with
``limit`` / ``offset`` / ``count`` (``NGSILD-Results-Count``) on the list.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import BadRequestData, NonexistentTenant
from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.negotiation import (
    choose_accept,
    read_body,
    request_context,
    response_context_url,
    tenant_of,
)
from cityos.data.ngsild.queryparams import page_bounds, split_list
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context
from cityos.data.ngsild.routes_entities import broker_of
from cityos.data.ngsild.subscriptions import actions
from cityos.data.ngsild.subscriptions.model import Subscription
from cityos.data.ngsild.subscriptions.view import render_subscription
from cityos.data.ngsild.terms import TermMap

BASE = "/ngsi-ld/v1"


async def _read_tenant(request: Request, broker: Broker) -> str:
    """The tenant of a read; 404 NonexistentTenant when it has neither entities nor subscriptions."""
    tenant = tenant_of(request)
    if tenant and not actions.tenant_is_known(tenant, await broker.store.tenant_exists(tenant),
                                              actions.registry_of(broker)):
        raise NonexistentTenant(f"tenant {tenant!r} does not exist")
    return tenant


def _sys_attrs(request: Request) -> bool:
    options = split_list(request.query_params.get("options"))
    if any(o != "sysAttrs" for o in options):
        raise BadRequestData("the only option of a subscription read is sysAttrs")
    return "sysAttrs" in options


def _view(broker: Broker, sub: Subscription, tm: TermMap, sys_attrs: bool) -> dict[str, object]:
    registry = actions.registry_of(broker)
    return render_subscription(sub, tm, registry.status(sub),
                               registry.counters(sub.tenant, sub.id), sys_attrs=sys_attrs)


async def create_subscription(request: Request) -> Response:
    """POST /subscriptions."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    sub_id = await actions.create_subscription(broker, tenant_of(request), framed.body, tm,
                                               framed.context)
    return Response(status_code=201,
                    headers={"Location": f"{BASE}/subscriptions/{quote(sub_id, safe=':')}"})


async def query_subscriptions(request: Request) -> Response:
    """GET /subscriptions."""
    broker = broker_of(request)
    accept = choose_accept(request)
    context, url = request_context(request)
    tm = await broker.resolver.term_map(context)
    sys_attrs = _sys_attrs(request)
    limit, offset, count = page_bounds(request.query_params, broker.settings)
    tenant = await _read_tenant(request, broker)
    subs = actions.list_subscriptions(broker, tenant)
    page = subs[offset:offset + limit]
    headers = page_headers(request, offset, limit, len(page), len(subs) if count else None)
    body = [_view(broker, sub, tm, sys_attrs) for sub in page]
    return with_context(body, accept, response_context_url(url), headers=headers)


async def retrieve_subscription(request: Request) -> Response:
    """GET /subscriptions/{id}."""
    broker = broker_of(request)
    accept = choose_accept(request)
    context, url = request_context(request)
    tm = await broker.resolver.term_map(context)
    sys_attrs = _sys_attrs(request)
    tenant = await _read_tenant(request, broker)
    sub = actions.retrieve_subscription(broker, tenant, request.path_params["sub_id"])
    return with_context(_view(broker, sub, tm, sys_attrs), accept, response_context_url(url))


async def update_subscription(request: Request) -> Response:
    """PATCH /subscriptions/{id}."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes, allow_merge_patch=True)
    tm = await broker.resolver.term_map(framed.context)
    await actions.update_subscription(broker, tenant_of(request), request.path_params["sub_id"],
                                      framed.body, tm, framed.context)
    return no_content()


async def delete_subscription(request: Request) -> Response:
    """DELETE /subscriptions/{id}."""
    broker = broker_of(request)
    await actions.delete_subscription(broker, tenant_of(request), request.path_params["sub_id"])
    return no_content()


ROUTES = [
    ngsild_route(f"{BASE}/subscriptions", create_subscription, methods=["POST"],
                 name="createSubscription"),
    ngsild_route(f"{BASE}/subscriptions", query_subscriptions, methods=["GET"],
                 name="querySubscription"),
    ngsild_route(f"{BASE}/subscriptions/{{sub_id}}", retrieve_subscription, methods=["GET"],
                 name="retrieveSubscription"),
    ngsild_route(f"{BASE}/subscriptions/{{sub_id}}", update_subscription, methods=["PATCH"],
                 name="updateSubscription"),
    ngsild_route(f"{BASE}/subscriptions/{{sub_id}}", delete_subscription, methods=["DELETE"],
                 name="deleteSubscription"),
]
