"""``/assets/v1/systems``: the JSON API of external systems (AS-SY-1, ED-IF-1).

The tenant is the ``NGSILD-Tenant`` header, as on the NGSI-LD API: a system writes its entities
into the tenant it was registered in.  Errors are RFC 7807 problem details.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.assets.systems import actions
from cityos.core.http import json_response
from cityos.core.problems import BadRequestData, PayloadTooLarge
from cityos.data.ngsild import Broker

BASE = "/assets/v1/systems"
MAX_BODY = 1024 * 1024


def _broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


def _tenant(request: Request) -> str:
    tenant = request.headers.get("ngsild-tenant", "")
    if tenant and not all(c.isalnum() or c in "_-." for c in tenant):
        raise BadRequestData(f"invalid NGSILD-Tenant {tenant[:70]!r}: use letters, digits, _ - .")
    return tenant


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestData(f"the body is not valid JSON: {exc}") from None


async def create_system(request: Request) -> Response:
    """POST /assets/v1/systems: register; 201 with the system and its ``Location``."""
    system = await actions.register_system(_broker(request), _tenant(request),
                                           await _json(request))
    return json_response(system, 201, headers={"Location": f"{BASE}/{system['id']}"})


async def list_systems(request: Request) -> Response:
    """GET /assets/v1/systems: every system of the tenant with its last run."""
    return json_response(await actions.list_systems(_broker(request), _tenant(request)))


async def show_system(request: Request) -> Response:
    """GET /assets/v1/systems/{systemId}."""
    document = await actions.get_system(_broker(request), _tenant(request),
                                        request.path_params["system_id"])
    return json_response({k: v for k, v in document.items() if not k.startswith("_")})


async def delete_system(request: Request) -> Response:
    """DELETE /assets/v1/systems/{systemId}: 204; the entities it wrote stay."""
    await actions.delete_system(_broker(request), _tenant(request),
                                request.path_params["system_id"])
    return Response(status_code=204)


async def run_system(request: Request) -> Response:
    """POST /assets/v1/systems/{systemId}/run: pull now; 200 with the outcome."""
    system = await actions.run_system(_broker(request), _tenant(request),
                                      request.path_params["system_id"])
    return json_response(system)


ROUTES = [
    Route(BASE, list_systems, methods=["GET"], name="listSystems"),
    Route(BASE, create_system, methods=["POST"], name="createSystem"),
    Route(BASE + "/{system_id}", show_system, methods=["GET"], name="retrieveSystem"),
    Route(BASE + "/{system_id}", delete_system, methods=["DELETE"], name="deleteSystem"),
    Route(BASE + "/{system_id}/run", run_system, methods=["POST"], name="runSystem"),
]
