"""Request plumbing of the v2 face: bodies, options and the broker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsild import Broker
from cityos.data.ngsiv2.errors import V2Error, bad_request, parse_error

JSON = "application/json"
TEXT = "text/plain"


def broker_of(request: Request) -> Broker:
    """The broker the app was built with (the one data set both faces share)."""
    broker: Broker = request.app.state.broker
    return broker


async def read_raw(request: Request, broker: Broker, allowed: Iterable[str] = (JSON,)) -> tuple[bytes, str]:
    """The body bytes and media type of a write, with Orion's 411 / 413 / 415 checks."""
    limit = broker.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise V2Error(413, "RequestEntityTooLarge",
                      f"payload size: {declared}, max size supported: {limit}")
    body = await request.body()
    if not body:
        raise V2Error(411, "ContentLengthRequired", "Zero/No Content-Length in PUT/POST/PATCH "
                                                    "request")
    if len(body) > limit:
        raise V2Error(413, "RequestEntityTooLarge",
                      f"payload size: {len(body)}, max size supported: {limit}")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in allowed:
        raise V2Error(415, "UnsupportedMediaType", f"not supported content type: {media or 'none'}")
    return body, media


def parse_json(body: bytes) -> Any:
    """JSON, or Orion's 400 ParseError."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise parse_error("Errors found in incoming JSON buffer") from None


async def read_json(request: Request, broker: Broker) -> Any:
    """A JSON body (application/json only)."""
    body, _ = await read_raw(request, broker)
    return parse_json(body)


def options_of(request: Request, allowed: Iterable[str]) -> set[str]:
    """The ``options`` parameter, each one checked against ``allowed``."""
    raw = request.query_params.get("options")
    if raw is None:
        return set()
    options = {o.strip() for o in raw.split(",") if o.strip()}
    allowed_set = set(allowed)
    for option in options:
        if option not in allowed_set:
            raise bad_request(f"Invalid value for URI param /options/: {option[:40]}")
    return options


def list_param(request: Request, name: str) -> list[str] | None:
    """A comma-separated parameter (``attrs``, ``metadata``) or ``None`` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def json_ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def no_content(headers: dict[str, str] | None = None) -> Response:
    """204."""
    return Response(status_code=204, headers=headers)
