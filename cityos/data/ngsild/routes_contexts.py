"""The ``/jsonldContexts`` API (clause 5.13): host, list, serve and delete ``@context`` documents.

Hosted contexts are stored per tenant and served at ``/ngsi-ld/v1/jsonldContexts/{id}``; the
resolver finds them by that URL without any network round trip.  Cached contexts are the remote
ones the broker fetched; deleting one with ``reload=true`` fetches it again on next use.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.core.http import json_response
from cityos.core.problems import BadRequestData, ResourceNotFound
from cityos.data.ngsild.context import CORE_CONTEXT_URL, core_context_document
from cityos.data.ngsild.negotiation import choose_accept, read_body, tenant_of
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.responses import no_content
from cityos.data.ngsild.routes_entities import BASE, broker_of

CORE_ID = "core"


def _self_url(request: Request, ctx_id: str) -> str:
    return str(request.base_url).rstrip("/") + f"{BASE}/jsonldContexts/{ctx_id}"


async def add_context(request: Request) -> Response:
    """POST /jsonldContexts: host a context; 201 with its URL in ``Location``."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes, context_is_payload=True)
    body = framed.body
    if not isinstance(body, dict) or "@context" not in body:
        raise BadRequestData('the body must be a JSON object with a "@context" member')
    if not isinstance(body["@context"], (dict, list, str)):
        raise BadRequestData("@context must be an object, an array or a URL")
    await broker.resolver.term_map(body["@context"])  # refuse contexts that cannot be used
    ctx_id = uuid.uuid4().hex
    url = _self_url(request, ctx_id)
    await broker.store.put_context(tenant_of(request), ctx_id, url, "Hosted",
                                   {"@context": body["@context"]}, utc_now())
    return Response(status_code=201, headers={"Location": url})


async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts (``details``, ``kind``)."""
    broker = broker_of(request)
    choose_accept(request)
    params = request.query_params
    kind = params.get("kind")
    if kind is not None and kind not in ("Hosted", "Cached", "ImplicitlyCreated"):
        raise BadRequestData("kind must be Hosted, Cached or ImplicitlyCreated")
    records: list[dict[str, Any]] = []
    for record in await broker.store.list_contexts(tenant_of(request)):
        records.append({"URL": record["url"], "localId": record["id"], "kind": record["kind"],
                        "createdAt": record["createdAt"]})
    records.append({"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": "Cached",
                    "createdAt": None})
    for url in broker.resolver.cached_urls():
        records.append({"URL": url, "localId": url, "kind": "Cached", "createdAt": None})
    if kind is not None:
        records = [r for r in records if r["kind"] == kind]
    if params.get("details") == "true":
        return json_response(records)
    return json_response([r["URL"] for r in records])


async def serve_context(request: Request) -> Response:
    """GET /jsonldContexts/{id}: the stored document itself."""
    broker = broker_of(request)
    choose_accept(request)
    ctx_id = request.path_params["ctx_id"]
    if ctx_id == CORE_ID:
        return json_response(core_context_document(), media_type="application/ld+json")
    record = await broker.store.get_context(tenant_of(request), ctx_id)
    if record is None:
        raise ResourceNotFound(f"no @context with id {ctx_id[:80]!r}")
    return json_response(record["document"], media_type="application/ld+json")


async def delete_context(request: Request) -> Response:
    """DELETE /jsonldContexts/{id} (``reload=true`` refreshes a cached remote context)."""
    broker = broker_of(request)
    ctx_id = request.path_params["ctx_id"]
    reload = request.query_params.get("reload", "false")
    if reload not in ("true", "false"):
        raise BadRequestData("reload must be true or false")
    if ctx_id == CORE_ID:
        raise BadRequestData("the core @context cannot be deleted")
    if ctx_id in broker.resolver.cached_urls():
        broker.resolver.forget(ctx_id)
        return no_content()
    if reload == "true":
        raise BadRequestData("reload=true applies to cached contexts only")
    if not await broker.store.delete_context(tenant_of(request), ctx_id):
        raise ResourceNotFound(f"no @context with id {ctx_id[:80]!r}")
    broker.resolver.forget(_self_url(request, ctx_id))
    return no_content()


ROUTES = [
    Route(f"{BASE}/jsonldContexts", add_context, methods=["POST"], name="addContext"),
    Route(f"{BASE}/jsonldContexts", list_contexts, methods=["GET"], name="listContexts"),
    Route(f"{BASE}/jsonldContexts/{{ctx_id:path}}", serve_context, methods=["GET"], name="serveContext"),
    Route(f"{BASE}/jsonldContexts/{{ctx_id:path}}", delete_context, methods=["DELETE"],
          name="deleteContext"),
]
