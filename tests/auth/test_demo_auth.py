"""``cityos serve --demo`` creates demo identities once, saves their secrets 0600, and they work."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from cityos.app import create_app
from cityos.core.access import ACCOUNT_URN
from cityos.core.settings import Settings
from cityos.ops.demo_auth import DEMO_TYPE, credentials_path, read_credentials

BASE = "http://testserver"


@pytest.fixture
async def demo_settings(database_url: str, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> Settings:
    if database_url.startswith("postgresql"):
        from tests.conftest import _empty_postgres

        await _empty_postgres(database_url)
        monkeypatch.chdir(tmp_path)          # the credentials go to ./cityos-data/
    else:
        database_url = f"sqlite:///{tmp_path}/cityos.db"
    return Settings.load(database_url=database_url, demo=True, insecure_no_auth=False,
                         password_hash="t=1,m=1024,p=1", public_url=BASE,
                         systems_poll_interval=0.0)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield app, client


async def client_token(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post("/auth/token", auth=("demo-app", secret),
                             data={"grant_type": "client_credentials", "scope": "entities:read"})


async def test_demo_identities_work_and_survive_a_restart(demo_settings: Settings) -> None:
    path = credentials_path(demo_settings)
    async with running(demo_settings) as (app, client):
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        values = read_credentials(path)
        assert {"resident.password", "resident.totp_secret", "developer.password",
                "operator.password", "auditor.password", "demo-app.client_secret"} <= set(values)
        # the printed client-credentials line: a token that reads the demo city
        answer = await client_token(client, values["demo-app.client_secret"])
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        found = await client.get("/ngsi-ld/v1/entities", params={"type": DEMO_TYPE, "limit": 2},
                                 headers={"Authorization": f"Bearer {token}"})
        assert found.status_code == 200, found.text
        assert len(found.json()) == 2
        # open data: no token at all reads the default tenant through demo-open-data
        anonymous = await client.get("/ngsi-ld/v1/entities", params={"type": DEMO_TYPE})
        assert anonymous.status_code == 200, anonymous.text
        assert anonymous.json()
        # ... but writes stay closed to anonymous callers
        refused = await client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "T"})
        assert refused.status_code == 401
        before = path.read_text()

    moved = dataclasses.replace(demo_settings, public_url="http://127.0.0.1:8081")
    async with running(moved) as (app, client):
        assert path.read_text() == before            # no secret rotated, nothing rewritten
        answer = await client_token(client, values["demo-app.client_secret"])
        assert answer.status_code == 200, answer.text
        directory = app.state.auth.directory
        assert [c.client_id for c in await directory.list_clients()] == [
            "cityos-console", "demo-app"]
        assert [o.id for o in await directory.list_organizations()] == [
            "demo-services", "kobe-city"]
        resident = await directory.find_account("resident")
        assert resident is not None and resident.roles == frozenset({"resident"})
        console = await directory.get_client("cityos-console")
        assert console is not None and console.redirect_uris == (   # served elsewhere now
            f"{BASE}/docs/oauth2-redirect", "http://127.0.0.1:8081/docs/oauth2-redirect")
        consents = await app.state.auth.consents.list(ACCOUNT_URN + resident.id)
        assert [(c.category, c.processor_org, c.purpose, c.state) for c in consents] == [
            ("location", "demo-services", "demo-navigation", "given")]


async def test_resident_totp_secret_and_password_verify(demo_settings: Settings) -> None:
    path = credentials_path(demo_settings)
    async with running(demo_settings) as (app, _client):
        values = read_credentials(path)
        runtime = app.state.auth
        resident = await runtime.directory.find_account("resident")
        assert resident is not None
        assert await runtime.passwords.verify(resident.password_hash, values["resident.password"])
        login = next(p for p in runtime.parts if hasattr(p, "totp"))
        code = pyotp.TOTP(values["resident.totp_secret"]).now()
        assert await login.totp.verify(resident.id, code)
        developer = await runtime.directory.find_account("developer")
        assert developer is not None and developer.organization_id == "demo-services"
        client = await runtime.directory.get_client("demo-app")
        assert client is not None and client.roles == ("developer",)
        assert [p.id for p in client.purposes] == ["demo-navigation"]
        console = await runtime.directory.get_client("cityos-console")
        assert console is not None and console.public_client and console.trusted
        assert console.redirect_uris == (f"{BASE}/docs/oauth2-redirect",)
