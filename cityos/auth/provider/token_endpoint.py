"""POST /auth/token: authorization code (+ PKCE S256), refresh token, client credentials.

Nothing else: the implicit and password grants are gone from OAuth 2.1 and RFC 9700 §2.4,
so any other ``grant_type`` is ``unsupported_grant_type`` (RFC 6749 §5.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.auth.directory.models import Account, Client
from cityos.auth.provider.codes import bind_grant, consume_code
from cityos.auth.provider.grants import (
    Grant,
    create_grant,
    find_refresh_token,
    grant_id_for_code,
    new_refresh_token,
    use_refresh_token,
)
from cityos.auth.provider.oauth import OAuthError, authenticate_client, ok, read_form, runtime_of
from cityos.core.access import PD_SCOPE_PREFIX, AuditRecord

log = logging.getLogger("cityos.auth")
# RFC 7636 §4.1: 43-128 characters of the unreserved set
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
USER_ONLY_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})

Handler = Callable[[Any, Client, dict[str, str]], Awaitable[dict[str, Any]]]


async def token_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", f"grant type {grant_type!r} is not supported")
        client = await authenticate_client(request, form, runtime)
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"client may not use {grant_type}")
        return ok(await handler(runtime, client, form))
    except OAuthError as error:
        return error.response()


async def _audit(runtime: Any, event: str, client: Client, subject: str, outcome: str = "ok",
                 **detail: Any) -> None:
    if runtime.audit is not None:
        await runtime.audit.append([AuditRecord(
            event=event, actor_kind="client" if subject == client.client_id else "user",
            actor_sub=subject, client_id=client.client_id, processor_org=client.organization_id,
            outcome=outcome, detail=detail)])


async def _tenant_of(runtime: Any, organization_id: str | None) -> str:
    org = await runtime.directory.get_organization(organization_id) if organization_id else None
    return org.home_tenant if org is not None else ""


def _purpose(client: Client) -> str | None:
    return client.purposes[0].id if client.purposes else None


# -- client credentials (RFC 6749 §4.4) ----------------------------------------------------------
async def client_credentials(runtime: Any, client: Client, form: dict[str, str]) -> dict[str, Any]:
    if client.public_client:
        raise OAuthError("unauthorized_client", "public clients cannot use client_credentials")
    # personal data is reachable only through a resident's login (RFC 9700 §2.5: no pd:* here)
    allowed = [s for s in client.scopes
               if not s.startswith(PD_SCOPE_PREFIX) and s not in USER_ONLY_SCOPES]
    scopes = form["scope"].split() if "scope" in form else allowed
    refused = [s for s in scopes if s not in allowed]
    if refused:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")
    scope = " ".join(dict.fromkeys(scopes))
    token, ttl = await runtime.tokens.issue_access_token(
        subject=client.client_id, kind="client", client_id=client.client_id, scope=scope,
        roles=list(client.roles), organization=client.organization_id,
        tenant=await _tenant_of(runtime, client.organization_id), purpose=_purpose(client))
    await _audit(runtime, "auth.token", client, client.client_id, grant="client_credentials")
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope}


# -- authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6) -----------------------------------------
def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorization_code(runtime: Any, client: Client, form: dict[str, str]) -> dict[str, Any]:
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    db = runtime.db
    record, reused = await consume_code(db, code)
    if record is not None and reused:
        # RFC 6749 §4.1.2 / §10.5: the tokens the first exchange got are revoked.  The grant id
        # follows from the code, so even an exchange still in flight is caught: the tombstone
        # makes its own grant insert fail.
        grant_id = record.grant_id or grant_id_for_code(code)
        await create_grant(db, grant_id, record, runtime.settings.auth_grant_ttl, revoked=True)
        await runtime.tokens.revoke_grant(grant_id)
        log.warning("authorization code reused by client %s: grant %s revoked",
                    client.client_id, grant_id)
        await _audit(runtime, "auth.code_reuse", client, record.account_id, "refused")
        raise OAuthError("invalid_grant", "authorization code already used")
    if record is None or record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "authorization code invalid or expired")
    # from here on the code is consumed: every failure below burns it
    if form.get("redirect_uri") != record.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    verifier = form.get("code_verifier")
    if verifier is None:
        raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
    if not VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            _s256(verifier).encode(), record.code_challenge.encode()):
        raise OAuthError("invalid_grant", "code_verifier does not match (S256)")
    account = await _active_account(runtime, record.account_id)
    grant_id = grant_id_for_code(code)
    if not await create_grant(db, grant_id, record, runtime.settings.auth_grant_ttl):
        raise OAuthError("invalid_grant", "authorization code already used")
    await bind_grant(db, code, grant_id)
    scope = _still_allowed(client, record.scope.split())
    body = await _user_tokens(runtime, client, account, scope, grant_id,
                              session_id=record.session_id, auth_time=record.auth_time,
                              acr=record.acr, amr=record.amr)
    if "openid" in scope.split():
        body["id_token"] = await runtime.tokens.issue_id_token(
            subject=account.id, client_id=client.client_id, nonce=record.nonce,
            auth_time=record.auth_time, acr=record.acr, amr=record.amr, sid=record.session_id,
            extra_claims={})
    await _audit(runtime, "auth.token", client, account.id, grant="authorization_code")
    return body


async def _active_account(runtime: Any, account_id: str) -> Account:
    account: Account | None = await runtime.directory.get_account(account_id)
    if account is None or account.status != "active":
        raise OAuthError("invalid_grant", "the account is not active")
    return account


async def _user_tokens(runtime: Any, client: Client, account: Account, scope: str,
                       grant_id: str, *, session_id: str | None, auth_time: int | None,
                       acr: str | None, amr: tuple[str, ...]) -> dict[str, Any]:
    """Access token (roles and tenant read fresh from the directory) and a new refresh token
    of the grant's family."""
    token, ttl = await runtime.tokens.issue_access_token(
        subject=account.id, kind="user", client_id=client.client_id, scope=scope,
        roles=sorted(account.roles), organization=account.organization_id,
        tenant=await _tenant_of(runtime, account.organization_id), acr=acr, amr=amr,
        auth_time=auth_time, purpose=_purpose(client), sid=session_id, gid=grant_id)
    body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                            "scope": scope}
    if "refresh_token" in client.grant_types:
        body["refresh_token"] = await new_refresh_token(runtime.db, grant_id)
    return body


# -- refresh token (RFC 6749 §6, RFC 9700 §4.14.2 rotation) --------------------------------------
async def refresh_token(runtime: Any, client: Client, form: dict[str, str]) -> dict[str, Any]:
    presented = form.get("refresh_token")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    found = await find_refresh_token(runtime.db, presented)
    if found is None or found[0].client_id != client.client_id:
        raise OAuthError("invalid_grant", "refresh token invalid")
    grant, used = found
    if used or not await use_refresh_token(runtime.db, presented):
        await _family_dies(runtime, client, grant)
    if not grant.live(time.time()):
        raise OAuthError("invalid_grant", "the grant has ended")
    granted = grant.scope.split()
    scopes = form["scope"].split() if "scope" in form else granted
    wider = [s for s in scopes if s not in granted]
    if wider:
        raise OAuthError("invalid_scope", f"scope not in the original grant: {' '.join(wider)}")
    if not _fresh_mfa(runtime, grant):
        # personal data needs a recent multi-factor login (ADR 0012 §6): pd:* scopes drop out
        # of refreshed tokens once it is too old, the rest of the grant lives on
        scopes = [s for s in scopes if not s.startswith(PD_SCOPE_PREFIX)]
    account = await _active_account(runtime, grant.account_id)
    body = await _user_tokens(runtime, client, account, _still_allowed(client, scopes),
                              grant.grant_id, session_id=grant.session_id,
                              auth_time=grant.auth_time, acr=grant.acr, amr=grant.amr)
    await _audit(runtime, "auth.token", client, account.id, grant="refresh_token")
    return body


def _still_allowed(client: Client, scopes: list[str]) -> str:
    """The scopes the client is still registered for (an operator may have narrowed it)."""
    return " ".join(s for s in dict.fromkeys(scopes) if s in client.scopes)


def _fresh_mfa(runtime: Any, grant: Grant) -> bool:
    return "mfa" in grant.amr and grant.auth_time is not None and \
        time.time() - grant.auth_time <= runtime.settings.auth_pd_max_age


async def _family_dies(runtime: Any, client: Client, grant: Grant) -> None:
    """A used refresh token came back: someone holds a copy, so the whole family is revoked."""
    await runtime.tokens.revoke_grant(grant.grant_id)
    log.warning("refresh token reused by client %s: grant %s revoked", client.client_id,
                grant.grant_id)
    await _audit(runtime, "auth.refresh_reuse", client, grant.account_id, "refused")
    raise OAuthError("invalid_grant", "refresh token already used: the grant is revoked")


GRANTS: dict[str, Handler] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
