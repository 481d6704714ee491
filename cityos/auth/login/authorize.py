"""``GET /auth/authorize``: the authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2).

Checks come in the order the RFC requires: until the client and its redirect URI are known good,
errors are shown as a page and never redirected (§4.1.2.1, open redirector: RFC 9700 §4.11);
after that they go back to the client with ``error``, ``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cityos.auth.directory import Client
from cityos.auth.login.pages import error_page
from cityos.auth.login.sessions import ACR_MFA, AMR_MFA, AMR_PWD
from cityos.auth.provider.codes import issue_code
from cityos.core.sqldb import SqlDb

if TYPE_CHECKING:
    from cityos.auth.login.part import LoginPart

APPROVALS_DDL = """
CREATE TABLE IF NOT EXISTS auth_approvals (
    account_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
"""

_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")     # RFC 7636 §4.2
_LOOPBACK = ("127.0.0.1", "::1")


class PageError(Exception):
    """The client or redirect URI cannot be trusted: tell the user, do not redirect."""


class RedirectError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class AuthzRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    acr_values: tuple[str, ...]

    @property
    def needs_mfa(self) -> bool:
        return ACR_MFA in self.acr_values or any(s.startswith("pd:") for s in self.scopes)

    def back(self, issuer: str, status: int = 302, **params: str | None) -> RedirectResponse:
        """A redirect to the client's redirect URI with ``params``, ``state`` and ``iss``."""
        params.update(state=self.state, iss=issuer)
        query = urlencode({k: v for k, v in params.items() if v is not None})
        sep = "&" if "?" in self.redirect_uri else "?"
        return RedirectResponse(self.redirect_uri + sep + query, status_code=status)


def redirect_matches(requested: str, registered: Sequence[str]) -> bool:
    """Exact string match; for http loopback redirects any port (RFC 8252 §7.3)."""
    if requested in registered:
        return True
    try:
        want = urlsplit(requested)
        if want.scheme != "http" or want.hostname not in _LOOPBACK or want.username is not None:
            return False
        _ = want.port      # a malformed port is no match
        for uri in registered:
            have = urlsplit(uri)
            if (have.scheme, have.hostname, have.path, have.query) == (
                    "http", want.hostname, want.path, want.query) and not want.fragment:
                return True
    except ValueError:
        return False
    return False


async def parse_request(part: LoginPart, items: Sequence[tuple[str, str]]) -> AuthzRequest:
    """The validated request, or PageError / (client and redirect known good) RedirectError."""
    params: dict[str, str] = {}
    duplicated = False
    for key, value in items:
        duplicated = duplicated or key in params     # RFC 6749 §3.1: each parameter once
        params[key] = value
    client = await part.runtime.directory.get_client(params.get("client_id", ""))
    if client is None or not client.valid_at(time.time()):
        raise PageError("unknown or inactive client_id")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_matches(redirect_uri, client.redirect_uris):
        raise PageError("redirect_uri is not registered for this client")
    req = AuthzRequest(client=client, redirect_uri=redirect_uri,
                       scopes=tuple(dict.fromkeys(params.get("scope", "").split())),
                       state=params.get("state"), nonce=params.get("nonce"),
                       code_challenge=params.get("code_challenge", ""),
                       prompt=frozenset(params.get("prompt", "").split()), max_age=None,
                       acr_values=tuple(params.get("acr_values", "").split()))
    if duplicated:
        raise _Bound(req, "invalid_request", "a parameter was given more than once")
    if "response_type" not in params:
        raise _Bound(req, "invalid_request", "response_type is required")
    if params["response_type"] != "code":
        raise _Bound(req, "unsupported_response_type", "only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise _Bound(req, "unauthorized_client", "client may not use the authorization code grant")
    if params.get("code_challenge_method") != "S256" or not _CHALLENGE.match(req.code_challenge):
        raise _Bound(req, "invalid_request", "PKCE code_challenge with method S256 is required")
    if not req.scopes or not set(req.scopes) <= set(client.scopes):
        raise _Bound(req, "invalid_scope", "scope is empty or not allowed for this client")
    if req.prompt - {"login", "none", "consent"} or {"none"} < req.prompt:
        raise _Bound(req, "invalid_request", "unsupported prompt value")
    max_age = params.get("max_age")
    if max_age is not None:
        if not max_age.isdigit():
            raise _Bound(req, "invalid_request", "max_age must be a non-negative integer")
        req = replace(req, max_age=int(max_age))
    return req


class _Bound(RedirectError):
    """A RedirectError that already knows where to go."""

    def __init__(self, req: AuthzRequest, error: str, description: str) -> None:
        super().__init__(error, description)
        self.req = req


async def authorize(part: LoginPart, request: Request) -> Response:
    try:
        req = await parse_request(part, request.query_params.multi_items())
    except PageError as exc:
        return error_page(request, 400, detail=str(exc))
    except _Bound as exc:
        return exc.req.back(part.runtime.public_url, error=exc.error,
                            error_description=exc.description)
    return await proceed(part, request, req)


def _here(request: Request, drop: tuple[str, ...] = ()) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in drop]
    return "/auth/authorize?" + urlencode(items)


async def proceed(part: LoginPart, request: Request, req: AuthzRequest) -> Response:
    """Login, then MFA, then approval, each only when needed; then the code."""
    now, issuer = int(time.time()), part.runtime.public_url
    session = await part.current_session(request)
    stale = session is not None and req.max_age is not None and now - session.auth_time > req.max_age
    if session is None or "login" in req.prompt or stale:
        if "none" in req.prompt:
            return req.back(issuer, error="login_required")
        # the login form returns here without prompt=login / max_age: no endless login loop
        return part.go("/auth/login", _here(request, ("prompt", "max_age")))
    if req.needs_mfa and not session.mfa_fresh(part.runtime.settings.auth_pd_max_age, now):
        if "none" in req.prompt:
            return req.back(issuer, error="interaction_required")
        enrolled = await part.totp.enrolled(session.account_id)
        return part.go("/auth/mfa" if enrolled else "/auth/mfa/setup", _here(request))
    if not req.client.trusted and ("consent" in req.prompt or not set(req.scopes) <= (
            await approved_scopes(part.runtime.db, session.account_id, req.client.client_id))):
        if "none" in req.prompt:
            return req.back(issuer, error="consent_required")
        return part.go("/auth/approve", _here(request, ("prompt",)))
    mfa = session.mfa_at is not None
    code = await issue_code(
        part.runtime.db, client_id=req.client.client_id, redirect_uri=req.redirect_uri,
        scope=" ".join(req.scopes), account_id=session.account_id, session_id=session.sid,
        nonce=req.nonce, code_challenge=req.code_challenge, auth_time=session.auth_time,
        acr=session.acr, amr=AMR_MFA if mfa else AMR_PWD)
    return req.back(issuer, code=code)


async def approved_scopes(db: SqlDb, account_id: str, client_id: str) -> set[str]:
    row = await db.fetchrow("SELECT scopes FROM auth_approvals WHERE account_id = ? AND client_id = ?",
                            account_id, client_id)
    return set() if row is None else set(orjson.loads(row["scopes"]))


async def store_approval(db: SqlDb, account_id: str, client_id: str, scopes: Sequence[str]) -> None:
    merged = sorted(await approved_scopes(db, account_id, client_id) | set(scopes))
    await db.execute(
        "INSERT INTO auth_approvals (account_id, client_id, scopes, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (account_id, client_id) DO UPDATE SET scopes = excluded.scopes, "
        "updated_at = excluded.updated_at", account_id, client_id, orjson.dumps(merged).decode(),
        int(time.time()))
