"""The login, MFA, MFA enrolment and approval pages (GET shows the form, POST handles it)."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cityos.auth.login.authorize import AuthzRequest, PageError, RedirectError, parse_request, store_approval
from cityos.auth.login.pages import PRE_SESSION_TTL, error_page, read_form, render, safe_next
from cityos.auth.login.sessions import ABSOLUTE_TTL, Session
from cityos.auth.login.totp import matching_step, new_recovery_codes, new_secret, qr_svg

if TYPE_CHECKING:
    from cityos.auth.login.part import LoginPart

ENROLMENT_TTL = 900       # the secret shown on the setup page must be confirmed within 15 min


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refused(part: LoginPart, request: Request, form: dict[str, str], binding: str | None,
             name: str) -> Response | None:
    """A 403 page for a cross-site POST or a missing / wrong CSRF token, else None."""
    if not part.csrf.same_origin(request) or not part.csrf.valid(binding, name, form.get("csrf")):
        return error_page(request, 403, "forbidden")
    return None


def _done(part: LoginPart, request: Request, session: Session, next_url: str | None) -> Response:
    """Continue the authorization request (or say "signed in") under the session's new id."""
    response: Response = (RedirectResponse(next_url, status_code=303) if next_url
                          else render(request, "message.html", message_key="signed_in"))
    part.cookies.set(response, part.cookies.session, session.cookie, ABSOLUTE_TTL)
    return response


async def _need_session(part: LoginPart, request: Request,
                        next_url: str | None) -> tuple[Session | None, Response | None]:
    session = await part.current_session(request)
    if session is not None:
        return session, None
    if next_url:
        return None, part.go("/auth/login", next_url, 303)
    return None, error_page(request, 401, "session_needed")


async def _form_and_session(part: LoginPart, request: Request) -> tuple[
        dict[str, str], str | None, Session | None, Response | None]:
    """The posted form (empty for a GET), its checked ``next`` and the caller's session; without
    a session, the response to answer instead (see :func:`_need_session`)."""
    form = await read_form(request) if request.method == "POST" else {}
    next_url = safe_next(form.get("next") if form else request.query_params.get("next"))
    session, problem = await _need_session(part, request, next_url)
    return form, next_url, session, problem


# -- password login ------------------------------------------------------------------------------
async def login(part: LoginPart, request: Request) -> Response:
    cookies = part.cookies
    if request.method == "GET":
        pre = request.cookies.get(cookies.pre) or ""
        fresh = len(pre) < 32 or len(pre) > 64
        if fresh:
            pre = secrets.token_urlsafe(32)
        response = _login_form(part, request, pre, safe_next(request.query_params.get("next")))
        if fresh:
            cookies.set(response, cookies.pre, pre, PRE_SESSION_TTL)
        return response
    form = await read_form(request)
    bound = request.cookies.get(cookies.pre)
    if (refused := _refused(part, request, form, bound, "login")) is not None:
        return refused
    next_url = safe_next(form.get("next"))
    if not part.attempts.hit(_client_ip(request)):
        return _login_form(part, request, bound or "", next_url, "too_many", 429)
    directory, passwords = part.runtime.directory, part.runtime.passwords
    username, password = form.get("username", "")[:200], form.get("password", "")[:256]
    account = await directory.find_account(username) if username else None
    # always one argon2 verification, also for unknown names: no timing oracle (ADR 0012 §5)
    ok = await passwords.verify(account.password_hash if account else None, password)
    now = int(time.time())
    if account is None or account.status != "active" or account.locked_until > now or not ok:
        if account is not None and account.status == "active" and account.locked_until <= now:
            until = await directory.note_login_failure(account.id, now)
            await part.audit("auth.locked" if until else "auth.login_failed", account.id, "failed")
        return _login_form(part, request, bound or "", next_url, "login_failed")
    await directory.note_login_success(account.id)
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        await directory.update_account(account.id, password_hash=await passwords.hash(password))
    old = await part.sessions.get(request.cookies.get(cookies.session))
    if old is not None:
        await part.sessions.revoke(old)
    session = await part.sessions.create(account.id, now)
    await part.audit("auth.login", account.id, amr=["pwd"])
    response = _done(part, request, session, next_url)
    cookies.clear(response, cookies.pre)
    return response


def _login_form(part: LoginPart, request: Request, pre: str, next_url: str | None,
                error: str | None = None, status: int = 200) -> Response:
    return render(request, "login.html", status, csrf=part.csrf.token(pre, "login"),
                  next=next_url or "", error=error)


# -- TOTP challenge ------------------------------------------------------------------------------
async def mfa(part: LoginPart, request: Request) -> Response:
    form, next_url, session, problem = await _form_and_session(part, request)
    if session is None:
        return problem or error_page(request, 401, "session_needed")
    if not await part.totp.enrolled(session.account_id):
        return part.go("/auth/mfa/setup", next_url, 303)
    error = None
    if request.method == "POST":
        if (refused := _refused(part, request, form, session.cookie, "mfa")) is not None:
            return refused
        if not part.attempts.hit(_client_ip(request)):
            error = "too_many"
        elif await _second_factor(part, session, form.get("code", "")[:64]):
            session = await part.sessions.complete_mfa(session)
            await part.audit("auth.mfa", session.account_id, amr=["pwd", "otp", "mfa"])
            return _done(part, request, session, next_url)
        else:
            error = "mfa_failed"
    return render(request, "mfa.html", 200 if error != "too_many" else 429,
                  csrf=part.csrf.token(session.cookie, "mfa"), next=next_url or "", error=error)


async def _second_factor(part: LoginPart, session: Session, code: str) -> bool:
    """Check a code; failures count toward the account lockout like wrong passwords."""
    account = await part.live_account(session.account_id)
    now = int(time.time())
    if account is None or account.locked_until > now:
        return False
    if await part.totp.verify(account.id, code):
        return True
    await part.runtime.directory.note_login_failure(account.id, now)
    await part.audit("auth.mfa", account.id, "failed")
    return False


# -- TOTP enrolment ------------------------------------------------------------------------------
async def mfa_setup(part: LoginPart, request: Request) -> Response:
    form, next_url, session, problem = await _form_and_session(part, request)
    if session is None:
        return problem or error_page(request, 401, "session_needed")
    now = int(time.time())
    if (await part.totp.enrolled(session.account_id)
            and not session.mfa_fresh(part.runtime.settings.auth_pd_max_age, now)):
        return render(request, "message.html", 409, message_key="already_enrolled")
    token = part.csrf.token(session.cookie, "mfa_setup")
    page = {"csrf": token, "next": next_url or ""}
    if request.method == "GET":
        return render(request, "mfa_setup.html", **page)
    if (refused := _refused(part, request, form, session.cookie, "mfa_setup")) is not None:
        return refused
    account = await part.live_account(session.account_id)
    if account is None or not part.attempts.hit(_client_ip(request)):
        return render(request, "mfa_setup.html", 429, error="too_many", **page)
    if "enrolment" not in form:       # step 1: the password again, then a new secret
        if account.locked_until > now or not await part.runtime.passwords.verify(
                account.password_hash, form.get("password", "")[:256]):
            await part.runtime.directory.note_login_failure(account.id, now)
            return render(request, "mfa_setup.html", error="login_failed", **page)
        secret = new_secret()
        return _scan_page(part, request, session, account.username, secret,
                          part.enrolment.seal(f"{secret}|{now}".encode(), session.sid), None, page)
    opened = part.enrolment.open(form["enrolment"], session.sid)
    secret, _, issued = (opened or b"").decode().partition("|")
    if not secret or not issued.isdigit() or now - int(issued) > ENROLMENT_TTL:
        return error_page(request, 400, "session_needed")
    step = matching_step(secret, form.get("code", "")[:64])
    if step is None:
        return _scan_page(part, request, session, account.username, secret, form["enrolment"],
                          "mfa_failed", page)
    codes = new_recovery_codes()
    await part.totp.enrol(account.id, secret, step, codes)
    session = await part.sessions.complete_mfa(session)
    await part.audit("auth.mfa", account.id, enrolled=True)
    response = render(request, "recovery.html", codes=codes, next=next_url or "")
    part.cookies.set(response, part.cookies.session, session.cookie, ABSOLUTE_TTL)
    return response


def _scan_page(part: LoginPart, request: Request, session: Session, username: str, secret: str,
               enrolment: str, error: str | None, page: dict[str, str]) -> Response:
    return render(request, "mfa_scan.html", qr=qr_svg(secret, username), secret=secret,
                  enrolment=enrolment, error=error, **page)


# -- approval ------------------------------------------------------------------------------------
async def approve(part: LoginPart, request: Request) -> Response:
    form, next_url, session, problem = await _form_and_session(part, request)
    if session is None or next_url is None:
        return problem or error_page(request, 400, detail="next must be an authorization request")
    try:
        req: AuthzRequest = await parse_request(part, parse_qsl(next_url.partition("?")[2]))
    except (PageError, RedirectError) as exc:
        return error_page(request, 400, detail=str(exc))
    if request.method == "POST":
        if (refused := _refused(part, request, form, session.cookie, "approve")) is not None:
            return refused
        if form.get("decision") != "approve":
            return req.back(part.runtime.public_url, 303, error="access_denied")
        await store_approval(part.runtime.db, session.account_id, req.client.client_id, req.scopes)
        return RedirectResponse(next_url, status_code=303)
    return render(request, "approve.html", csrf=part.csrf.token(session.cookie, "approve"),
                  next=next_url, client=req.client.name, scopes=req.scopes,
                  personal=any(s.startswith("pd:") for s in req.scopes))
