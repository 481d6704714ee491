"""The one access check every request passes (ADR 0012 §7, ADR 0013).

For each HTTP request: authenticate (Bearer access token -> Principal, none -> anonymous), find
the action of the path (``routes_actions.py``, deny by default), settle the tenant (the header
names one, else the token's home tenant: a header alone grants nothing), then require the
action's scope in the token, multi-factor authentication for personal-data scopes, and an active
policy for the action in that tenant.  What the policies allow is set as the request's
:class:`~cityos.core.access.Access`; the data block's guarded store narrows every entity read and
write by it.  Routes themselves check nothing.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from cityos.auth.policy import Decision
from cityos.auth.routes_actions import OPEN, SELF, action_of, tenant_header
from cityos.auth.runtime import AuthRuntime
from cityos.auth.tokens import InvalidToken
from cityos.core.access import ACTION_SCOPES, Access, Principal, reset_access, set_access
from cityos.core.fiware import FiwareHeaderError, tenant_of_service

log = logging.getLogger("cityos.auth")
# request ids for audit records: unique per process run without a random draw per request
_ID_PREFIX = secrets.token_hex(4)
_REQUEST_NUMBERS = itertools.count(1)
MFA_ACR = "urn:cityos:acr:mfa"
ANONYMOUS = Principal.anonymous()


class Denied(Exception):
    """A refused request: status, problem detail and the ``WWW-Authenticate`` challenge."""

    def __init__(self, status: int, detail: str, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.challenge = status, detail, challenge


class AuthMiddleware:
    """Pure ASGI: decides before routing, so no route can forget to."""

    def __init__(self, app: ASGIApp, runtime: AuthRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope, access = await self.decide(scope)
        except Denied as denied:
            await _refuse(scope, send, denied)
            return
        token = set_access(access)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_access(token)

    async def decide(self, scope: Scope) -> tuple[Scope, Access]:
        """The request's access decision (raises Denied)."""
        path: str = scope["path"]
        method: str = scope["method"]
        action = action_of(method, path)
        request_id = f"{_ID_PREFIX}-{next(_REQUEST_NUMBERS):x}"
        if action == OPEN:
            # the token endpoint takes client credentials by HTTP Basic and userinfo checks its
            # own bearer token: an open path never fails on its Authorization header here
            try:
                principal = await self.authenticate(scope)
            except Denied:
                principal = ANONYMOUS
            return scope, Access(principal, OPEN, principal.home_tenant, None, None,
                                 request_id=request_id)
        principal = await self.authenticate(scope)
        if action is None:
            raise self._deny(principal, "no access rule covers this API path and method")
        if action == SELF:
            if principal.kind == "anonymous":
                raise self._deny(principal, "sign in to use /me")
            return scope, self._access(principal, SELF, principal.home_tenant, request_id)
        scope, tenant = _settle_tenant(scope, principal)
        scope_name = ACTION_SCOPES[action]
        if not principal.allows_scope(scope_name):
            raise Denied(403, f"the token lacks the scope {scope_name!r} this API needs",
                         f'Bearer error="insufficient_scope", scope="{scope_name}"')
        self._require_fresh_mfa(principal)
        await self.runtime.evaluator.refresh()
        decided = self.runtime.evaluator.decision(principal, action, tenant)
        if not decided.allowed:
            raise self._deny(principal, f"no policy allows {action} in tenant {tenant or '(default)'!r}")
        return scope, self._access(principal, action, tenant, request_id, decided)

    def _access(self, principal: Principal, action: str, tenant: str, request_id: str,
                decided: Decision | None = None) -> Access:
        decided = decided or self.runtime.evaluator.decision(principal, action, tenant)
        return Access(principal, action, tenant, decided.read, decided.write,
                      may_manage_pd=decided.may_manage_pd, consents=self.runtime.consents,
                      audit=self.runtime.audit, request_id=request_id)

    async def authenticate(self, scope: Scope) -> Principal:
        header = _header(scope, b"authorization")
        if header is None:
            return ANONYMOUS
        kind, _, credential = header.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise Denied(401, "send an OAuth 2.0 access token: Authorization: Bearer <token>",
                         'Bearer error="invalid_request"')
        tokens = self.runtime.tokens
        if tokens is None:
            raise Denied(401, "this server issues no tokens", 'Bearer error="invalid_token"')
        try:
            principal: Principal = await tokens.validate(credential.strip())
        except InvalidToken as exc:     # never echo the token itself
            raise Denied(401, f"invalid access token: {exc}",
                         'Bearer error="invalid_token"') from None
        return principal

    def _require_fresh_mfa(self, principal: Principal) -> None:
        """Personal-data scopes need a recent multi-factor login (RFC 9470 step-up)."""
        if not principal.pd_categories or principal.kind != "user":
            return
        max_age = self.runtime.settings.auth_pd_max_age
        fresh = principal.auth_time is not None and time.time() - principal.auth_time <= max_age
        if not (principal.has_mfa and fresh):
            raise Denied(401, "personal data needs a recent multi-factor login",
                         f'Bearer error="insufficient_user_authentication", '
                         f'acr_values="{MFA_ACR}", max_age={max_age}')

    @staticmethod
    def _deny(principal: Principal, detail: str) -> Denied:
        if principal.kind == "anonymous":
            return Denied(401, "this API needs an access token", "Bearer")
        return Denied(403, detail)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _settle_tenant(scope: Scope, principal: Principal) -> tuple[Scope, str]:
    """The tenant the request acts in; without a header, the principal's home tenant, which is
    then written into the header so the route reads the same tenant the decision was made for."""
    name = tenant_header(scope["path"])
    raw = _header(scope, name.encode())
    if raw is None or raw == "":
        if principal.home_tenant:
            scope = dict(scope)
            scope["headers"] = [*scope["headers"], (name.encode(), principal.home_tenant.encode())]
        return scope, principal.home_tenant
    if name == "fiware-service":
        try:
            return scope, tenant_of_service(raw)
        except FiwareHeaderError:
            return scope, raw      # the route answers the precise 400
    return scope, raw


async def _refuse(scope: Scope, send: Send, denied: Denied) -> None:
    path: str = scope["path"]
    titles = {401: "Unauthorized", 403: "Forbidden"}
    body: dict[str, Any] = {"type": f"urn:cityos:problem:{titles.get(denied.status, 'Forbidden')}",
                            "title": titles.get(denied.status, "Forbidden"),
                            "status": denied.status, "detail": denied.detail}
    media = b"application/json" if path.startswith("/ngsi-ld/") else b"application/problem+json"
    headers = [(b"content-type", media), (b"cache-control", b"no-store")]
    if denied.challenge:
        headers.append((b"www-authenticate", denied.challenge.encode()))
    await send({"type": "http.response.start", "status": denied.status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
