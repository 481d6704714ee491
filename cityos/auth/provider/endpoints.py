"""Discovery, JWKS, introspection, revocation and userinfo, and the provider's route list."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cityos.auth.provider.grants import find_refresh_token
from cityos.auth.provider.oauth import (
    NO_STORE,
    OAuthError,
    authenticate_client,
    ok,
    read_form,
    runtime_of,
)
from cityos.auth.provider.token_endpoint import token_endpoint
from cityos.auth.tokens import InvalidToken
from cityos.core.access import ACTION_SCOPES, PD_CATEGORIES, PD_SCOPE_PREFIX

SCOPES = sorted({"openid", "profile", "email", "offline_access", *ACTION_SCOPES.values(),
                 *(PD_SCOPE_PREFIX + c for c in PD_CATEGORIES)})
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "name",
          "preferred_username", "email", "organization", "tenant"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def metadata(issuer: str) -> dict[str, Any]:
    """One document for OIDC Discovery 1.0 §3 and RFC 8414 §2."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "jwks_uri": f"{issuer}/auth/jwks.json",
        "userinfo_endpoint": f"{issuer}/auth/userinfo",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "end_session_endpoint": f"{issuer}/auth/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:2],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "authorization_response_iss_parameter_supported": True,
    }


async def discovery(request: Request) -> Response:
    return JSONResponse(metadata(runtime_of(request).public_url),
                        headers={"Cache-Control": "max-age=3600"})


async def jwks(request: Request) -> Response:
    # max-age 3600 is far below the 2 days a next key is published before it signs
    return JSONResponse(runtime_of(request).tokens.keys.jwks(),
                        headers={"Cache-Control": "max-age=3600"})


async def introspect(request: Request) -> Response:
    """RFC 7662: confidential clients (resource servers) ask whether a token is active."""
    runtime = runtime_of(request)
    try:
        form = await read_form(request)
        client = await authenticate_client(request, form, runtime)
        if client.public_client:
            raise OAuthError("invalid_client", "introspection needs a confidential client")
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as error:
        return error.response()
    claims = await runtime.tokens.introspect(token)
    if claims is not None:
        return ok({"active": True, **claims, "token_type": "Bearer"})
    found = await find_refresh_token(runtime.db, token)
    if found is not None:
        grant, used = found
        # a refresh token is described only to the client it was issued to (RFC 7662 §4)
        if not used and grant.live(runtime.tokens.clock()) and grant.client_id == client.client_id:
            return ok({"active": True, "token_type": "refresh_token", "scope": grant.scope,
                       "client_id": grant.client_id, "sub": grant.account_id,
                       "exp": grant.expires_at, "iss": runtime.public_url})
    return ok({"active": False})


async def revoke(request: Request) -> Response:
    """RFC 7009: a refresh token ends its grant (and the grant's access tokens, §2.1); an access
    token is revoked by its ``jti``; unknown or foreign tokens still get 200 (§2.2)."""
    runtime = runtime_of(request)
    try:
        form = await read_form(request)
        client = await authenticate_client(request, form, runtime)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as error:
        return error.response()
    found = await find_refresh_token(runtime.db, token)
    if found is not None:
        if found[0].client_id == client.client_id:
            await runtime.tokens.revoke_grant(found[0].grant_id)
    else:
        claims = await runtime.tokens.introspect(token)
        if claims is not None and claims.get("client_id") == client.client_id:
            await runtime.tokens.revoke_token_id(claims["jti"], int(claims["exp"]))
    return Response(status_code=200, headers=NO_STORE)


def _bearer_error(status: int, error: str, description: str) -> Response:
    # RFC 6750 §3: the error travels in WWW-Authenticate
    challenge = f'Bearer realm="cityos", error="{error}", error_description="{description}"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"WWW-Authenticate": challenge, **NO_STORE})


async def userinfo(request: Request) -> Response:
    """OIDC Core §5.3: claims about the signed-in user, as far as the token's scopes reach."""
    runtime = runtime_of(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="cityos"'})
    try:
        who = await runtime.tokens.validate(header[7:].strip())
    except InvalidToken as error:
        return _bearer_error(401, "invalid_token", error.description)
    if who.kind != "user" or "openid" not in (who.scopes or ()):
        return _bearer_error(403, "insufficient_scope", "userinfo needs a user token with openid")
    account = await runtime.directory.get_account(who.subject)
    if account is None:
        return _bearer_error(401, "invalid_token", "the account no longer exists")
    claims: dict[str, Any] = {"sub": account.id, "organization": account.organization_id,
                              "tenant": who.home_tenant}
    # OIDC Core §5.4: profile and email claims only when their scopes were granted
    if "profile" in who.scopes:
        claims.update(name=account.name, preferred_username=account.username)
    if "email" in who.scopes and account.email:
        claims["email"] = account.email
    return JSONResponse(claims, headers=NO_STORE)


def routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
        Route("/auth/jwks.json", jwks, methods=["GET"]),
        Route("/auth/token", token_endpoint, methods=["POST"]),
        Route("/auth/introspect", introspect, methods=["POST"]),
        Route("/auth/revoke", revoke, methods=["POST"]),
        Route("/auth/userinfo", userinfo, methods=["GET", "POST"]),
    ]
