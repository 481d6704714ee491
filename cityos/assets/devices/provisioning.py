"""The FIWARE IoT Agent provisioning API: ``/iot/services`` and ``/iot/devices`` (AS-DV-1, ED-IF-1).

Requests and answers follow telefonicaid/iotagent-node-lib's API: ``POST`` answers 201 with no
body, ``PUT`` and ``DELETE`` 204, lists are ``{"count": n, "services"|"devices": [...]}``, errors
``{"name": "DEVICE_NOT_FOUND", "message": ...}``.  ``fiware-service`` is the NGSI-LD tenant.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.assets.devices import actions
from cityos.assets.devices.http import fiware_errors, fiware_tenant, int_param, json_body, reply
from cityos.assets.devices.model import IotError


def _items(body: Any, key: str) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise IotError("WRONG_SYNTAX", f'the body must be {{"{key}": [ ... ]}} with at least one')
    return list(body[key])


def _page(request: Request, items: list[dict[str, Any]], key: str) -> Response:
    offset = int_param(request, "offset", 0, 10**9)
    limit = int_param(request, "limit", 20)
    return reply({"count": len(items), key: items[offset:offset + limit]})


@fiware_errors
async def create_services(request: Request) -> Response:
    """POST /iot/services: add service groups."""
    tenant, path = fiware_tenant(request)
    groups = _items(await json_body(request), "services")
    await actions.add_groups(request.app.state.devices, tenant, path, groups)
    return reply(status=201)


def _group_query(request: Request) -> tuple[str | None, str | None]:
    return request.query_params.get("resource"), request.query_params.get("apikey")


@fiware_errors
async def list_services(request: Request) -> Response:
    """GET /iot/services: the groups of the service (and service path)."""
    tenant, path = fiware_tenant(request)
    resource, apikey = _group_query(request)
    wanted = request.headers.get("fiware-servicepath") and path
    groups = [g for g in request.app.state.devices.registry.tenant_groups(tenant, wanted or None)
              if (resource is None or g["resource"] == resource)
              and (apikey is None or g["apikey"] == apikey)]
    return _page(request, groups, "services")


@fiware_errors
async def update_service(request: Request) -> Response:
    """PUT /iot/services?resource=&apikey=: change a group."""
    tenant, path = fiware_tenant(request)
    resource, apikey = _group_query(request)
    body = await json_body(request)
    await actions.update_group(request.app.state.devices, tenant, path, resource, apikey, body)
    return reply(status=204)


@fiware_errors
async def delete_service(request: Request) -> Response:
    """DELETE /iot/services?resource=&apikey=[&device=true]: remove a group (and its devices)."""
    tenant, path = fiware_tenant(request)
    resource, apikey = _group_query(request)
    with_devices = request.query_params.get("device", "false").lower() == "true"
    await actions.delete_group(request.app.state.devices, tenant, path, resource, apikey,
                               with_devices)
    return reply(status=204)


@fiware_errors
async def create_devices(request: Request) -> Response:
    """POST /iot/devices: provision devices and create their entities."""
    tenant, path = fiware_tenant(request)
    devices = _items(await json_body(request), "devices")
    await actions.add_devices(request.app.state.devices, tenant, path, devices)
    return reply(status=201)


@fiware_errors
async def list_devices(request: Request) -> Response:
    """GET /iot/devices: the devices of the service (and service path)."""
    tenant, path = fiware_tenant(request)
    wanted = request.headers.get("fiware-servicepath") and path
    devices = request.app.state.devices.registry.tenant_devices(tenant, wanted or None)
    return _page(request, devices, "devices")


@fiware_errors
async def get_device(request: Request) -> Response:
    """GET /iot/devices/{device_id}."""
    tenant, _path = fiware_tenant(request)
    return reply(actions.find_device(request.app.state.devices, tenant,
                                     request.path_params["device_id"]))


@fiware_errors
async def update_device(request: Request) -> Response:
    """PUT /iot/devices/{device_id}: change a device (its entity gets the new static data)."""
    tenant, _path = fiware_tenant(request)
    body = await json_body(request)
    await actions.update_device(request.app.state.devices, tenant,
                                request.path_params["device_id"], body)
    return reply(status=204)


@fiware_errors
async def delete_device(request: Request) -> Response:
    """DELETE /iot/devices/{device_id} (the entity and its history stay)."""
    tenant, _path = fiware_tenant(request)
    await actions.remove_device(request.app.state.devices, tenant,
                                request.path_params["device_id"])
    return reply(status=204)


ROUTES = [
    Route("/iot/services", create_services, methods=["POST"], name="iot_create_services"),
    Route("/iot/services", list_services, methods=["GET"], name="iot_list_services"),
    Route("/iot/services", update_service, methods=["PUT"], name="iot_update_service"),
    Route("/iot/services", delete_service, methods=["DELETE"], name="iot_delete_service"),
    Route("/iot/devices", create_devices, methods=["POST"], name="iot_create_devices"),
    Route("/iot/devices", list_devices, methods=["GET"], name="iot_list_devices"),
    Route("/iot/devices/{device_id}", get_device, methods=["GET"], name="iot_get_device"),
    Route("/iot/devices/{device_id}", update_device, methods=["PUT"], name="iot_update_device"),
    Route("/iot/devices/{device_id}", delete_device, methods=["DELETE"], name="iot_delete_device"),
]
