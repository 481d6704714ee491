"""The CityOS-native device API: ``/assets/v1/devices`` (AS-DV-1), RFC 7807 errors.

Same device documents as the FIWARE API, plus each device's live state; the tenant is the
``NGSILD-Tenant`` header (or ``fiware-service``), and lists can be filtered by ``state``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.assets.devices import actions
from cityos.assets.devices.http import json_body, reply
from cityos.assets.devices.model import IotError, check_tenant, entity_id_of
from cityos.core.problems import (
    AlreadyExists,
    BadRequestData,
    PayloadTooLarge,
    Problem,
    ResourceNotFound,
    UnsupportedMediaType,
)

STATES = ("online", "offline", "unknown")
PROBLEM = "application/problem+json"


def _tenant(request: Request) -> str:
    raw = request.headers.get("ngsild-tenant") or request.headers.get("fiware-service", "")
    try:
        return check_tenant(raw.strip(), "/")[0]
    except IotError as exc:
        raise BadRequestData(exc.message) from None


def view(devices: actions.Devices, tenant: str, device: dict[str, Any]) -> dict[str, Any]:
    """A device as the native API shows it: its provisioning plus entity id and live state."""
    live: dict[str, Any] = devices.state.snapshot(tenant, device["device_id"]) \
        if devices.state else {"state": "unknown", "lastSeen": None}
    seen: float | None = live["lastSeen"]
    return {**device, "entity_id": entity_id_of(device), "state": live["state"],
            "last_seen": datetime.fromtimestamp(seen, UTC).isoformat().replace("+00:00", "Z")
            if seen else None}


def _as_problem(exc: IotError) -> Problem:
    if exc.status == 415:
        return UnsupportedMediaType(exc.message)
    if exc.status == 413:
        return PayloadTooLarge(exc.message)
    if exc.status == 404:
        return ResourceNotFound(exc.message)
    if exc.status == 409:
        return AlreadyExists(exc.message)
    return BadRequestData(exc.message)


async def list_devices(request: Request) -> Response:
    """GET /assets/v1/devices[?state=online|offline|unknown&type=T&limit=&offset=]."""
    devices: actions.Devices = request.app.state.devices
    tenant = _tenant(request)
    wanted = request.query_params.get("state")
    if wanted is not None and wanted not in STATES:
        raise BadRequestData(f"state must be one of {', '.join(STATES)}")
    kind = request.query_params.get("type")
    rows = [view(devices, tenant, d) for d in devices.registry.tenant_devices(tenant)]
    rows = [r for r in rows if (wanted is None or r["state"] == wanted)
            and (kind is None or r["entity_type"] == kind)]
    try:
        limit = int(request.query_params.get("limit", "100"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise BadRequestData("limit and offset must be integers") from None
    if not 0 < limit <= 1000 or offset < 0:
        raise BadRequestData("limit must be 1..1000 and offset >= 0")
    response = reply(rows[offset:offset + limit])
    response.headers["X-Total-Count"] = str(len(rows))
    return response


async def create_device(request: Request) -> Response:
    """POST /assets/v1/devices: one device in the FIWARE device shape; 201 with its view."""
    devices: actions.Devices = request.app.state.devices
    tenant = _tenant(request)
    try:
        body = await json_body(request)
        path = body.pop("service_path", "/") if isinstance(body, dict) else "/"
        await actions.add_devices(devices, tenant, str(path), [body])
        device = actions.find_device(devices, tenant, body["device_id"])
    except IotError as exc:
        raise _as_problem(exc) from None
    response = reply(view(devices, tenant, device), 201)
    response.headers["Location"] = f"/assets/v1/devices/{device['device_id']}"
    return response


async def get_device(request: Request) -> Response:
    """GET /assets/v1/devices/{device_id}."""
    devices: actions.Devices = request.app.state.devices
    tenant = _tenant(request)
    try:
        device = actions.find_device(devices, tenant, request.path_params["device_id"])
    except IotError as exc:
        raise _as_problem(exc) from None
    return reply(view(devices, tenant, device))


async def delete_device(request: Request) -> Response:
    """DELETE /assets/v1/devices/{device_id}."""
    devices: actions.Devices = request.app.state.devices
    try:
        await actions.remove_device(devices, _tenant(request), request.path_params["device_id"])
    except IotError as exc:
        raise _as_problem(exc) from None
    return reply(status=204)


ROUTES = [
    Route("/assets/v1/devices", list_devices, methods=["GET"], name="assets_list_devices"),
    Route("/assets/v1/devices", create_device, methods=["POST"], name="assets_create_device"),
    Route("/assets/v1/devices/{device_id}", get_device, methods=["GET"], name="assets_get_device"),
    Route("/assets/v1/devices/{device_id}", delete_device, methods=["DELETE"],
          name="assets_delete_device"),
]
