"""Distributed writes: entity changes forwarded per the matching registrations' mode (4.3.6.3).

:func:`forwarding` wraps an entity write route.  With no registration in the tenant it calls the
route directly (one dictionary lookup).  Otherwise the registrations that serve the operation and
cover the entity (its id, its types when the body names them, the attributes of the body) decide:

* ``redirect`` or ``exclusive``: the request goes to those sources only, not to the local store;
  their answer is the answer (the first failure if any failed).
* ``inclusive``: the local write happens, then the request is also sent to those sources; if one
  of them fails the answer is ``207 Multi-Status`` naming the failures, the local write stays.
* ``auxiliary`` registrations never receive writes.

A write that already passed through this broker (``Via``) and would be forwarded again is refused
with ``508 LoopDetected`` (clause 6.3.18).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityos.core.http import json_response
from cityos.core.problems import Problem
from cityos.data.ngsild.context import parse_link_header
from cityos.data.ngsild.csource.errors import LoopDetected
from cityos.data.ngsild.csource.forward import Forwarder, Reply, passed_through
from cityos.data.ngsild.csource.index import index_of
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.model import ENTITY_KEYS
from cityos.data.ngsild.negotiation import request_context, tenant_of
from cityos.data.ngsild.payload import parse_types
from cityos.data.ngsild.responses import Endpoint
from cityos.data.ngsild.terms import TermMap

BASE = "/ngsi-ld/v1"


# how a write is spread over the registrations: (request, operation, local route, registrations)
Distributor = Callable[[Request, str, Endpoint, list[Registration]], Awaitable[Response]]


def forwarding(operation: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (an entity write route) with distributed forwarding for ``operation``."""
    return forwarded_with(_distributed, operation, endpoint)


def forwarded_with(distribute: Distributor, operation: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, calling ``distribute`` instead when the tenant has registrations.

    With none (or with ``local=true``) the route runs directly: one dictionary lookup.
    """
    @functools.wraps(endpoint)
    async def route(request: Request) -> Response:
        regs = await index_of(request.app).for_tenant(tenant_of(request))
        if not regs or request.query_params.get("local") == "true":
            return await endpoint(request)
        return await distribute(request, operation, endpoint, regs)

    return route


def loop_free_forwarder(request: Request) -> Forwarder:
    """The forwarder for ``request``; ``508 LoopDetected`` when the write already passed through
    this broker (``Via``, clause 6.3.18), so forwarding it again could loop."""
    forwarder = Forwarder(request, index_of(request.app), tenant_of(request))
    if passed_through(request, forwarder.name):
        raise LoopDetected(f"the request already passed through {forwarder.name} (Via); "
                           "it is not forwarded again")
    return forwarder


async def _distributed(request: Request, operation: str, endpoint: Endpoint,
                       regs: list[Registration]) -> Response:
    body = await request.body()           # cached by Starlette: the local route reads it again
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return await endpoint(request)       # the local route answers the precise 400
    entity_id, types, attrs = await target_of(request, parsed)
    if entity_id is None:
        return await endpoint(request)
    matching = [r for r in regs if operation in r.allowed and r.mode != "auxiliary"
                and r.covers(entity_id, types, attrs)]
    if not matching:
        return await endpoint(request)
    forwarder = loop_free_forwarder(request)
    path = request.url.path[len(BASE):]
    params = list(request.query_params.multi_items())
    calls: list[Any] = [(reg, request.method, path, params, body or None) for reg in matching]
    split = await _exclusive_split(request, parsed, entity_id, types, attrs, matching)
    if split is not None:
        local_body, remote_body, exclusive = split
        local = await endpoint(with_body(request, orjson.dumps(local_body)))
        if local.status_code >= 300:
            return local
        replies = await forwarder.send_all([(reg, request.method, path, params,
                                             orjson.dumps(remote_body)) for reg in exclusive])
        return _combined(local, replies)
    only_remote = any(r.mode in ("redirect", "exclusive") for r in matching)
    if only_remote:
        replies = await forwarder.send_all(
            [c for c in calls if c[0].mode in ("redirect", "exclusive")])
        return _remote_answer(replies)
    local = await endpoint(request)
    if local.status_code >= 300:
        return local
    return _combined(local, await forwarder.send_all(calls))


async def _exclusive_split(request: Request, body: Any, entity_id: str, types: set[str] | None,
                           attrs: set[str] | None, matching: list[Registration]
                           ) -> tuple[dict[str, Any], dict[str, Any], list[Registration]] | None:
    """(local body, source body, sources) when exclusive registrations claim only some of the
    attributes of the body (clause 4.3.6.3): those go to the sources, the others stay here."""
    exclusive = [r for r in matching if r.mode == "exclusive"]
    if not exclusive or len(exclusive) < len(matching) or not isinstance(body, dict) \
            or not attrs or "attr" in request.path_params:
        return None
    claimed: set[str] = set()
    for reg in exclusive:
        attrs_of = reg.claimed(entity_id, types)
        if attrs_of is None:
            return None                    # the whole entity is the source's
        claimed |= attrs_of
    if not attrs - claimed:
        return None
    tm = await _term_map(request, body)
    local = {k: v for k, v in body.items() if k in ENTITY_KEYS or tm.expand(k) not in claimed}
    remote = {k: v for k, v in body.items() if k in ENTITY_KEYS or tm.expand(k) in claimed}
    return local, remote, exclusive


def _combined(local: Response, replies: list[Reply]) -> Response:
    """The local answer, or 207 naming the sources that failed."""
    failed = [r for r in replies if not r.ok]
    if not failed:
        return local
    return json_response({"success": [{"source": "local", "status": local.status_code},
                                      *({"registrationId": r.reg.id, "status": r.status}
                                        for r in replies if r.ok)],
                          "errors": [_error(r) for r in failed]}, 207,
                         {k: v for k, v in local.headers.items() if k.lower() == "location"})


def _remote_answer(replies: list[Reply]) -> Response:
    """The sources' answer as ours: the first failure, else the first success."""
    for reply in replies:
        if not reply.ok:
            if reply.status is not None and reply.body is not None:
                return json_response(reply.body, reply.status)
            return json_response(_error(reply)["error"], 504 if reply.status is None else 502)
    first = replies[0]
    headers = {}
    if first.headers is not None and "location" in first.headers:
        headers["Location"] = first.headers["location"]
    if first.body is None:
        return Response(status_code=first.status or 204, headers=headers)
    return json_response(first.body, first.status or 200, headers)


def _error(reply: Reply) -> dict[str, Any]:
    detail = reply.warning or f"answered {reply.status}"
    problem = reply.body if isinstance(reply.body, dict) and "type" in reply.body else {
        "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
        "title": "Context source failed", "status": reply.status or 504, "detail": detail}
    return {"registrationId": reply.reg.id, "error": problem}


async def target_of(request: Request, body: Any) -> tuple[str | None, set[str] | None,
                                                        set[str] | None]:
    """(entity id, expanded types or None, expanded attribute names or None) of a write of
    ``body`` (an entity or a fragment; the id comes from the path when it has one)."""
    entity_id = request.path_params.get("entity_id")
    if entity_id is None and isinstance(body, dict):
        entity_id = body.get("id")
    if not isinstance(entity_id, str):
        return None, None, None
    tm = await _term_map(request, body)
    types: set[str] | None = None
    attrs: set[str] | None = None
    try:
        if isinstance(body, dict):
            if "type" in body:
                types = set(parse_types(body["type"], tm))
            attrs = {tm.expand(k) for k in body if k not in ENTITY_KEYS} or None
        attr = request.path_params.get("attr")
        if attr:
            attrs = {tm.expand(attr)}
    except Problem:
        return None, None, None
    return entity_id, types, attrs


async def _term_map(request: Request, body: Any) -> TermMap:
    broker = request.app.state.broker
    if isinstance(body, dict) and "@context" in body:
        context = body["@context"]
    else:
        context = parse_link_header(request.headers.get("link")) if body is not None \
            else request_context(request)[0]
    try:
        tm: TermMap = await broker.resolver.term_map(context)
    except Problem:
        tm = await broker.resolver.term_map(None)
    return tm


def with_body(request: Request, body: bytes) -> Request:
    """A copy of ``request`` whose body is ``body`` (the local share of a split write)."""
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-length"] + \
        [(b"content-length", str(len(body)).encode())]
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)
