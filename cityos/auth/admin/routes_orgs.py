"""``/admin/organizations``: the municipalities, service providers and data providers (AU-UM-2).

Organizations are few and hold the home tenant everything else is scoped by, so only platform
operators create or delete them; an operator lists the organizations of its home tenant.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.auth.admin.common import (
    TRUSTED,
    Caller,
    admin_caller,
    audit,
    json_body,
    require_platform,
    runtime_of,
    tenant_name,
    text,
)
from cityos.auth.directory import Organization
from cityos.auth.directory.models import ORGANIZATION_KINDS
from cityos.auth.runtime import AuthRuntime
from cityos.core.http import json_response
from cityos.core.problems import AlreadyExists, BadRequestData, Conflict, Forbidden, ResourceNotFound

BASE = "/admin/organizations"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


async def create_organization(runtime: AuthRuntime, body: dict[str, Any],
                              caller: Caller = TRUSTED) -> Organization:
    """Validate ``body`` (id, name, kind, homeTenant) and store the organization."""
    require_platform(caller, "create organizations")
    org_id = body.get("id")
    if not isinstance(org_id, str) or not SLUG.match(org_id):
        raise BadRequestData("id must be a slug: lower-case letters, digits and '-', at most 63")
    name = text(body, "name", required=True)
    kind = body.get("kind", "other")
    if kind not in ORGANIZATION_KINDS:
        raise BadRequestData(f"kind must be one of {list(ORGANIZATION_KINDS)}")
    home = tenant_name(body.get("homeTenant", ""), "homeTenant")
    directory = runtime.directory
    if await directory.get_organization(org_id) is not None:
        raise AlreadyExists(f"organization {org_id!r} exists")
    if any(o.name == name for o in await directory.list_organizations()):
        raise AlreadyExists(f"an organization is already named {name!r}")
    org = await directory.create_organization(org_id, name, kind, home)
    await audit(runtime, caller, "organization.create", org_id)
    return org


async def visible_organizations(runtime: AuthRuntime, caller: Caller) -> list[Organization]:
    orgs = await runtime.directory.list_organizations()
    return orgs if caller.platform else [o for o in orgs if o.home_tenant == caller.home_tenant]


async def delete_organization(runtime: AuthRuntime, org_id: str, caller: Caller = TRUSTED) -> None:
    """Delete an organization nothing belongs to any more (409 otherwise: no dangling members)."""
    require_platform(caller, "delete organizations")
    directory = runtime.directory
    if await directory.get_organization(org_id) is None:
        raise ResourceNotFound(f"no organization {org_id!r}")
    if await directory.list_accounts(org_id) or await directory.list_clients(org_id):
        raise Conflict(f"organization {org_id!r} still has accounts or clients")
    await directory.delete_organization(org_id)
    await audit(runtime, caller, "organization.delete", org_id)


async def post_org(request: Request) -> Response:
    """POST /admin/organizations: 201 with the organization and its ``Location``."""
    org = await create_organization(runtime_of(request), await json_body(request), admin_caller())
    return json_response(org.public(), 201, headers={"Location": f"{BASE}/{org.id}"})


async def list_orgs(request: Request) -> Response:
    """GET /admin/organizations."""
    orgs = await visible_organizations(runtime_of(request), admin_caller())
    return json_response([o.public() for o in orgs])


async def get_org(request: Request) -> Response:
    """GET /admin/organizations/{id}."""
    caller = admin_caller()
    org = await runtime_of(request).directory.get_organization(request.path_params["org_id"])
    if org is None:
        raise ResourceNotFound(f"no organization {request.path_params['org_id']!r}")
    if not caller.platform and org.home_tenant != caller.home_tenant:
        raise Forbidden("that organization is outside your home tenant")
    return json_response(org.public())


async def delete_org(request: Request) -> Response:
    """DELETE /admin/organizations/{id}: 204."""
    await delete_organization(runtime_of(request), request.path_params["org_id"], admin_caller())
    return Response(status_code=204)


ROUTES = [
    Route(BASE, post_org, methods=["POST"]),
    Route(BASE, list_orgs, methods=["GET"]),
    Route(BASE + "/{org_id}", get_org, methods=["GET"]),
    Route(BASE + "/{org_id}", delete_org, methods=["DELETE"]),
]
