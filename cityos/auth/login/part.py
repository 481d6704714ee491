"""The login part of the auth runtime: its tables, shared state and routes."""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from cityos.auth.directory import Account
from cityos.auth.login.authorize import APPROVALS_DDL
from cityos.auth.login.guard import AttemptWindow, Csrf
from cityos.auth.login.keys import Sealer
from cityos.auth.login.pages import Cookies
from cityos.auth.login.sessions import Session, SessionStore
from cityos.auth.login.totp import TotpStore
from cityos.auth.secret_key import derive_key, load_or_create
from cityos.core.access import AuditRecord

log = logging.getLogger("cityos.auth.login")


class LoginPart:
    """Sessions, TOTP, CSRF and throttling shared by the login pages."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.sessions = SessionStore(runtime.db)
        self.attempts = AttemptWindow()
        self.cookies = Cookies(runtime.public_url)
        self._key_with(secrets.token_bytes(32))   # replaced by the node's key at start

    def _key_with(self, secret: bytes) -> None:
        self.totp = TotpStore(self.runtime.db, Sealer(derive_key(secret, "login-totp")))
        self.enrolment = Sealer(derive_key(secret, "login-totp-enrolment"))
        self.csrf = Csrf(derive_key(secret, "login-csrf"), self.runtime.public_url)

    async def start(self) -> None:
        # the key file is read (or created) at start, not when the app object is built
        self._key_with(load_or_create(self.runtime.settings))
        await self.sessions.create_schema()
        await self.totp.create_schema()
        await self.runtime.db.script(APPROVALS_DDL)

    async def stop(self) -> None:
        return None

    async def current_session(self, request: Request) -> Session | None:
        """The request's live SSO session whose account may still sign in."""
        session = await self.sessions.get(request.cookies.get(self.cookies.session))
        if session is None:
            return None
        account = await self.live_account(session.account_id)
        # a status or role change (not_before) ends sessions started before it
        if account is None or session.created_at < account.not_before:
            return None
        return session

    async def live_account(self, account_id: str) -> Account | None:
        account: Account | None = await self.runtime.directory.get_account(account_id)
        return account if account is not None and account.status == "active" else None

    def go(self, path: str, next_url: str | None, status: int = 302) -> RedirectResponse:
        """Redirect to one of our pages, carrying the authorization request to return to."""
        target = path + ("?" + urlencode({"next": next_url}) if next_url else "")
        return RedirectResponse(target, status_code=status)

    async def revoke_tokens(self, method: str, subject: str) -> None:
        """``runtime.tokens.revoke_session`` / ``revoke_subject`` when the token side is wired."""
        fn = getattr(self.runtime.tokens, method, None)
        if fn is None:
            return
        result = fn(subject)
        if inspect.isawaitable(result):
            await result

    async def audit(self, event: str, subject: str, outcome: str = "ok", **detail: Any) -> None:
        sink = self.runtime.audit
        if sink is None:
            return
        try:
            await sink.append([AuditRecord(event=event, actor_kind="user", actor_sub=subject,
                                           outcome=outcome, detail=detail)])
        except Exception:      # auditing must not turn a login into a 500; it is logged instead
            log.exception("audit of %s failed", event)

    def routes(self) -> list[BaseRoute]:
        from cityos.auth.login import logout, views
        from cityos.auth.login.authorize import authorize
        from cityos.auth.login.pages import CSS_PATH, stylesheet

        def bind(fn: Any) -> Any:
            return functools.partial(fn, self)

        both = ["GET", "POST"]
        return [
            Route("/auth/authorize", bind(authorize), methods=["GET"]),
            Route("/auth/login", bind(views.login), methods=both),
            Route("/auth/mfa", bind(views.mfa), methods=both),
            Route("/auth/mfa/setup", bind(views.mfa_setup), methods=both),
            Route("/auth/approve", bind(views.approve), methods=both),
            Route("/auth/logout", bind(logout.logout), methods=both),
            Route("/me/sessions", bind(logout.my_sessions), methods=["GET", "DELETE"]),
            Route(CSS_PATH, stylesheet, methods=["GET"]),
        ]


def build_login(runtime: Any) -> LoginPart:
    return LoginPart(runtime)
