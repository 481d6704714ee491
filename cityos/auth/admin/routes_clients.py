"""``/admin/clients``: OAuth 2.0 clients, their secrets and service validity period (AU-AA-1/2).

Registration rules follow the security BCP: redirect URIs are absolute, compared exactly, https or
http on a loopback address only (RFC 9700 §2.1, RFC 8252 §7.3, §8.3), without fragment (RFC 6749
§3.1.2); refresh tokens only with the code flow (RFC 6749 §4.4.3); client credentials only for
clients that can authenticate (RFC 6749 §4.4).  A secret is returned once and stored as SHA-256.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.auth.admin.common import (
    TRUSTED,
    Caller,
    admin_caller,
    audit,
    iso,
    json_body,
    org_in_scope,
    period,
    require_grantable,
    require_org,
    require_own_policies_covered,
    runtime_of,
    strings,
    text,
)
from cityos.auth.directory import Client, Purpose
from cityos.auth.runtime import AuthRuntime
from cityos.core.http import json_response
from cityos.core.problems import AlreadyExists, BadRequestData, Conflict, Forbidden, ResourceNotFound

BASE = "/admin/clients"
# private_key_jwt (RFC 7523) is not accepted by the token endpoint yet: registering such a client
# would give an application that can never authenticate
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")     # RFC 6749 §3.3
CHANGEABLE = {"name", "organization", "redirectUris", "postLogoutRedirectUris", "grantTypes",
              "scopes", "roles", "purposes", "trusted", "validFrom", "validUntil", "status", "jwks"}


def show(client: Client, secret: str | None = None) -> dict[str, Any]:
    doc = client.public()
    doc["validFrom"], doc["validUntil"] = iso(client.valid_from), iso(client.valid_until)
    if secret is not None:
        doc["clientSecret"] = secret
    return doc


def _redirect_uris(body: dict[str, Any], field: str) -> tuple[str, ...]:
    uris = strings(body, field)
    for uri in uris:
        parts = urlsplit(uri)
        if parts.fragment or "#" in uri:
            raise BadRequestData(f"{field}: {uri!r} has a fragment (RFC 6749 §3.1.2)")
        secure = parts.scheme == "https" and parts.hostname
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK
        if not (secure or loopback):
            raise BadRequestData(f"{field}: {uri!r} must be an absolute https URI, or http on "
                                 "127.0.0.1, [::1] or localhost")
    return tuple(uris)


def _purposes(body: dict[str, Any]) -> tuple[Purpose, ...]:
    raw = body.get("purposes") or []
    if not isinstance(raw, list):
        raise BadRequestData("purposes must be a list of {id, text, category}")
    out: list[Purpose] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise BadRequestData("each purpose needs a string id, a text and a category")
        out.append(Purpose(item["id"], text(item, "text", max_len=2048),
                           text(item, "category", default="ServiceProvision", max_len=128)
                           or "ServiceProvision"))
    if len({p.id for p in out}) != len(out):
        raise BadRequestData("purpose ids must be unique")
    return tuple(out)


async def parse_client(runtime: AuthRuntime, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``Directory.create_client`` from the JSON form (400 / 403)."""
    org_id = body.get("organization")
    if org_id is not None and not isinstance(org_id, str):
        raise BadRequestData("organization must be an organization id")
    org = await require_org(runtime, caller, org_id)
    method = body.get("tokenEndpointAuthMethod", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise BadRequestData(f"tokenEndpointAuthMethod must be one of {list(AUTH_METHODS)}")
    grants = strings(body, "grantTypes", ["authorization_code", "refresh_token"])
    if not grants or set(grants) - set(GRANT_TYPES):
        raise BadRequestData(f"grantTypes must be a non-empty subset of {list(GRANT_TYPES)}")
    redirects = _redirect_uris(body, "redirectUris")
    if "authorization_code" in grants and not redirects:
        raise BadRequestData("the authorization_code grant needs at least one redirectUris entry")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise BadRequestData("refresh_token is issued only with authorization_code "
                             "(RFC 6749 §4.4.3)")
    if "client_credentials" in grants and method == "none":
        raise BadRequestData("a public client (none) cannot use client_credentials "
                             "(RFC 6749 §4.4)")
    scopes = strings(body, "scopes", ["openid", "profile", "entities:read"])
    if not all(SCOPE_TOKEN.match(s) for s in scopes):
        raise BadRequestData("scopes must be scope tokens (RFC 6749 §3.3)")
    roles = strings(body, "roles")
    await require_grantable(runtime, caller, set(roles), org.home_tenant if org else "")
    jwks = body.get("jwks")
    if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
        raise BadRequestData("jwks must be a JWK Set: {\"keys\": [...]} (RFC 7517 §5)")
    trusted = body.get("trusted", False)
    if not isinstance(trusted, bool):
        raise BadRequestData("trusted must be true or false")
    start, end = period(body)
    return {"name": text(body, "name", required=True), "organization_id": org_id,
            "auth_method": method, "redirect_uris": redirects,
            "post_logout_redirect_uris": _redirect_uris(body, "postLogoutRedirectUris"),
            "grant_types": tuple(grants), "scopes": tuple(scopes), "roles": tuple(roles),
            "purposes": _purposes(body), "jwks": jwks, "trusted": trusted,
            "valid_from": start, "valid_until": end}


async def register_client(runtime: AuthRuntime, body: dict[str, Any],
                          caller: Caller = TRUSTED) -> tuple[Client, str | None]:
    """A new client and its secret (None for public and private_key_jwt clients)."""
    fields = await parse_client(runtime, caller, body)
    client_id = body.get("clientId")
    if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.match(client_id)):
        raise BadRequestData("clientId must be 3-64 letters, digits, '_', '.' or '-'")
    try:
        client, secret = await runtime.directory.create_client(client_id=client_id, **fields)
    except ValueError as exc:
        raise AlreadyExists(str(exc)) from None
    await audit(runtime, caller, "client.create", client.client_id)
    return client, secret


async def find_client(runtime: AuthRuntime, client_id: str, caller: Caller = TRUSTED) -> Client:
    client = await runtime.directory.get_client(client_id)
    if client is None:
        raise ResourceNotFound(f"no client {client_id!r}")
    if not await org_in_scope(runtime, caller, client.organization_id):
        raise Forbidden("that client is outside your home tenant")
    return client


async def _manageable(runtime: AuthRuntime, caller: Caller, client: Client) -> None:
    org = await require_org(runtime, caller, client.organization_id)
    home = org.home_tenant if org else ""
    await require_grantable(runtime, caller, set(client.roles), home)
    await require_own_policies_covered(runtime, caller, "client", client.client_id, home)


async def change_client(runtime: AuthRuntime, client_id: str, body: dict[str, Any],
                        caller: Caller = TRUSTED) -> Client:
    """Apply a partial change, validated as a whole (e.g. grant types against redirect URIs)."""
    unknown = sorted(set(body) - CHANGEABLE)
    if unknown:
        raise BadRequestData(f"these fields cannot be changed: {unknown}")
    client = await find_client(runtime, client_id, caller)
    await _manageable(runtime, caller, client)
    merged = {**client.public(), "jwks": client.jwks, **body}
    fields = await parse_client(runtime, caller, merged)
    del fields["auth_method"]
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            raise BadRequestData("status must be 'active' or 'disabled'")
        fields["status"] = body["status"]
    changed = await runtime.directory.update_client(client_id, **fields)
    if changed is None:
        raise ResourceNotFound(f"no client {client_id!r}")
    await audit(runtime, caller, "client.change", client_id, fields=sorted(body))
    return changed


async def rotate_secret(runtime: AuthRuntime, client_id: str, caller: Caller = TRUSTED) -> str:
    client = await find_client(runtime, client_id, caller)
    await _manageable(runtime, caller, client)
    secret = await runtime.directory.rotate_client_secret(client_id)
    if secret is None:
        raise Conflict(f"client {client_id!r} authenticates without a secret "
                       f"({client.auth_method})")
    await audit(runtime, caller, "client.rotate_secret", client_id)
    return secret


async def delete_client(runtime: AuthRuntime, client_id: str, caller: Caller = TRUSTED) -> None:
    client = await find_client(runtime, client_id, caller)
    await _manageable(runtime, caller, client)
    await runtime.directory.delete_client(client_id)
    await audit(runtime, caller, "client.delete", client_id)


async def visible_clients(runtime: AuthRuntime, caller: Caller,
                          organization: str | None = None) -> list[Client]:
    clients = await runtime.directory.list_clients(organization)
    return [c for c in clients if await org_in_scope(runtime, caller, c.organization_id)]


# -- HTTP ---------------------------------------------------------------------------------------
async def post_client(request: Request) -> Response:
    """POST /admin/clients: 201 with the client and, once, its ``clientSecret``."""
    client, secret = await register_client(runtime_of(request), await json_body(request),
                                           admin_caller())
    return json_response(show(client, secret), 201,
                         headers={"Location": f"{BASE}/{client.client_id}",
                                  "Cache-Control": "no-store"})


async def list_clients(request: Request) -> Response:
    """GET /admin/clients[?organization=ID]."""
    clients = await visible_clients(runtime_of(request), admin_caller(),
                                    request.query_params.get("organization"))
    return json_response([show(c) for c in clients])


async def get_client(request: Request) -> Response:
    """GET /admin/clients/{id}."""
    return json_response(show(await find_client(runtime_of(request),
                                                request.path_params["client_id"], admin_caller())))


async def patch_client(request: Request) -> Response:
    """PATCH /admin/clients/{id}: 200 with the changed client."""
    client = await change_client(runtime_of(request), request.path_params["client_id"],
                                 await json_body(request), admin_caller())
    return json_response(show(client))


async def post_secret(request: Request) -> Response:
    """POST /admin/clients/{id}/secret: a new secret, shown once; the old one stops working."""
    client_id = request.path_params["client_id"]
    secret = await rotate_secret(runtime_of(request), client_id, admin_caller())
    return json_response({"clientId": client_id, "clientSecret": secret},
                         headers={"Cache-Control": "no-store"})


async def delete_client_route(request: Request) -> Response:
    """DELETE /admin/clients/{id}: 204."""
    await delete_client(runtime_of(request), request.path_params["client_id"], admin_caller())
    return Response(status_code=204)


ROUTES = [
    Route(BASE, post_client, methods=["POST"]),
    Route(BASE, list_clients, methods=["GET"]),
    Route(BASE + "/{client_id}", get_client, methods=["GET"]),
    Route(BASE + "/{client_id}", patch_client, methods=["PATCH"]),
    Route(BASE + "/{client_id}", delete_client_route, methods=["DELETE"]),
    Route(BASE + "/{client_id}/secret", post_secret, methods=["POST"]),
]
