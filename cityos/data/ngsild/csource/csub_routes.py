"""HTTP routes of context source registration subscriptions: ``/csourceSubscriptions`` (5.11)."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import AlreadyExists, BadRequestData, ResourceNotFound
from cityos.data.ngsild.csource import actions
from cityos.data.ngsild.csource.csub_model import KIND, CsourceSubscription, parse_csub, parse_csub_members
from cityos.data.ngsild.csource.csub_notify import subscription_created
from cityos.data.ngsild.csource.index import RegistrationIndex, index_of
from cityos.data.ngsild.csource.view import read_options
from cityos.data.ngsild.negotiation import (
    read_body,
    tenant_of,
)
from cityos.data.ngsild.payload import check_uri, utc_now
from cityos.data.ngsild.queryparams import page_bounds
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context
from cityos.data.ngsild.terms import TermMap

BASE = "/ngsi-ld/v1/csourceSubscriptions"


def render_csub(index: RegistrationIndex, sub: CsourceSubscription, tm: TermMap,
                sys_attrs: bool) -> dict[str, Any]:
    """The subscription as the client wrote it, compacted, with its status and counters."""
    doc = sub.doc
    out: dict[str, Any] = {"id": sub.id, "type": "Subscription"}
    for key in ("subscriptionName", "description"):
        if key in doc:
            out[key] = doc[key]
    if "entities" in doc:
        out["entities"] = [{**{k: v for k, v in e.items() if k != "type"},
                            "type": tm.compact(e["type"])} for e in doc["entities"]]
    if "watchedAttributes" in doc:
        out["watchedAttributes"] = [tm.compact(a) for a in doc["watchedAttributes"]]
    for key in ("csf", "geoQ", "expiresAt"):
        if key in doc:
            out[key] = doc[key]
    out["notification"] = {**doc["notification"]["document"],
                           **index.csub_status.get((sub.tenant, sub.id), {})}
    out["isActive"] = doc.get("isActive", True)
    out["status"] = sub.status(utc_now())
    if sys_attrs:
        out["createdAt"], out["modifiedAt"] = doc["createdAt"], doc["modifiedAt"]
    return out


async def _get(index: RegistrationIndex, tenant: str, sub_id: str) -> CsourceSubscription:
    check_uri(sub_id, "subscription id")
    doc = await actions.stored_document(index, KIND, tenant, sub_id, "csource subscription")
    return CsourceSubscription(doc, tenant)


async def create_csub(request: Request) -> Response:
    """POST /csourceSubscriptions: stored, then the registrations matching now are notified."""
    index = index_of(request.app)
    tenant = tenant_of(request)
    framed = await read_body(request, index.settings.max_body_bytes)
    tm = await index.resolver.term_map(framed.context)
    doc = parse_csub(framed.body, tm, framed.context, utc_now())
    sub = CsourceSubscription(doc, tenant)
    endpoint = doc["notification"]["endpoint"]["uri"]
    from cityos.data.ngsild.csource.forward import endpoint_policy

    endpoint_policy(index.settings).check(endpoint)
    if not await index.store.put_document(KIND, tenant, sub.id, doc, create=True):
        raise AlreadyExists(f"csource subscription {sub.id} already exists")
    await subscription_created(index, index.resolver, sub,
                               await actions.list_registrations(index, tenant))
    return Response(status_code=201, headers={"Location": f"{BASE}/{quote(sub.id, safe=':')}"})


async def query_csubs(request: Request) -> Response:
    """GET /csourceSubscriptions."""
    index = index_of(request.app)
    tm, ctx_url, accept, sys_attrs = await read_options(request, "subscription")
    limit, offset, count = page_bounds(request.query_params, index.settings)
    tenant = tenant_of(request)
    subs = [CsourceSubscription(d, tenant) for d in await index.store.list_documents(KIND, tenant)]
    page = subs[offset:offset + limit]
    headers = page_headers(request, offset, limit, len(page), len(subs) if count else None)
    return with_context([render_csub(index, s, tm, sys_attrs) for s in page], accept, ctx_url,
                        headers=headers)


async def retrieve_csub(request: Request) -> Response:
    """GET /csourceSubscriptions/{id}."""
    index = index_of(request.app)
    tm, ctx_url, accept, sys_attrs = await read_options(request, "subscription")
    sub = await _get(index, tenant_of(request), request.path_params["sub_id"])
    return with_context(render_csub(index, sub, tm, sys_attrs), accept, ctx_url)


async def update_csub(request: Request) -> Response:
    """PATCH /csourceSubscriptions/{id}: the given members replace the stored ones."""
    index = index_of(request.app)
    tenant = tenant_of(request)
    framed = await read_body(request, index.settings.max_body_bytes, allow_merge_patch=True)
    body = framed.body
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the body must be a non-empty JSON object")
    if "type" in body and body["type"] != "Subscription":
        raise BadRequestData("type must be 'Subscription'")
    sub = await _get(index, tenant, request.path_params["sub_id"])
    tm = await index.resolver.term_map(framed.context)
    doc = copy.deepcopy(sub.doc)
    doc.update(parse_csub_members({k: v for k, v in body.items()
                                   if k not in ("id", "type", "@context")}, tm))
    doc["modifiedAt"] = utc_now()
    await index.store.put_document(KIND, tenant, sub.id, doc)
    return no_content()


async def delete_csub(request: Request) -> Response:
    """DELETE /csourceSubscriptions/{id}."""
    index = index_of(request.app)
    tenant = tenant_of(request)
    sub_id = request.path_params["sub_id"]
    check_uri(sub_id, "subscription id")
    if not await index.store.delete_document(KIND, tenant, sub_id):
        raise ResourceNotFound(f"csource subscription {sub_id} does not exist")
    index.csub_status.pop((tenant, sub_id), None)
    return no_content()


ROUTES = [
    ngsild_route(BASE, create_csub, methods=["POST"], name="createCSRSubscription"),
    ngsild_route(BASE, query_csubs, methods=["GET"], name="queryCSRSubscription"),
    ngsild_route(f"{BASE}/{{sub_id}}", retrieve_csub, methods=["GET"],
                 name="retrieveCSRSubscription"),
    ngsild_route(f"{BASE}/{{sub_id}}", update_csub, methods=["PATCH"],
                 name="updateCSRSubscription"),
    ngsild_route(f"{BASE}/{{sub_id}}", delete_csub, methods=["DELETE"],
                 name="deleteCSRSubscription"),
]
