"""``/me``: the signed-in resident's own profile (AU-UM-3).

Only a user's token has a profile: clients, devices, systems and anonymous callers get 401, and
so does every caller in insecure mode (there is no user then).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.auth.admin.common import json_body, runtime_of, text
from cityos.auth.admin.routes_accounts import _email, _password_hash
from cityos.auth.directory import Account
from cityos.auth.runtime import AuthRuntime
from cityos.core.access import current_access
from cityos.core.http import json_response
from cityos.core.problems import BadRequestData, Forbidden, Unauthorized

CHANGEABLE = {"name", "email", "password", "currentPassword"}


async def _me(runtime: AuthRuntime) -> Account:
    access = current_access()
    if access is None or access.principal.kind != "user":
        raise Unauthorized("/me needs a user's access token",
                           headers={"WWW-Authenticate": 'Bearer realm="cityos"'})
    account = await runtime.directory.get_account(access.principal.subject)
    if account is None or account.status != "active":
        raise Unauthorized("the account of this token is not active",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return account


async def _profile(runtime: AuthRuntime, account: Account) -> dict[str, Any]:
    profile = account.public()
    org_id = account.organization_id
    org = None if org_id is None else await runtime.directory.get_organization(org_id)
    profile["organization"] = None if org is None else org.public()
    return profile


async def get_me(request: Request) -> Response:
    """GET /me: the caller's account with its organization."""
    runtime = runtime_of(request)
    return json_response(await _profile(runtime, await _me(runtime)))


async def patch_me(request: Request) -> Response:
    """PATCH /me: change name, email or password (the password needs ``currentPassword``)."""
    runtime = runtime_of(request)
    account = await _me(runtime)
    body = await json_body(request)
    unknown = sorted(set(body) - CHANGEABLE)
    if unknown:
        raise BadRequestData(f"these fields cannot be changed here: {unknown}")
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = text(body, "name")
    if "email" in body:
        fields["email"] = _email(body)
    if "password" in body:
        current = body.get("currentPassword")
        if not isinstance(current, str) or not await runtime.passwords.verify(
                account.password_hash, current):
            raise Forbidden("currentPassword is missing or wrong")
        fields["password_hash"] = await _password_hash(runtime, body["password"])
    if fields:
        changed = await runtime.directory.update_account(account.id, **fields)
        account = changed or account
    return json_response(await _profile(runtime, account))


ROUTES = [
    Route("/me", get_me, methods=["GET"]),
    Route("/me", patch_me, methods=["PATCH"]),
]
