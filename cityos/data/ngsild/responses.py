"""Building NGSI-LD responses: the ``@context`` in a ``Link`` header or in the body, pagination,
and the routes' error responses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.core.http import json_response
from cityos.core.problems import Problem
from cityos.data.ngsild.context import link_header
from cityos.data.ngsild.negotiation import GEO_JSON, JSON, JSON_LD


def with_context(body: Any, media_type: str, context_url: str, status: int = 200,
                 headers: dict[str, str] | None = None) -> Response:
    """``body`` framed for ``media_type``: JSON + Link header, or JSON-LD with ``@context``."""
    out_headers = dict(headers or {})
    if media_type == JSON_LD:
        if isinstance(body, dict):
            body = {**body, "@context": context_url}
        elif isinstance(body, list):
            body = [{**item, "@context": context_url} if isinstance(item, dict) else item
                    for item in body]
    elif media_type in (JSON, GEO_JSON):
        out_headers["Link"] = _join_links(out_headers.get("Link"), link_header(context_url))
    return json_response(body, status, out_headers, media_type)


def _join_links(existing: str | None, extra: str) -> str:
    return f"{existing}, {extra}" if existing else extra


def page_headers(request: Request, offset: int, limit: int, returned: int,
                 total: int | None) -> dict[str, str]:
    """``NGSILD-Results-Count`` and ``Link: rel=next/prev`` pagination headers (clause 5.5.9)."""
    headers: dict[str, str] = {}
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    links: list[str] = []
    params = dict(request.query_params)
    more = (total is not None and offset + limit < total) or (total is None and returned == limit)
    if limit and more:
        params["offset"] = str(offset + limit)
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="next"; type="application/json"')
    if limit and offset > 0:
        params["offset"] = str(max(0, offset - limit))
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="prev"; type="application/json"')
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def no_content(headers: dict[str, str] | None = None) -> Response:
    """204 with no body."""
    return Response(status_code=204, headers=headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def ngsild_route(path: str, endpoint: Endpoint, *, methods: list[str], name: str) -> Route:
    """A route of the NGSI-LD API whose errors are ProblemDetails sent as ``application/json``.

    ETSI GS CIM 009 clause 5.5.3: "Even though IETF RFC 7807 defines a specific MIME type for error
    payloads, NGSI-LD implementations shall use the standard JSON MIME type (application/json)
    when reporting errors, so that old clients or existing tools are not broken."  The app-wide
    handler answers ``application/problem+json`` (right for the other APIs), so the NGSI-LD routes
    render their own problems here; the body is the same.
    """
    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Problem as problem:
            return json_response(problem.body(), problem.status, problem.headers or None)

    return Route(path, answer, methods=methods, name=name)
