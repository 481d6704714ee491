"""``/admin/accounts``: register, read, change, unlock and erase accounts (AU-UM-1, AU-UM-3).

The operations are plain functions of the runtime and a :class:`Caller`, so ``cityos auth`` (the
local CLI) validates exactly as the HTTP API does; the handlers only add the request around them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.auth.admin.common import (
    TRUSTED,
    Caller,
    admin_caller,
    audit,
    home_tenant_of,
    json_body,
    org_in_scope,
    require_account_manageable,
    require_grantable,
    require_org,
    runtime_of,
    strings,
    text,
)
from cityos.auth.admin.erasure import erase_account, revoke_tokens
from cityos.auth.directory import Account
from cityos.auth.passwords import check_policy
from cityos.auth.runtime import AuthRuntime
from cityos.core.http import json_response
from cityos.core.problems import AlreadyExists, BadRequestData, Conflict, Forbidden, ResourceNotFound

BASE = "/admin/accounts"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_ATTRIBUTES = 16 * 1024
CHANGEABLE = {"name", "email", "organization", "roles", "attributes", "status", "password"}


def _username(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64 or any(
            c.isspace() or unicodedata.category(c).startswith("C") for c in value):
        raise BadRequestData("username must be 1-64 characters without spaces or control "
                             "characters")
    return value


def _email(body: dict[str, Any]) -> str:
    email = text(body, "email")
    if email and not EMAIL.match(email):
        raise BadRequestData(f"email {email!r} is not an e-mail address")
    return email


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("attributes") or {}
    if not isinstance(value, dict) or len(repr(value)) > MAX_ATTRIBUTES:
        raise BadRequestData(f"attributes must be a JSON object of at most {MAX_ATTRIBUTES} bytes")
    return value


async def _password_hash(runtime: AuthRuntime, password: Any) -> str:
    if not isinstance(password, str):
        raise BadRequestData("password must be a string")
    problem = check_policy(password)
    if problem:
        raise BadRequestData(problem)
    return await runtime.passwords.hash(password)


async def register_account(runtime: AuthRuntime, body: dict[str, Any],
                           caller: Caller = TRUSTED) -> Account:
    """A new active account from ``body``; without ``password`` it cannot log in until one is set."""
    username = _username(body.get("username"))
    org_id = body.get("organization")
    if org_id is not None and not isinstance(org_id, str):
        raise BadRequestData("organization must be an organization id")
    org = await require_org(runtime, caller, org_id)
    roles = strings(body, "roles", ["resident"])
    await require_grantable(runtime, caller, set(roles), org.home_tenant if org else "")
    password = body.get("password")
    password_hash = None if password is None else await _password_hash(runtime, password)
    try:
        account = await runtime.directory.create_account(
            username, password_hash=password_hash, organization_id=org_id, roles=tuple(roles),
            name=text(body, "name"), email=_email(body), attributes=_attributes(body))
    except ValueError as exc:
        raise AlreadyExists(str(exc)) from None
    await audit(runtime, caller, "account.create", account.id)
    return account


async def visible_accounts(runtime: AuthRuntime, caller: Caller,
                           organization: str | None = None) -> list[Account]:
    accounts = await runtime.directory.list_accounts(organization)
    if caller.platform:
        return accounts
    return [a for a in accounts if await org_in_scope(runtime, caller, a.organization_id)]


async def find_account(runtime: AuthRuntime, account_id: str, caller: Caller = TRUSTED) -> Account:
    """The live account ``account_id`` (404 when missing or erased, 403 outside the scope)."""
    account = await runtime.directory.get_account(account_id)
    if account is None or account.status == "deleted":
        raise ResourceNotFound(f"no account {account_id!r}")
    if not await org_in_scope(runtime, caller, account.organization_id):
        raise Forbidden("that account is outside your home tenant")
    return account


async def change_account(runtime: AuthRuntime, account_id: str, body: dict[str, Any],
                         caller: Caller = TRUSTED) -> Account:
    """Apply a partial change; only ``CHANGEABLE`` fields, status ``active`` or ``disabled``."""
    unknown = sorted(set(body) - CHANGEABLE)
    if unknown:
        raise BadRequestData(f"these fields cannot be changed: {unknown}")
    account = await find_account(runtime, account_id, caller)
    await require_account_manageable(runtime, caller, account)
    if account.status == "erasing":
        raise Conflict("the account is being erased")
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = text(body, "name")
    if "email" in body:
        fields["email"] = _email(body)
    if "attributes" in body:
        fields["attributes"] = _attributes(body)
    org_id = account.organization_id
    if "organization" in body:
        org_id = body["organization"]
        if org_id is not None and not isinstance(org_id, str):
            raise BadRequestData("organization must be an organization id")
        await require_org(runtime, caller, org_id)
        fields["organization_id"] = org_id
    if "roles" in body or "organization" in body:
        roles = set(strings(body, "roles")) if "roles" in body else set(account.roles)
        await require_grantable(runtime, caller, roles, await home_tenant_of(runtime, org_id))
        fields["roles"] = roles
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            raise BadRequestData("status must be 'active' or 'disabled' (DELETE erases)")
        fields["status"] = body["status"]
    if "password" in body:
        fields["password_hash"] = await _password_hash(runtime, body["password"])
    if not fields:
        return account
    if "roles" in fields and fields["roles"] == set(account.roles):
        del fields["roles"]          # unchanged roles need not void the account's tokens
    changed = await runtime.directory.update_account(account_id, **fields)
    if changed is None:
        raise ResourceNotFound(f"no account {account_id!r}")
    if fields.get("status") == "disabled":
        await revoke_tokens(runtime, account_id)
    await audit(runtime, caller, "account.change", account_id,
                fields=sorted("password" if k == "password_hash" else k for k in fields))
    return changed


async def unlock_account(runtime: AuthRuntime, account_id: str, caller: Caller = TRUSTED) -> Account:
    """End a password lockout (ADR 0012 §5)."""
    account = await find_account(runtime, account_id, caller)
    await require_account_manageable(runtime, caller, account)
    await runtime.directory.unlock_account(account_id)
    await audit(runtime, caller, "account.unlock", account_id)
    return await find_account(runtime, account_id, caller)


async def delete_account(runtime: AuthRuntime, account_id: str, caller: Caller = TRUSTED) -> None:
    """Erase the account and its personal data (AU-UM-1)."""
    account = await find_account(runtime, account_id, caller)
    await require_account_manageable(runtime, caller, account)
    await audit(runtime, caller, "account.erase", account_id)
    await erase_account(runtime, account_id)


# -- HTTP ---------------------------------------------------------------------------------------
async def post_account(request: Request) -> Response:
    """POST /admin/accounts: 201 with the account and its ``Location``."""
    account = await register_account(runtime_of(request), await json_body(request), admin_caller())
    return json_response(account.public(), 201, headers={"Location": f"{BASE}/{account.id}"})


async def list_accounts(request: Request) -> Response:
    """GET /admin/accounts[?organization=ID]."""
    accounts = await visible_accounts(runtime_of(request), admin_caller(),
                                      request.query_params.get("organization"))
    return json_response([a.public() for a in accounts])


async def get_account(request: Request) -> Response:
    """GET /admin/accounts/{id}."""
    account = await find_account(runtime_of(request), request.path_params["account_id"],
                                 admin_caller())
    return json_response(account.public())


async def patch_account(request: Request) -> Response:
    """PATCH /admin/accounts/{id}: 200 with the changed account."""
    account = await change_account(runtime_of(request), request.path_params["account_id"],
                                   await json_body(request), admin_caller())
    return json_response(account.public())


async def post_unlock(request: Request) -> Response:
    """POST /admin/accounts/{id}/unlock: 200 with the account."""
    account = await unlock_account(runtime_of(request), request.path_params["account_id"],
                                   admin_caller())
    return json_response(account.public())


async def delete_account_route(request: Request) -> Response:
    """DELETE /admin/accounts/{id}: erase (AU-UM-1); 204."""
    await delete_account(runtime_of(request), request.path_params["account_id"], admin_caller())
    return Response(status_code=204)


ROUTES = [
    Route(BASE, post_account, methods=["POST"]),
    Route(BASE, list_accounts, methods=["GET"]),
    Route(BASE + "/{account_id}", get_account, methods=["GET"]),
    Route(BASE + "/{account_id}", patch_account, methods=["PATCH"]),
    Route(BASE + "/{account_id}", delete_account_route, methods=["DELETE"]),
    Route(BASE + "/{account_id}/unlock", post_unlock, methods=["POST"]),
]
