"""The OpenID provider's endpoints in the OpenAPI document (``/.well-known/*``, ``/auth/*``).

Bodies follow the code in ``cityos.auth.provider`` and ``cityos.auth.login``: RFC 6749 §5.1/§5.2
token answers, RFC 7009 revocation, RFC 7662 introspection, OIDC Core §5.3 userinfo, RFC 7517
JWKS, OIDC Discovery §3 / RFC 8414 §2 metadata.  All of them are open (no bearer token): the
token endpoints authenticate the client themselves.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str, example: Any = None) -> Schema:
    content: Schema = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {JSON: content}}


def _form(properties: Schema, required: list[str], example: Schema) -> Schema:
    return {"required": True, "content": {FORM: {
        "schema": {"type": "object", "required": required, "properties": properties},
        "example": example}}}


def _op(op_id: str, summary: str, responses: Schema, **extra: Any) -> Schema:
    return {"operationId": op_id, "tags": ["Auth"], "summary": summary, **extra,
            "responses": responses}


OAUTH_ERROR = _json(_ref("OAuthError"), "RFC 6749 §5.2 error (400; 401 invalid_client with "
                    "`WWW-Authenticate: Basic`)",
                    {"error": "invalid_grant", "error_description": "the code was already used"})
_CLIENT_AUTH = ("Clients authenticate with HTTP Basic (`client_secret_basic`), with `client_id` "
                "+ `client_secret` in the form (`client_secret_post`), or - public clients - "
                "with `client_id` alone (`none`).")
_TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9..."


def provider_schemas() -> dict[str, Schema]:
    return {
        "OAuthError": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "enum": [
                "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"]},
            "error_description": {"type": "string"}}},
        "TokenResponse": {"type": "object", "required": ["access_token", "token_type",
                                                          "expires_in"], "properties": {
            "access_token": {"type": "string", "description": "RFC 9068 JWT (`typ: at+jwt`)"},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer", "description": "seconds (CITYOS_AUTH_ACCESS_TTL)"},
            "scope": {"type": "string"},
            "refresh_token": {"type": "string", "description": "code flow only; rotated on use"},
            "id_token": {"type": "string", "description": "with scope openid"}}},
        "Introspection": {"type": "object", "required": ["active"], "properties": {
            "active": {"type": "boolean"}, "scope": {"type": "string"},
            "client_id": {"type": "string"}, "sub": {"type": "string"},
            "exp": {"type": "integer"}, "iat": {"type": "integer"}, "iss": {"type": "string"},
            "token_type": {"type": "string"}}, "additionalProperties": True},
        "UserInfo": {"type": "object", "required": ["sub"], "properties": {
            "sub": {"type": "string", "description": "the account id"},
            "name": {"type": "string"}, "preferred_username": {"type": "string"},
            "email": {"type": "string"}, "organization": {"type": ["string", "null"]},
            "tenant": {"type": "string"}}},
        "JWKS": {"type": "object", "required": ["keys"], "properties": {
            "keys": {"type": "array", "items": {"type": "object", "additionalProperties": True}}}},
        "ProviderMetadata": {"type": "object", "required": ["issuer", "token_endpoint"],
                             "additionalProperties": True, "properties": {
                                 "issuer": {"type": "string"},
                                 "authorization_endpoint": {"type": "string"},
                                 "token_endpoint": {"type": "string"},
                                 "jwks_uri": {"type": "string"},
                                 "scopes_supported": {"type": "array",
                                                      "items": {"type": "string"}}}},
    }


def _token_post() -> Schema:
    form = _form({
        "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token",
                                                  "client_credentials"]},
        "code": {"type": "string"}, "redirect_uri": {"type": "string"},
        "code_verifier": {"type": "string", "description": "PKCE (RFC 7636 §4.5)"},
        "refresh_token": {"type": "string"}, "scope": {"type": "string"},
        "client_id": {"type": "string"}, "client_secret": {"type": "string"}},
        ["grant_type"], {"grant_type": "client_credentials", "scope": "entities:read"})
    return _op("token_endpoint", "Token endpoint (RFC 6749 §3.2)", {
        "200": _json(_ref("TokenResponse"), "Tokens (`Cache-Control: no-store`)",
                     {"access_token": _TOKEN, "token_type": "Bearer", "expires_in": 300,
                      "scope": "entities:read"}),
        "400": OAUTH_ERROR, "401": OAUTH_ERROR},
        description="Grants: `authorization_code` (with `code_verifier`), `refresh_token` "
                    "(rotation: a reused refresh token ends its family), `client_credentials` "
                    "(never personal-data scopes). " + _CLIENT_AUTH, requestBody=form)


def _token_form(op_id: str, summary: str, ok: Schema, description: str) -> Schema:
    form = _form({"token": {"type": "string"}, "token_type_hint": {"type": "string"},
                  "client_id": {"type": "string"}, "client_secret": {"type": "string"}},
                 ["token"], {"token": _TOKEN})
    return _op(op_id, summary, {"200": ok, "400": OAUTH_ERROR, "401": OAUTH_ERROR},
               description=description + " " + _CLIENT_AUTH, requestBody=form)


def provider_paths() -> dict[str, Schema]:
    metadata = _json(_ref("ProviderMetadata"), "Provider metadata")
    userinfo_ok = _json(_ref("UserInfo"), "Claims of the signed-in user",
                        {"sub": "9f1c...", "name": "Demo resident",
                         "preferred_username": "resident", "organization": None, "tenant": ""})
    bearer_error = {"description": "RFC 6750 §3.1 error in `WWW-Authenticate` "
                                   "(invalid_token 401, insufficient_scope 403)",
                    "content": {JSON: {"schema": _ref("OAuthError")}}}
    userinfo = {"summary": "UserInfo (OIDC Core §5.3)",
                "description": "Needs a user's access token with `openid`; `profile` and `email` "
                               "widen the claims.",
                "security": [{"bearerAuth": []}, {"oauth2": ["openid"]}],
                "responses": {"200": userinfo_ok, "401": bearer_error, "403": bearer_error}}
    return {
        "/.well-known/openid-configuration": {"get": _op(
            "discovery", "OpenID Connect Discovery 1.0 §3", {"200": metadata})},
        "/.well-known/oauth-authorization-server": {"get": _op(
            "discovery_oauth", "OAuth 2.0 Authorization Server Metadata (RFC 8414 §2)",
            {"200": metadata})},
        "/auth/jwks.json": {"get": _op("jwks", "Public signing keys (RFC 7517 JWK Set)", {
            "200": _json(_ref("JWKS"), "Current, next and retired keys")})},
        "/auth/token": {"post": _token_post()},
        "/auth/revoke": {"post": _token_form(
            "revoke", "Revoke a token (RFC 7009)", {"description": "Revoked, or unknown (§2.2)"},
            "A refresh token ends its grant and that grant's access tokens; an access token is "
            "revoked by its `jti`. Only the client the token was issued to can revoke it.")},
        "/auth/introspect": {"post": _token_form(
            "introspect", "Introspect a token (RFC 7662)",
            _json(_ref("Introspection"), "Whether the token is active, and its claims",
                  {"active": True, "scope": "entities:read", "client_id": "demo-app",
                   "sub": "demo-app", "exp": 1790000000, "token_type": "Bearer"}),
            "For confidential clients (resource servers).")},
        "/auth/userinfo": {"get": {"operationId": "userinfo", "tags": ["Auth"], **userinfo},
                           "post": {"operationId": "userinfo_post", "tags": ["Auth"], **userinfo}},
        "/auth/authorize": {"get": _op(
            "authorize", "Authorization endpoint (browser; RFC 6749 §4.1.1, OIDC Core §3.1.2)",
            {"302": {"description": "To the sign-in page, or back to `redirect_uri` with `code`, "
                                    "`state` and `iss` (RFC 9207)"},
             "400": {"description": "An error page: unknown client or redirect_uri (never "
                                    "redirected, RFC 6749 §4.1.2.1)"}},
            parameters=[{"name": n, "in": "query", "required": n in _REQUIRED,
                         "schema": {"type": "string"}} for n in _AUTHORIZE_PARAMS])},
        **_pages(),
    }


_AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                     "code_challenge", "code_challenge_method", "acr_values", "max_age", "prompt")
_REQUIRED = ("response_type", "client_id", "redirect_uri", "code_challenge",
             "code_challenge_method")


def _pages() -> dict[str, Schema]:
    """The login block's HTML pages (a person's browser uses them, not an API client)."""
    html = {"200": {"description": "The page", "content": {HTML: {"schema": {"type": "string"}}}},
            "303": {"description": "On to the next step"}}
    out: dict[str, Schema] = {}
    for path, op_id, summary in (
            ("/auth/login", "login", "Sign-in page: username and password"),
            ("/auth/mfa", "mfa", "Second factor: a TOTP or recovery code"),
            ("/auth/mfa/setup", "mfa_setup", "Enrol an authenticator app (TOTP, RFC 6238)"),
            ("/auth/approve", "approve", "Approve an application's access"),
            ("/auth/logout", "logout", "Sign out (OIDC RP-Initiated Logout 1.0)")):
        out[path] = {"get": _op(op_id, summary, html),
                     "post": _op(op_id + "_submit", summary + " (form post)", html)}
    out["/auth/static/login.css"] = {"get": _op("stylesheet", "The sign-in pages' stylesheet", {
        "200": {"description": "CSS", "content": {"text/css": {"schema": {"type": "string"}}}}})}
    return out
