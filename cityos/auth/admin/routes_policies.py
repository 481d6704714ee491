"""``/admin/policies`` and ``/admin/roles``: who may take which action where (AU-AA-2, AU-UM-2).

Policies are allow-only (ADR 0012 §8).  An operator manages the policies of subjects in its home
tenant (an account, client or organization there) and role policies naming its home tenant
explicitly: ``@home`` on a role would reach that role's holders in every tenant.  Nobody may write
a policy allowing more than its own policies allow it.  Roles are global names, so only platform
operators create or delete them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.auth.admin.common import (
    TRUSTED,
    Caller,
    admin_caller,
    audit,
    covers,
    home_tenant_of,
    iso,
    json_body,
    org_in_scope,
    period,
    require_platform,
    runtime_of,
    strings,
    tenant_name,
    text,
)
from cityos.auth.directory import Policy
from cityos.auth.directory.models import SUBJECT_KINDS
from cityos.auth.runtime import AuthRuntime
from cityos.core.access import ACTIONS
from cityos.core.http import json_response
from cityos.core.problems import AlreadyExists, BadRequestData, Conflict, Forbidden, ResourceNotFound

BASE = "/admin/policies"
ROLES = "/admin/roles"
POLICY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def show(policy: Policy) -> dict[str, Any]:
    """The policy as the API shows it: times as ISO 8601 UTC."""
    doc = policy.public()
    doc["validFrom"], doc["validUntil"] = iso(policy.valid_from), iso(policy.valid_until)
    return doc


def _names(body: dict[str, Any], field: str) -> tuple[str, ...] | None:
    if body.get(field) is None:
        return None
    values = strings(body, field)
    return None if "*" in values else tuple(values)     # ["*"] = every type / attribute


async def _subject(runtime: AuthRuntime, body: dict[str, Any]) -> tuple[str, str]:
    subject = body.get("subject")
    if not isinstance(subject, dict) or len(subject) != 1:
        raise BadRequestData(f"subject must be an object with one of {list(SUBJECT_KINDS)}")
    ((kind, value),) = subject.items()
    if kind not in SUBJECT_KINDS or not isinstance(value, str) or not value:
        raise BadRequestData(f"subject must be an object with one of {list(SUBJECT_KINDS)}")
    directory = runtime.directory
    found: object
    if kind == "role":
        found = value in {r["name"] for r in await directory.list_roles()}
    elif kind == "account":
        account = await directory.get_account(value)
        found = account is not None and account.status != "deleted"
    elif kind == "client":
        found = await directory.get_client(value)
    else:
        found = await directory.get_organization(value)
    if not found:
        raise BadRequestData(f"subject: no {kind} {value!r}")
    return kind, value


async def parse_policy(runtime: AuthRuntime, body: dict[str, Any],
                       policy_id: str | None = None) -> Policy:
    """A :class:`Policy` from its JSON form (400 on anything malformed)."""
    policy_id = policy_id or body.get("id") or "p-" + uuid.uuid4().hex[:16]
    if not isinstance(policy_id, str) or not POLICY_ID.match(policy_id):
        raise BadRequestData("id must be 1-128 letters, digits, '_', '.', ':' or '-'")
    kind, subject = await _subject(runtime, body)
    actions = strings(body, "actions")
    bad = [a for a in actions if a != "*" and a not in ACTIONS]
    if not actions or bad:
        raise BadRequestData(f"actions must be a non-empty list of {list(ACTIONS)} or '*'"
                             + (f"; unknown: {bad}" if bad else ""))
    tenants = body.get("tenants", ["@home"])
    if not isinstance(tenants, list) or not tenants:
        raise BadRequestData("tenants must list at least one tenant name, '@home' or '*'")
    for tenant in tenants:
        if tenant not in ("@home", "*"):
            tenant_name(tenant, "tenants")      # "" is the default tenant
    tenants = list(dict.fromkeys(tenants))
    start, end = period(body)
    return Policy(id=policy_id, subject_kind=kind, subject=subject, actions=tuple(actions),
                  tenants=tuple(tenants), types=_names(body, "types"),
                  attributes=_names(body, "attributes"), valid_from=start, valid_until=end,
                  description=text(body, "description", max_len=1024))


async def manageable(runtime: AuthRuntime, caller: Caller, policy: Policy) -> bool:
    """Whether ``caller`` may create, change or delete ``policy`` (see the module docstring)."""
    if caller.platform:
        return True
    directory = runtime.directory
    if policy.subject_kind == "role":
        if "@home" in policy.tenants:
            return False
        home = caller.home_tenant
    elif policy.subject_kind == "organization":
        org = await directory.get_organization(policy.subject)
        if org is None or org.home_tenant != caller.home_tenant:
            return False
        home = org.home_tenant
    else:
        owner = await (directory.get_account(policy.subject) if policy.subject_kind == "account"
                       else directory.get_client(policy.subject))
        org_id = None if owner is None else owner.organization_id
        if not await org_in_scope(runtime, caller, org_id):
            return False
        home = await home_tenant_of(runtime, org_id)
    await runtime.evaluator.refresh(force=True)
    return covers(runtime, caller, policy, home)


async def put_policy(runtime: AuthRuntime, policy: Policy, caller: Caller = TRUSTED,
                     *, create_only: bool = False) -> tuple[Policy, bool]:
    """Store ``policy`` (create or replace); (stored, created)."""
    old = await runtime.directory.get_policy(policy.id)
    if old is not None and create_only:
        raise AlreadyExists(f"policy {policy.id!r} exists")
    if old is not None and not await manageable(runtime, caller, old):
        raise Forbidden(f"policy {policy.id!r} is outside what you may manage")
    if not await manageable(runtime, caller, policy):
        raise Forbidden("that policy allows more than you hold or reaches beyond your home tenant")
    if old is not None and old.builtin:
        policy = Policy(**{**policy.__dict__, "builtin": True, "created_at": old.created_at})
    stored = await runtime.directory.put_policy(policy)
    await audit(runtime, caller, "policy.create" if old is None else "policy.change", policy.id)
    return stored, old is None


async def delete_policy(runtime: AuthRuntime, policy_id: str, caller: Caller = TRUSTED) -> None:
    old = await runtime.directory.get_policy(policy_id)
    if old is None:
        raise ResourceNotFound(f"no policy {policy_id!r}")
    if old.builtin:
        raise Conflict(f"policy {policy_id!r} is built in: change it instead of deleting it")
    if not await manageable(runtime, caller, old):
        raise Forbidden(f"policy {policy_id!r} is outside what you may manage")
    await runtime.directory.delete_policy(policy_id)
    await audit(runtime, caller, "policy.delete", policy_id)


async def visible_policies(runtime: AuthRuntime, caller: Caller) -> list[Policy]:
    policies = await runtime.directory.list_policies()
    return [p for p in policies if p.builtin or await manageable(runtime, caller, p)]


# -- HTTP ---------------------------------------------------------------------------------------
async def list_policies(request: Request) -> Response:
    """GET /admin/policies."""
    policies = await visible_policies(runtime_of(request), admin_caller())
    return json_response([show(p) for p in policies])


async def post_policy(request: Request) -> Response:
    """POST /admin/policies: 201 with the policy (its id generated when not given)."""
    runtime = runtime_of(request)
    policy = await parse_policy(runtime, await json_body(request))
    stored, _ = await put_policy(runtime, policy, admin_caller(), create_only=True)
    return json_response(show(stored), 201, headers={"Location": f"{BASE}/{stored.id}"})


async def get_policy(request: Request) -> Response:
    """GET /admin/policies/{id}."""
    runtime, caller = runtime_of(request), admin_caller()
    policy = await runtime.directory.get_policy(request.path_params["policy_id"])
    if policy is None:
        raise ResourceNotFound(f"no policy {request.path_params['policy_id']!r}")
    if not policy.builtin and not await manageable(runtime, caller, policy):
        raise Forbidden("that policy is outside what you may manage")
    return json_response(show(policy))


async def put_policy_route(request: Request) -> Response:
    """PUT /admin/policies/{id}: create (201) or replace (200)."""
    runtime = runtime_of(request)
    body = await json_body(request)
    policy_id = request.path_params["policy_id"]
    if body.get("id") not in (None, policy_id):
        raise BadRequestData("the body's id differs from the path's")
    stored, created = await put_policy(runtime, await parse_policy(runtime, body, policy_id),
                                       admin_caller())
    return json_response(show(stored), 201 if created else 200)


async def delete_policy_route(request: Request) -> Response:
    """DELETE /admin/policies/{id}: 204 (built-in policies: 409)."""
    await delete_policy(runtime_of(request), request.path_params["policy_id"], admin_caller())
    return Response(status_code=204)


async def list_roles(request: Request) -> Response:
    """GET /admin/roles."""
    admin_caller()
    return json_response(await runtime_of(request).directory.list_roles())


async def post_role(request: Request) -> Response:
    """POST /admin/roles {name, description}: 201."""
    runtime, caller = runtime_of(request), admin_caller()
    require_platform(caller, "create roles")
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not ROLE_NAME.match(name):
        raise BadRequestData("name must be lower-case letters, digits and '-', at most 63")
    description = text(body, "description", max_len=1024)
    try:
        await runtime.directory.create_role(name, description)
    except ValueError as exc:
        raise AlreadyExists(str(exc)) from None
    await audit(runtime, caller, "role.create", name)
    return json_response({"name": name, "description": description, "builtin": False}, 201,
                         headers={"Location": f"{ROLES}/{name}"})


async def delete_role(request: Request) -> Response:
    """DELETE /admin/roles/{name}: 204; built-in roles 409; the role's policies go with it."""
    runtime, caller = runtime_of(request), admin_caller()
    require_platform(caller, "delete roles")
    name = request.path_params["name"]
    roles = {r["name"]: r for r in await runtime.directory.list_roles()}
    if name not in roles:
        raise ResourceNotFound(f"no role {name!r}")
    if roles[name]["builtin"]:
        raise Conflict(f"role {name!r} is built in and cannot be deleted")
    await runtime.directory.delete_role(name)
    await audit(runtime, caller, "role.delete", name)
    return Response(status_code=204)


ROUTES = [
    Route(BASE, list_policies, methods=["GET"]),
    Route(BASE, post_policy, methods=["POST"]),
    Route(BASE + "/{policy_id}", get_policy, methods=["GET"]),
    Route(BASE + "/{policy_id}", put_policy_route, methods=["PUT"]),
    Route(BASE + "/{policy_id}", delete_policy_route, methods=["DELETE"]),
    Route(ROLES, list_roles, methods=["GET"]),
    Route(ROLES, post_role, methods=["POST"]),
    Route(ROLES + "/{name}", delete_role, methods=["DELETE"]),
]
