"""The ``/jsonldContexts`` API (clause 5.13): host, list, serve and delete ``@context`` documents.

Hosted contexts are stored per tenant under their path ``/ngsi-ld/v1/jsonldContexts/{id}`` (the
``Location`` of the POST), so the resolver finds them whatever host a caller used to reach the
broker, without any network round trip.  Cached contexts are the remote ones the broker fetched;
their ``localId`` is their URL.  Deleting a cached one drops it, and with ``reload=true`` fetches it
again at once (503 ``LdContextNotAvailable`` when that fails).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.http import json_response
from cityos.core.problems import BadRequestData, ResourceNotFound
from cityos.data.ngsild.context import (
    CORE_CONTEXT_URL,
    HOSTED_PREFIX,
    core_context_document,
    hosted_path,
    is_core_url,
)
from cityos.data.ngsild.negotiation import choose_accept, read_body, tenant_of
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.queryparams import flag
from cityos.data.ngsild.responses import ngsild_route, no_content
from cityos.data.ngsild.routes_entities import BASE, broker_of

CORE_ID = "core"
KINDS = ("Hosted", "Cached", "ImplicitlyCreated")


def _absolute(request: Request, url: str) -> str:
    """A stored hosted path as the absolute URL this caller reaches it by."""
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url


def _bool_param(request: Request, name: str) -> bool:
    return flag(request.query_params, name)


async def add_context(request: Request) -> Response:
    """POST /jsonldContexts: host a context; 201 with its path in ``Location``, no body."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes, context_is_payload=True)
    body = framed.body
    if not isinstance(body, dict) or "@context" not in body:
        raise BadRequestData('the body must be a JSON object with a "@context" member')
    if not isinstance(body["@context"], (dict, list, str)):
        raise BadRequestData("@context must be an object, an array or a URL")
    await broker.resolver.term_map(body["@context"])  # refuse contexts that cannot be used
    ctx_id = uuid.uuid4().hex
    path = HOSTED_PREFIX + ctx_id
    await broker.store.put_context(tenant_of(request), ctx_id, path, "Hosted",
                                   {"@context": body["@context"]}, utc_now())
    return Response(status_code=201, headers={"Location": path})


async def _records(request: Request) -> list[dict[str, Any]]:
    """Every context the caller's tenant can see: hosted, the core one, the cached ones."""
    broker = broker_of(request)
    records: list[dict[str, Any]] = []
    for record in await broker.store.list_contexts(tenant_of(request)):
        records.append({"URL": _absolute(request, record["url"]), "localId": record["id"],
                        "kind": record["kind"], "createdAt": record["createdAt"]})
    records.append({"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": "Cached",
                    "createdAt": broker.resolver.started_at})
    for url in broker.resolver.cached_urls():
        cached = broker.resolver.cached_document(url)
        if cached is not None:
            records.append({"URL": url, "localId": url, "kind": "Cached", "createdAt": cached[1]})
    return records


async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts (``details``, ``kind``)."""
    choose_accept(request)
    kind = request.query_params.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequestData("kind must be Hosted, Cached or ImplicitlyCreated")
    details = _bool_param(request, "details")
    records = await _records(request)
    if kind is not None:
        records = [r for r in records if r["kind"] == kind]
    if details:
        return json_response(records)
    return json_response([r["URL"] for r in records])


async def _find(request: Request, ctx_id: str) -> tuple[dict[str, Any], Any]:
    """(metadata, document) of a context by local id, hosted path or URL; 404 when unknown."""
    broker = broker_of(request)
    if ctx_id == CORE_ID or is_core_url(ctx_id):
        meta = {"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": "Cached",
                "createdAt": broker.resolver.started_at}
        return meta, core_context_document()
    path = hosted_path(ctx_id)
    local_id = path[len(HOSTED_PREFIX):] if path is not None else ctx_id
    record = await broker.store.get_context(tenant_of(request), local_id)
    if record is not None:
        meta = {"URL": _absolute(request, record["url"]), "localId": record["id"],
                "kind": record["kind"], "createdAt": record["createdAt"]}
        return meta, record["document"]
    cached = broker.resolver.cached_document(ctx_id)
    if cached is not None:
        meta = {"URL": ctx_id, "localId": ctx_id, "kind": "Cached", "createdAt": cached[1]}
        return meta, cached[0]
    raise ResourceNotFound(f"no @context with id {ctx_id[:80]!r}")


async def serve_context(request: Request) -> Response:
    """GET /jsonldContexts/{id}: the document itself, or its metadata with ``details=true``."""
    media_type = choose_accept(request)
    details = _bool_param(request, "details")
    meta, document = await _find(request, request.path_params["ctx_id"])
    if details:
        return json_response(meta)
    # served as plain JSON unless JSON-LD is asked for (the ETSI test suite checks this)
    return json_response(document, media_type=media_type)


async def delete_context(request: Request) -> Response:
    """DELETE /jsonldContexts/{id} (``reload=true`` fetches a cached remote context again)."""
    broker = broker_of(request)
    ctx_id = request.path_params["ctx_id"]
    reload = _bool_param(request, "reload")
    if ctx_id == CORE_ID or is_core_url(ctx_id):
        raise BadRequestData("the core @context cannot be deleted")
    if broker.resolver.cached_document(ctx_id) is not None:
        if reload:
            await broker.resolver.reload(ctx_id)
        else:
            broker.resolver.forget(ctx_id)
        return no_content()
    if reload:
        raise BadRequestData("reload=true applies to cached contexts only")
    path = hosted_path(ctx_id)
    local_id = path[len(HOSTED_PREFIX):] if path is not None else ctx_id
    record = await broker.store.get_context(tenant_of(request), local_id)
    if record is None or not await broker.store.delete_context(tenant_of(request), local_id):
        raise ResourceNotFound(f"no @context with id {ctx_id[:80]!r}")
    broker.resolver.forget(record["url"])
    broker.resolver.forget(_absolute(request, record["url"]))
    return no_content()


ROUTES = [
    ngsild_route(f"{BASE}/jsonldContexts", add_context, methods=["POST"], name="addContext"),
    ngsild_route(f"{BASE}/jsonldContexts", list_contexts, methods=["GET"], name="listContexts"),
    ngsild_route(f"{BASE}/jsonldContexts/{{ctx_id:path}}", serve_context,
                 methods=["GET"], name="serveContext"),
    ngsild_route(f"{BASE}/jsonldContexts/{{ctx_id:path}}", delete_context,
                 methods=["DELETE"], name="deleteContext"),
]
