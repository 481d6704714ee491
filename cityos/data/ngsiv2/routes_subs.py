"""HTTP routes of NGSI v2 subscriptions: ``/v2/subscriptions`` (Orion's API).

POST -> 201 + ``Location: /v2/subscriptions/{id}``; GET list (``limit``, ``offset``,
``options=count`` -> ``Fiware-Total-Count``); GET one; PATCH -> 204; DELETE -> 204.  Errors in
Orion's format (``errors.v2_route``).  The subscription's tenant is ``Fiware-Service``; its
service path is the one ``Fiware-ServicePath`` of the creation (default ``/#``: every path).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsiv2 import sub_actions
from cityos.data.ngsiv2.errors import bad_request, v2_route
from cityos.data.ngsiv2.http import broker_of, json_ok, no_content, options_of, read_json
from cityos.data.ngsiv2.mapping import query_paths, tenant_of
from cityos.data.ngsiv2.names import face_terms
from cityos.data.ngsiv2.query import page
from cityos.data.ngsiv2.sub_render import subscription_view

BASE = "/v2/subscriptions"


def _service_path(request: Request) -> str:
    paths = query_paths(request)
    if len(paths) != 1:
        raise bad_request("a subscription has exactly one service path")
    return paths[0]


async def create_subscription(request: Request) -> Response:
    """POST /v2/subscriptions."""
    broker = broker_of(request)
    body = await read_json(request, broker)
    sub_id = await sub_actions.create(broker, tenant_of(request), _service_path(request), body,
                                      face_terms(request))
    return Response(status_code=201, headers={"Location": f"{BASE}/{sub_id}"})


async def list_subscriptions(request: Request) -> Response:
    """GET /v2/subscriptions."""
    broker = broker_of(request)
    options = options_of(request, ("count",))
    limit, offset = page(request.query_params)
    tenant = tenant_of(request)
    subs = sub_actions.listed(broker, tenant)
    registry = sub_actions.registry_of(broker)
    body = [subscription_view(s, registry.status(s), registry.counters(tenant, s.id))
            for s in subs[offset:offset + limit]]
    headers = {"Fiware-Total-Count": str(len(subs))} if "count" in options else None
    return json_ok(body, headers=headers)


async def retrieve_subscription(request: Request) -> Response:
    """GET /v2/subscriptions/{id}."""
    broker = broker_of(request)
    tenant = tenant_of(request)
    sub = sub_actions.retrieve(broker, tenant, request.path_params["sub_id"])
    registry = sub_actions.registry_of(broker)
    return json_ok(subscription_view(sub, registry.status(sub), registry.counters(tenant, sub.id)))


async def update_subscription(request: Request) -> Response:
    """PATCH /v2/subscriptions/{id}."""
    broker = broker_of(request)
    tenant = tenant_of(request)
    sub_actions.retrieve(broker, tenant, request.path_params["sub_id"])   # 404 before 400
    body = await read_json(request, broker)
    await sub_actions.update(broker, tenant, request.path_params["sub_id"], body,
                             face_terms(request))
    return no_content()


async def delete_subscription(request: Request) -> Response:
    """DELETE /v2/subscriptions/{id}."""
    broker = broker_of(request)
    await sub_actions.delete(broker, tenant_of(request), request.path_params["sub_id"])
    return no_content()


ROUTES = [
    v2_route(BASE, create_subscription, methods=["POST"], name="v2CreateSubscription"),
    v2_route(BASE, list_subscriptions, methods=["GET"], name="v2ListSubscriptions"),
    v2_route(f"{BASE}/{{sub_id}}", retrieve_subscription, methods=["GET"],
             name="v2RetrieveSubscription"),
    v2_route(f"{BASE}/{{sub_id}}", update_subscription, methods=["PATCH"],
             name="v2UpdateSubscription"),
    v2_route(f"{BASE}/{{sub_id}}", delete_subscription, methods=["DELETE"],
             name="v2DeleteSubscription"),
]
