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
    return runtime
