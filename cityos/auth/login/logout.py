"""Logout: OIDC RP-Initiated Logout 1.0 at ``/auth/logout`` and "log out everywhere" at
``DELETE /me/sessions`` (with ``GET /me/sessions`` listing the caller's live sessions)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cityos.auth.directory import Client
from cityos.auth.login.pages import error_page, read_form, render
from cityos.core.access import current_access
from cityos.core.problems import Forbidden, Unauthorized

if TYPE_CHECKING:
    from cityos.auth.login.part import LoginPart


class _BadLogout(Exception):
    pass


def _hint_audience(part: LoginPart, hint: str) -> str | None:
    """The client an ``id_token_hint`` was issued to; the signature is checked by the token
    service, an expired ID token still being a valid hint (RP-Initiated Logout §2)."""
    verify = getattr(part.runtime.tokens, "verify_id_token", None)
    try:
        if verify is not None:
            claims = verify(hint, allow_expired=True)
        else:   # token side not wired (unit setups): the hint only picks whose URIs are checked
            payload = hint.split(".")[1]
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except Exception:     # InvalidToken, malformed JWT: the hint is unusable either way
        raise _BadLogout("id_token_hint is not a valid ID token of this provider") from None
    aud = claims.get("azp") or claims.get("aud") if isinstance(claims, dict) else None
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else None
    return aud if isinstance(aud, str) else None


async def _target(part: LoginPart, params: dict[str, str]) -> tuple[Client | None, str | None]:
    """The client and the exactly-registered post-logout redirect URI (or None)."""
    client_id = params.get("client_id") or None
    if params.get("id_token_hint"):
        aud = _hint_audience(part, params["id_token_hint"])
        if client_id and aud and aud != client_id:
            raise _BadLogout("client_id does not match id_token_hint")
        client_id = client_id or aud
    client = await part.runtime.directory.get_client(client_id) if client_id else None
    uri = params.get("post_logout_redirect_uri") or None
    if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
        raise _BadLogout("post_logout_redirect_uri is not registered for the client")
    return client, uri


def _after(request: Request, uri: str | None, state: str | None, status: int) -> Response:
    if uri is None:
        return render(request, "message.html", message_key="logged_out")
    query = urlencode({"state": state}) if state else ""
    sep = "&" if "?" in uri else "?"
    return RedirectResponse(uri + (sep + query if query else ""), status_code=status)


async def logout(part: LoginPart, request: Request) -> Response:
    cookies = part.cookies
    params = dict(request.query_params) if request.method == "GET" else await read_form(request)
    try:
        client, uri = await _target(part, params)
    except _BadLogout as exc:
        return error_page(request, 400, detail=str(exc))
    state = params.get("state") or None
    if request.method == "GET":
        session = await part.current_session(request)
        if session is None:       # nothing to end: straight back to the client
            return _after(request, uri, state, 302)
        return render(request, "logout.html", csrf=part.csrf.token(session.cookie, "logout"),
                      client_id=client.client_id if client else "", uri=uri or "", state=state or "")
    raw = request.cookies.get(cookies.session)
    if raw is not None:
        if not part.csrf.same_origin(request) or not part.csrf.valid(raw, "logout",
                                                                     params.get("csrf")):
            return error_page(request, 403, "forbidden")
        session = await part.sessions.get(raw)
        if session is not None:
            await part.sessions.revoke(session)
            await part.revoke_tokens("revoke_session", session.sid)
            await part.audit("auth.logout", session.account_id)
    response = _after(request, uri, state, 303)
    cookies.clear(response, cookies.session)
    return response


async def my_sessions(part: LoginPart, request: Request) -> Response:
    """The caller's SSO sessions; DELETE ends all of them and every token of the account."""
    access = current_access()
    if access is None:
        raise Unauthorized("sign in as a user to see your sessions")
    who = access.principal
    if who.kind != "user":
        raise Forbidden("only users have sign-in sessions")
    if request.method == "DELETE":
        ended = await part.sessions.revoke_account(who.subject)
        await part.revoke_tokens("revoke_subject", who.subject)
        await part.audit("auth.logout", who.subject, everywhere=True, sessions=ended)
        return Response(status_code=204)
    listed: list[dict[str, Any]] = await part.sessions.list_live(who.subject)
    for item in listed:
        item["current"] = item["sid"] == who.session_id
    return Response(orjson.dumps({"sessions": listed}), media_type="application/json")
