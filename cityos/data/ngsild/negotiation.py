"""Content negotiation and request framing exactly as ETSI GS CIM 009 clause 6.3 describes.

* A body is ``application/json`` (its ``@context`` comes from the ``Link`` header) or
  ``application/ld+json`` (its ``@context`` is in the body and a ``Link`` header is an error);
  anything else is 415.
* Responses are ``application/json`` (context in a ``Link`` header), ``application/ld+json``
  (context in the body) or, for entities, ``application/geo+json``; anything else is 406.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from cityos.core.problems import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from cityos.data.ngsild.context import CORE_CONTEXT_URL, parse_link_header

JSON = "application/json"
JSON_LD = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
_TENANT = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")


def tenant_of(request: Request) -> str:
    """The ``NGSILD-Tenant`` of the request ('' is the default tenant)."""
    tenant = request.headers.get("ngsild-tenant", "")
    if tenant and not _TENANT.match(tenant):
        raise BadRequestData(f"invalid NGSILD-Tenant {tenant[:70]!r}: use letters, digits, _ - .")
    return tenant


def choose_accept(request: Request, *, geo: bool = False) -> str:
    """The response media type for the ``Accept`` header; 406 when none fits."""
    header = request.headers.get("accept", "")
    if not header.strip():
        return JSON
    offered = [JSON, JSON_LD] + ([GEO_JSON] if geo else [])
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(header.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        media = media.lower()
        if media in ("*/*", "application/*"):
            candidate = JSON
        elif media in offered:
            candidate = media
        else:
            continue
        key = (quality, -index, candidate)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        raise NotAcceptable(f"none of the media types in Accept: {header[:120]!r} can be served; "
                            f"use one of {', '.join(offered)}")
    return best[2]


@dataclass
class Framed:
    """A request body with the ``@context`` that applies to it."""

    body: Any
    context: Any            # None means the core context alone
    context_url: str | None  # a URL that names the context, when one does
    media_type: str


async def read_body(request: Request, max_bytes: int, *, allow_merge_patch: bool = False,
                    context_is_payload: bool = False) -> Framed:
    """Parse and frame a JSON / JSON-LD body, enforcing media type and size limits.

    ``context_is_payload``: the body's ``@context`` is data (``POST /jsonldContexts``), not framing.
    """
    raw_type = request.headers.get("content-type", "")
    media_type = raw_type.split(";")[0].strip().lower()
    allowed = {JSON, JSON_LD} | ({MERGE_PATCH} if allow_merge_patch else set())
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {raw_type[:80]!r} is not supported; use {' or '.join(sorted(allowed))}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    data = await request.body()
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    if not data.strip():
        raise InvalidRequest("the request body is empty")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    link = request.headers.get("link")
    if context_is_payload:
        return Framed(body, None, None, media_type)
    if media_type == JSON_LD:
        if link and parse_link_header(link):
            raise BadRequestData("a JSON-LD body must not come with a Link @context header")
        context = _body_context(body, required=True)
        return Framed(body, context, context if isinstance(context, str) else None, media_type)
    if _has_context(body):
        raise BadRequestData("an application/json body must not contain @context; "
                             "send it in a Link header or use application/ld+json")
    url = parse_link_header(link)
    return Framed(body, url, url, media_type)


def _has_context(body: Any) -> bool:
    if isinstance(body, dict):
        return "@context" in body
    if isinstance(body, list):
        return any(isinstance(item, dict) and "@context" in item for item in body)
    return False


def _body_context(body: Any, *, required: bool) -> Any:
    if isinstance(body, dict):
        if "@context" not in body and required:
            raise BadRequestData("an application/ld+json body must contain @context")
        return body.get("@context")
    if isinstance(body, list):
        # Batch bodies: each entity carries its own @context; the first one frames the reply.
        for item in body:
            if isinstance(item, dict) and "@context" not in item and required:
                raise BadRequestData("every entity of an application/ld+json batch must "
                                     "contain @context")
        first = next((i for i in body if isinstance(i, dict)), None)
        return first.get("@context") if first else None
    return None


def request_context(request: Request) -> tuple[Any, str | None]:
    """The ``@context`` of a bodiless request (``GET``, ``DELETE``) from its ``Link`` header."""
    url = parse_link_header(request.headers.get("link"))
    return url, url


def response_context_url(context_url: str | None) -> str:
    """The context URL a response names: the caller's, else the core context."""
    return context_url or CORE_CONTEXT_URL
