"""HTTP plumbing shared by the device APIs: tenant headers, bodies and FIWARE-style errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityos.assets.devices.model import IotError, check_tenant
from cityos.core.problems import Problem

log = logging.getLogger("cityos.devices")
Endpoint = Callable[[Request], Awaitable[Response]]


def fiware_tenant(request: Request) -> tuple[str, str]:
    """(tenant, service path) from ``fiware-service`` / ``fiware-servicepath``.

    The FIWARE service is the NGSI-LD tenant of the same name ('' = the default tenant).
    """
    return check_tenant(request.headers.get("fiware-service", "").strip(),
                        request.headers.get("fiware-servicepath", "").strip())


async def json_body(request: Request) -> Any:
    """The request body as JSON, or ``WRONG_SYNTAX``."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise IotError("UNSUPPORTED_CONTENT_TYPE", f"the body must be application/json, not {kind}",
                       415)
    raw = await request.body()
    limit = request.app.state.settings.max_body_bytes
    if len(raw) > limit:
        raise IotError("WRONG_SYNTAX", f"the body exceeds {limit} bytes", 413)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise IotError("WRONG_SYNTAX", f"the body is not valid JSON: {exc}") from None


def reply(body: Any = None, status: int = 200, media_type: str = "application/json") -> Response:
    """A JSON response (no body for 201/204 answers without one)."""
    if body is None:
        return Response(status_code=status)
    return Response(orjson.dumps(body), status_code=status, media_type=media_type)


def int_param(request: Request, name: str, default: int, high: int = 1000) -> int:
    """A non-negative integer query parameter, or ``BAD_REQUEST``."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise IotError("BAD_REQUEST", f"{name} must be an integer between 0 and {high}")
    return int(raw)


def fiware_errors(endpoint: Endpoint) -> Endpoint:
    """Answer :class:`IotError` and broker problems with the FIWARE ``{name, message}`` body."""
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except IotError as exc:
            return reply(exc.body(), exc.status)
        except Problem as exc:
            name = "SERVICE_UNAVAILABLE" if exc.status == 503 else (
                "BAD_REQUEST" if exc.status < 500 else "ENTITY_GENERIC_ERROR")
            headers = {"Retry-After": "1"} if exc.status == 503 else None
            response = reply({"name": name, "message": exc.detail}, exc.status)
            if headers:
                response.headers.update(headers)
            return response
    return guarded
