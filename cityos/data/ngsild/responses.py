"""Building NGSI-LD responses: the ``@context`` in a ``Link`` header or in the body, pagination."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.http import json_response
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
    more = total is not None and offset + limit < total or total is None and returned == limit
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
