"""What every OAuth endpoint shares: form parsing, client authentication, RFC 6749 §5.2 errors.

The endpoints are plain Starlette handlers over joserfc, not Authlib's ``AuthorizationServer``:
Authlib's server is synchronous (its grants call the store from inside), which in this async app
would mean a thread hop per request and ``from_thread`` calls back into the store; the flows we
need (code + PKCE S256, refresh rotation, client credentials) are a few dozen lines each when
written against our own compare-and-set tables (ADR 0013).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.auth.directory import hash_secret
from cityos.auth.directory.models import Client

MAX_FORM_BYTES = 64 * 1024
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_DUMMY_HASH = hash_secret("no such client")


class OAuthError(Exception):
    """An error response of RFC 6749 §5.2 (RFC 7009 and RFC 7662 use the same form)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = 401 if error == "invalid_client" else status

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.status == 401:
            # RFC 6749 §5.2: a failed client authentication answers 401 with the scheme it used
            headers["WWW-Authenticate"] = 'Basic realm="cityos"'
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers=headers)


def ok(body: dict[str, Any]) -> JSONResponse:
    """A successful token-endpoint answer (RFC 6749 §5.1: never cached)."""
    return JSONResponse(body, headers=NO_STORE)


def runtime_of(request: Request) -> Any:
    """The auth runtime the app put on its state (``cityos.auth.runtime.AuthRuntime``)."""
    return request.app.state.auth


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body; a repeated parameter is an error (RFC 6749 §3.2), an empty one
    counts as absent (§3.1)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "request body too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthError("invalid_request", "malformed form body") from error
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"parameter {key} is repeated")
        form[key] = value
    return {k: v for k, v in form.items() if v != ""}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise OAuthError("invalid_client", "malformed Basic credentials") from error
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(request: Request, form: dict[str, str], runtime: Any) -> Client:
    """The calling client: client_secret_basic, client_secret_post, or ``none`` for public
    clients (which then only present their client_id and rely on PKCE)."""
    if "client_assertion" in form:
        raise OAuthError("invalid_client", "private_key_jwt is not supported yet")
    basic = _basic_credentials(request)
    if basic is not None and "client_secret" in form:
        raise OAuthError("invalid_request", "use one client authentication method only")
    if basic is not None:
        client_id, secret = basic
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")  # type: ignore[assignment]
    if not client_id:
        raise OAuthError("invalid_client", "client authentication required")
    client: Client | None = await runtime.directory.get_client(client_id)
    if secret is not None:
        # hash even for unknown clients so the answer's timing says nothing about the id
        matches = hmac.compare_digest(hash_secret(secret),
                                      (client.secret_hash if client else None) or _DUMMY_HASH)
        authenticated = client is not None and matches and client.auth_method in SECRET_METHODS
    else:
        authenticated = client is not None and client.public_client
    if client is None or not authenticated:
        raise OAuthError("invalid_client", "client authentication failed")
    if not client.valid_at(time.time()):
        raise OAuthError("invalid_client", "client is not active")
    return client
