"""The auth block assembled: one object the composition root starts, stops and routes to.

Each part registers itself here in one line (tokens, login, consent, audit, admin), so app.py knows
only ``build_auth`` and the ``AuthRuntime`` it returns (ADR 0012 §1, ADR 0013).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute

from cityos.auth.directory import Directory
from cityos.auth.passwords import Passwords
from cityos.auth.policy import PolicyEvaluator
from cityos.core.settings import Settings
from cityos.core.sqldb import SqlDb

log = logging.getLogger("cityos.auth")


@dataclass
class AuthRuntime:
    """Everything the auth block holds for one process."""

    settings: Settings
    db: SqlDb
    directory: Directory
    evaluator: PolicyEvaluator
    passwords: Passwords
    public_url: str
    # filled by the parts (provider/, login/, consent/, security/) when they are built
    tokens: Any = None          # auth.tokens.TokenService: issue and validate access tokens
    consents: Any = None        # auth.consent: core.access.ConsentChecker
    audit: Any = None           # security.audit: core.access.AuditSink
    parts: list[Any] = field(default_factory=list)   # objects with async start()/stop()
    routes: list[BaseRoute] = field(default_factory=list)
    erasure_hooks: list[Any] = field(default_factory=list)  # async (account_id) -> None (AU-UM-1)

    async def start(self) -> None:
        await self.db.open()
        await self.directory.create_schema()
        await self.directory.seed()
        for part in self.parts:
            await part.start()
        await self.evaluator.refresh(force=True)

    async def stop(self) -> None:
        for part in reversed(self.parts):
            await part.stop()
        await self.db.close()


def public_url_of(settings: Settings) -> str:
    """The issuer / origin callers use (never taken from a request's Host header)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


def build_auth(settings: Settings) -> AuthRuntime:
    """The auth runtime for ``settings`` (also built in insecure mode: accounts stay manageable)."""
    db = SqlDb(settings.database_url)
    directory = Directory(db)
    runtime = AuthRuntime(settings=settings, db=db, directory=directory,
                          evaluator=PolicyEvaluator(directory),
                          passwords=Passwords(settings.password_hash),
                          public_url=public_url_of(settings))
    # -- parts: each adds its tables, background work and routes ------------------------------
    # token side of the provider first: the other parts issue, validate and revoke through it
    from cityos.auth.provider.endpoints import routes as provider_routes
    from cityos.auth.tokens import TokenService

    runtime.tokens = TokenService(settings, db, directory, runtime.public_url)
    runtime.parts.append(runtime.tokens)
    runtime.routes.extend(provider_routes())
    from cityos.auth.admin import ErasureSweep, admin_routes  # late: admin imports this module

    runtime.parts.append(ErasureSweep(runtime))
    runtime.routes.extend(admin_routes())
    # audit log first (consent changes write audit rows), then consents (SI-CS-6, DM-PD-1)
    from cityos.auth.consent import CONSENT_ROUTES, ConsentStore
    from cityos.security import AUDIT_ROUTES, AuditLog

    runtime.audit = AuditLog(db, settings.audit_retention)
    runtime.consents = ConsentStore(db, runtime.audit)
    runtime.parts += [runtime.audit, runtime.consents]
    runtime.routes += [*CONSENT_ROUTES, *AUDIT_ROUTES]
    runtime.erasure_hooks.append(runtime.consents.withdraw_account)   # idempotent (AU-UM-1)
    # browser side of the provider: login, SSO sessions, MFA, approval, logout (ADR 0012 §5-6)
    from cityos.auth.login import build_login

    login = build_login(runtime)
    runtime.parts.append(login)
    runtime.routes.extend(login.routes())
    return runtime
