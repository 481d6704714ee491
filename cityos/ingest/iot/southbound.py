"""HTTP southbound: ``/iot/json`` (JSON measures) and ``/iot/d`` (UltraLight 2.0) (ED-DT-1).

``?k=APIKEY&i=DEVICE`` name the device.  The answer is 200 only after every measure is durable in
the store; with the database down the device gets 503 (``Retry-After``) and sends again.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.assets.devices import JSON, UL, IotError
from cityos.core.problems import Problem
from cityos.ingest.iot.agent import MAX_MESSAGE, IotAgent
from cityos.ingest.iot.ultralight import UltraLightError, parse_measures


def _error(name: str, message: str, status: int) -> Response:
    response = Response(orjson.dumps({"name": name, "message": message}), status_code=status,
                        media_type="application/json")
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def json_groups(payload: Any) -> list[dict[str, Any]]:
    """The measure groups of a JSON payload: one object, or an array of objects."""
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(i, dict) and i for i in items):
        raise IotError("WRONG_SYNTAX", "a JSON measure must be a non-empty object or an array of "
                       "such objects")
    return items


class _TooLarge(Exception):
    """The body is larger than :data:`MAX_MESSAGE`."""


async def _bounded_body(request: Request) -> bytes:
    """The request body, refused (before or while reading) beyond :data:`MAX_MESSAGE` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_MESSAGE:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MESSAGE:
            raise _TooLarge
    return bytes(body)


def _too_large() -> Response:
    return _error("WRONG_SYNTAX", f"a message may have at most {MAX_MESSAGE} bytes", 413)


async def _measure(request: Request, kind: str, text: bytes) -> Response:
    agent: IotAgent = request.app.state.iot
    apikey = request.query_params.get("k")
    device_id = request.query_params.get("i")
    if not apikey or not device_id:
        return _error("MANDATORY_PARAMS_NOT_FOUND_HTTP", "Some of the mandatory params for the "
                      "request were not found: k and i are needed", 400)
    if len(text) > MAX_MESSAGE:
        return _too_large()
    try:
        if kind == JSON:
            try:
                groups = json_groups(orjson.loads(text))
            except orjson.JSONDecodeError as exc:
                raise IotError("WRONG_SYNTAX", f"the body is not valid JSON: {exc}") from None
        else:
            try:
                groups = list(parse_measures(text.decode("utf-8")))
            except (UltraLightError, UnicodeDecodeError) as exc:
                raise IotError("WRONG_SYNTAX", str(exc)) from None
        device = await agent.resolve(apikey, device_id, protocol=kind, transport="HTTP",
                                     resource=request.url.path)
        await agent.ingest(device, groups)
    except IotError as exc:
        return _error(exc.name, exc.message, exc.status)
    except Problem as exc:
        name = "SERVICE_UNAVAILABLE" if exc.status == 503 else "WRONG_SYNTAX"
        return _error(name, exc.detail, exc.status)
    return Response(status_code=200)


async def json_measure(request: Request) -> Response:
    """POST /iot/json?k=&i=: JSON measures ``{"t": 21.5, "TimeInstant": "..."}``."""
    try:
        return await _measure(request, JSON, await _bounded_body(request))
    except _TooLarge:
        return _too_large()


async def ul_measure(request: Request) -> Response:
    """POST /iot/d?k=&i=: UltraLight 2.0 measures ``t|21.5|h|40#t|21.7``."""
    try:
        return await _measure(request, UL, await _bounded_body(request))
    except _TooLarge:
        return _too_large()


async def ul_measure_get(request: Request) -> Response:
    """GET /iot/d?k=&i=&d=: UltraLight measures in the query string (very small devices)."""
    return await _measure(request, UL, request.query_params.get("d", "").encode())


ROUTES = [
    Route("/iot/json", json_measure, methods=["POST"], name="iot_json_measure"),
    Route("/iot/d", ul_measure, methods=["POST"], name="iot_ul_measure"),
    Route("/iot/d", ul_measure_get, methods=["GET"], name="iot_ul_measure_get"),
]
