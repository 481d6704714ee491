"""Authentication in the OpenAPI document: security schemes, who may call what, and the provider.

``add_auth`` declares ``bearerAuth`` (RFC 6750 JWT access tokens, RFC 9068), ``oauth2`` (code flow
with PKCE S256, RFC 7636) and ``clientCredentials`` (RFC 6749 §4.4); requires one of the first two
everywhere, and writes ``security: []`` on each operation the access table
(``cityos.auth.routes_actions``) leaves open, so the document and the middleware cannot disagree.
The provider's endpoints are described here, the admin and self-service APIs in
``openapi_auth_admin``.
"""

from __future__ import annotations

from typing import Any

from cityos.auth import OPEN, SELF, action_of, public_url_of
from cityos.core.access import ACTION_SCOPES, PD_CATEGORIES, PD_SCOPE_PREFIX
from cityos.core.settings import Settings

Schema = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"

# what each scope lets a token do (the actions come from cityos.core.access.ACTION_SCOPES)
SCOPE_TEXT = {
    "openid": "OpenID Connect: an ID token and /auth/userinfo",
    "profile": "name and preferred_username in the ID token and userinfo",
    "email": "the e-mail address in the ID token and userinfo",
    "offline_access": "refresh tokens that outlive the sign-in session (OIDC Core §11)",
    "entities:read": "read entities, types, attributes and their history",
    "entities:write": "create, change and delete entities and hosted @contexts",
    "subscriptions": "manage subscriptions (NGSI-LD and /v2)",
    "csources": "manage context-source registrations",
    "iot": "IoT agent provisioning: services and devices",
    "systems": "external systems pulled on a schedule",
    "import": "bulk imports (CSV, GeoJSON, ...)",
    "admin": "administration: accounts, organizations, roles, policies, clients",
    "consent": "the resident's own consent records (/me/consents)",
    "audit": "read the audit log (/audit, /audit/report)",
}
PD_TEXT = {"location": "位置情報 location", "movement": "移動履歴 movement", "health": "健康 health",
           "purchase": "購買 purchase", "contact": "連絡先 contact", "identity": "本人確認 identity",
           "image": "画像 image", "sensitive": "要配慮個人情報 sensitive"}


def scopes() -> dict[str, str]:
    """Every scope with its meaning: the actions it carries, and one per personal-data category."""
    out: dict[str, str] = {}
    for scope in ("openid", "profile", "email", "offline_access", *dict.fromkeys(ACTION_SCOPES.values())):
        actions = [a for a, s in ACTION_SCOPES.items() if s == scope]
        out[scope] = SCOPE_TEXT.get(scope, scope) + (f" ({', '.join(actions)})" if actions else "")
    for category in PD_CATEGORIES:
        out[PD_SCOPE_PREFIX + category] = (
            f"personal data of category {PD_TEXT.get(category, category)}: needs a recent "
            "multi-factor sign-in and the resident's consent for the client's purpose")
    return out


def security_schemes(issuer: str) -> Schema:
    token_url = f"{issuer}/auth/token"
    every = scopes()
    machine = {k: v for k, v in every.items()
               if not k.startswith(PD_SCOPE_PREFIX) and k not in ("openid", "profile", "email",
                                                                 "offline_access", "consent")}
    return {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "An access token of this server (RFC 9068 JWT, RS256, "
                                      "5 minutes by default) in `Authorization: Bearer <token>`."},
        "oauth2": {"type": "oauth2",
                   "description": "Sign in through CityOS's own OpenID provider. The code flow "
                                  "needs PKCE with S256 for every client (RFC 7636, RFC 9700).",
                   "flows": {"authorizationCode": {
                       "authorizationUrl": f"{issuer}/auth/authorize", "tokenUrl": token_url,
                       "refreshUrl": token_url, "scopes": every}}},
        "clientCredentials": {"type": "oauth2",
                              "description": "Server-to-server tokens of a confidential client "
                                             "(no personal-data scopes).",
                              "flows": {"clientCredentials": {"tokenUrl": token_url,
                                                              "refreshUrl": token_url,
                                                              "scopes": machine}}},
    }


def problem_schema() -> Schema:
    return {"type": "object", "required": ["type", "title", "status"],
            "description": "RFC 7807 problem details (`application/problem+json`; the NGSI-LD "
                           "API sends the same body as `application/json`).",
            "properties": {"type": {"type": "string", "format": "uri-reference"},
                           "title": {"type": "string"}, "status": {"type": "integer"},
                           "detail": {"type": "string"}},
            "additionalProperties": True}


def _problem_response(status: int, title: str, detail: str, challenge: str) -> Schema:
    body = {"type": f"urn:cityos:problem:{title}", "title": title, "status": status,
            "detail": detail}
    content = {"schema": {"$ref": "#/components/schemas/AuthProblem"}, "example": body}
    return {"description": {401: "No valid access token (RFC 6750 §3.1)",
                            403: "Authenticated, but no scope, policy or consent allows this"}[status],
            "headers": {"WWW-Authenticate": {"description": "The challenge, e.g. " + challenge,
                                             "schema": {"type": "string"}}},
            "content": {PROBLEM: content, JSON: content}}


def auth_responses() -> Schema:
    return {
        "AuthRequired": _problem_response(401, "Unauthorized", "this API needs an access token",
                                          'Bearer, Bearer error="invalid_token" or Bearer '
                                          'error="insufficient_user_authentication", '
                                          'acr_values="urn:cityos:acr:mfa"'),
        "AccessDenied": _problem_response(403, "Forbidden",
                                          "no policy allows entity.write in tenant '(default)'",
                                          'Bearer error="insufficient_scope", scope="admin"'),
    }


def _apply_security(paths: dict[str, Schema]) -> None:
    """``security: []`` where the access table says open; else the action's scope and 401/403."""
    for path, item in paths.items():
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            action = action_of(method.upper(), path)
            if action == OPEN:
                # open to the middleware; userinfo declares the bearer token it checks itself
                op.setdefault("security", [])
                continue
            scope = ACTION_SCOPES.get(action or "")
            if scope is not None:
                op["security"] = [{"bearerAuth": []}, {"oauth2": [scope]},
                                  {"clientCredentials": [scope]}]
            elif action == SELF:
                op["security"] = [{"bearerAuth": []}, {"oauth2": []}]
            responses = op.setdefault("responses", {})
            responses.setdefault("401", {"$ref": "#/components/responses/AuthRequired"})
            responses.setdefault("403", {"$ref": "#/components/responses/AccessDenied"})


def add_auth(doc: Schema, settings: Settings) -> Schema:
    """``doc`` with the security schemes, the auth and admin paths and per-operation security."""
    from cityos.gateway.openapi_auth_admin import admin_paths, admin_schemas
    from cityos.gateway.openapi_auth_provider import provider_paths, provider_schemas

    if settings.insecure_no_auth:
        # no identity block is served then (app.py): nothing to sign in to, nothing to document
        doc["info"]["description"] += (
            "\n* **Authentication** — off on this server (CITYOS_INSECURE_NO_AUTH, development "
            "only): every call is allowed without a token.")
        return doc
    issuer = public_url_of(settings)
    components = doc.setdefault("components", {})
    components["securitySchemes"] = security_schemes(issuer)
    components.setdefault("schemas", {}).update(
        {"AuthProblem": problem_schema(), **provider_schemas(), **admin_schemas()})
    components.setdefault("responses", {}).update(auth_responses())
    doc["paths"].update(provider_paths())
    doc["paths"].update(admin_paths())
    _apply_security(doc["paths"])
    doc["security"] = [{"bearerAuth": []}, {"oauth2": []}]
    doc["tags"] = [*doc.get("tags", []),
                   {"name": "Auth", "description": "認証: OpenID Connect provider, tokens"},
                   {"name": "Admin", "description": "管理: accounts, organizations, roles, "
                                                    "policies, clients"},
                   {"name": "Me", "description": "本人: profile, sessions, consents, audit trail"},
                   {"name": "Audit", "description": "監査: the audit log and provision report"}]
    doc["info"]["description"] += (
        "\n* **Authentication** — send `Authorization: Bearer <access token>`; get one from "
        f"`{issuer}/auth/token` (client credentials) or by signing in with \"Authorize\" "
        "(code flow + PKCE). Operations marked without a lock are open. See docs/auth.md.")
    return doc
