"""Fixtures of the auth tests: the app with access control ON, and real tokens.

``token_for`` mints access tokens through the app's own issuer (no login flow), so each test says
who the caller is in one line; the login and code flows have tests of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cityos.core.settings import Settings

BASE = "http://testserver"
ALL_SCOPES = ("entities:read entities:write subscriptions csources iot systems import admin "
              "consent audit")


@pytest.fixture
def auth_settings(database_url: str) -> Settings:
    """Access control on, cheap password hashing, a fixed public URL."""
    return Settings.load(database_url=database_url, insecure_no_auth=False,
                         password_hash="t=1,m=1024,p=1", public_url=BASE, max_batch_size=100,
                         max_page_size=200, systems_poll_interval=0.0)


@pytest.fixture
async def auth_runtime(auth_settings: Settings) -> AsyncIterator[Any]:
    """The identity block alone (no app), started on an empty database."""
    from cityos.auth import build_auth
    from tests.conftest import _empty_postgres

    if auth_settings.database_url.startswith("postgresql"):
        await _empty_postgres(auth_settings.database_url)
    runtime = build_auth(auth_settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def auth_app(auth_settings: Settings) -> AsyncIterator[Any]:
    from tests.conftest import started_app

    async with started_app(auth_settings) as application:
        yield application


@pytest.fixture
async def auth_client(auth_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


TokenFor = Callable[..., Awaitable[str]]


@pytest.fixture
def token_for(auth_app: Any) -> TokenFor:
    """``await token_for(roles=["operator"], scopes="entities:read", tenant="", ...)``: a real
    access token of the app's issuer for a fresh account (kind user) or client (kind client)."""
    runtime = auth_app.state.auth
    clients: set[str] = set()

    async def mint(roles: tuple[str, ...] | list[str] = ("resident",), scopes: str = ALL_SCOPES,
                   tenant: str = "", kind: str = "user", subject: str | None = None,
                   organization: str | None = None, amr: tuple[str, ...] = ("pwd",),
                   acr: str | None = "urn:cityos:acr:pwd", auth_time: int | None = None,
                   purpose: str | None = None, client_id: str = "test-client") -> str:
        import time
        import uuid

        if client_id not in clients and await runtime.directory.get_client(client_id) is None:
            await runtime.directory.create_client(client_id, client_id=client_id,
                                                  organization_id=organization)
        clients.add(client_id)
        if subject is None and kind == "user":
            account = await runtime.directory.create_account(
                f"user-{uuid.uuid4().hex[:8]}", roles=tuple(roles), organization_id=organization)
            subject = account.id
        token, _ = await runtime.tokens.issue_access_token(
            subject=subject or client_id, kind=kind, client_id=client_id, scope=scopes,
            roles=list(roles), organization=organization, tenant=tenant, acr=acr, amr=amr,
            auth_time=auth_time if auth_time is not None else int(time.time()), purpose=purpose)
        return str(token)

    return mint
