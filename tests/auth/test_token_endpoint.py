"""The provider's HTTP side (codes from ``codes.issue_code``), in a bare Starlette app so HTTP
Basic client authentication reaches the handlers (the app's middleware answers it itself)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette

from cityos.auth.directory.models import Purpose
from cityos.auth.provider.codes import issue_code
from cityos.auth.runtime import AuthRuntime, build_auth
from cityos.auth.tokens import InvalidToken
from cityos.core.settings import Settings

BASE = "http://testserver"
REDIRECT = "https://app.example/callback"


@dataclass
class World:
    rt: AuthRuntime
    http: httpx.AsyncClient
    secret: str
    account_id: str


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    from tests.conftest import _empty_postgres

    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
    settings = Settings.load(database_url=database_url, insecure_no_auth=False,
                             password_hash="t=1,m=1024,p=1", public_url=BASE)
    rt = build_auth(settings)
    await rt.start()
    d = rt.directory
    await d.create_organization("kobe-city", "Kobe City", "municipality", home_tenant="kobe")
    _, secret = await d.create_client(
        "App", client_id="app", organization_id="kobe-city", redirect_uris=(REDIRECT,),
        grant_types=("authorization_code", "refresh_token", "client_credentials"),
        scopes=("openid", "profile", "email", "entities:read", "subscriptions", "pd:location"),
        roles=("developer",), purposes=(Purpose("bus-app", "Bus arrival times"),))
    await d.create_client("SPA", client_id="spa", auth_method="none", redirect_uris=(REDIRECT,),
                          grant_types=("authorization_code", "refresh_token"))
    account = await d.create_account("hanako", name="Hanako", email="h@example.jp",
                                     organization_id="kobe-city", roles=("resident",))
    app = Starlette(routes=rt.routes)
    app.state.auth = rt
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield World(rt, http, secret or "", account.id)
    await rt.stop()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def new_code(w: World, challenge: str, client_id: str = "app",
                   scope: str = "openid profile entities:read") -> str:
    return await issue_code(w.rt.db, client_id=client_id, redirect_uri=REDIRECT, scope=scope,
                            account_id=w.account_id, session_id="sess-1", nonce="n-1",
                            code_challenge=challenge, auth_time=int(time.time()),
                            acr="urn:cityos:acr:pwd", amr=("pwd",))


async def token(w: World, basic: bool = True, **form: str) -> httpx.Response:
    auth = ("app", w.secret) if basic else None
    return await w.http.post("/auth/token", data=form, auth=auth)


async def exchange(w: World, code: str, verifier: str, **extra: str) -> httpx.Response:
    return await token(w, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                       code_verifier=verifier, **extra)


def error_of(r: httpx.Response) -> str:
    assert r.headers["cache-control"] == "no-store"
    return str(r.json()["error"])


async def test_discovery_and_jwks(world: World) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        meta = (await world.http.get(path)).json()
        assert meta["issuer"] == BASE and meta["token_endpoint"] == f"{BASE}/auth/token"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert meta["authorization_response_iss_parameter_supported"] is True
    r = await world.http.get("/auth/jwks.json")
    assert r.headers["cache-control"] == "max-age=3600"
    assert [k["kty"] for k in r.json()["keys"]] == ["RSA"] and "d" not in r.json()["keys"][0]


async def test_client_credentials(world: World) -> None:
    r = await token(world, grant_type="client_credentials", scope="entities:read")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300 and "refresh_token" not in body
    who = await world.rt.tokens.validate(body["access_token"])
    assert (who.kind, who.subject, who.organization, who.home_tenant, who.purpose) == \
        ("client", "app", "kobe-city", "kobe", "bus-app")
    assert who.roles == {"developer"} and who.scopes == {"entities:read"}
    # no scope asked: every allowed one except user-only and personal-data scopes
    r = await token(world, basic=False, grant_type="client_credentials", client_id="app",
                    client_secret=world.secret)
    assert r.json()["scope"] == "entities:read subscriptions"


async def test_client_credentials_refusals(world: World) -> None:
    r = await world.http.post("/auth/token", data={"grant_type": "client_credentials"},
                              auth=("app", "wrong"))
    assert r.status_code == 401 and error_of(r) == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert (await world.http.post("/auth/token", data={"grant_type": "client_credentials"},
                                  auth=("nobody", "x"))).status_code == 401
    for scope in ("pd:location", "admin", "openid"):
        r = await token(world, grant_type="client_credentials", scope=scope)
        assert r.status_code == 400 and error_of(r) == "invalid_scope"
    r = await world.http.post("/auth/token", data={"grant_type": "client_credentials",
                                                   "client_id": "spa"})
    assert error_of(r) == "unauthorized_client"
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        assert error_of(await token(world, grant_type=grant)) == "unsupported_grant_type"
    r = await world.http.post("/auth/token", content=b"grant_type=client_credentials&scope=a"
                              b"&scope=b", auth=("app", world.secret),
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert error_of(r) == "invalid_request"
    await world.rt.directory.update_client("app", status="disabled")
    assert (await token(world, grant_type="client_credentials")).status_code == 401


async def test_code_exchange(world: World) -> None:
    verifier, challenge = pkce()
    body = (await exchange(world, await new_code(world, challenge), verifier)).json()
    who = await world.rt.tokens.validate(body["access_token"])
    assert (who.kind, who.subject, who.home_tenant, who.session_id, who.amr) == \
        ("user", world.account_id, "kobe", "sess-1", ("pwd",))
    assert who.roles == {"resident"} and who.grant_id and body["refresh_token"]
    keys = KeySet.import_key_set((await world.http.get("/auth/jwks.json")).json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    assert id_token.header["typ"] == "JWT"
    assert id_token.claims["aud"] == "app" and id_token.claims["nonce"] == "n-1"
    assert id_token.claims["sub"] == world.account_id and id_token.claims["iss"] == BASE
    with pytest.raises(InvalidToken):                 # an ID token is not an access token
        await world.rt.tokens.validate(body["id_token"])
    # a public client exchanges with its client_id alone (PKCE protects the code)
    verifier, challenge = pkce()
    r = await world.http.post("/auth/token", data={
        "grant_type": "authorization_code", "client_id": "spa", "redirect_uri": REDIRECT,
        "code": await new_code(world, challenge, client_id="spa", scope="entities:read"),
        "code_verifier": verifier})
    assert r.status_code == 200 and "id_token" not in r.json()


async def test_code_pkce_and_redirect_refusals(world: World) -> None:
    verifier, challenge = pkce()
    code = await new_code(world, challenge)
    assert error_of(await exchange(world, code, "x" * 43)) == "invalid_grant"
    assert error_of(await exchange(world, code, verifier)) == "invalid_grant"   # burned
    # "plain": the challenge is the verifier itself, which S256 never matches
    plain = secrets.token_urlsafe(48)
    assert error_of(await exchange(world, await new_code(world, plain), plain)) == "invalid_grant"
    r = await token(world, grant_type="authorization_code", redirect_uri=REDIRECT,
                    code=await new_code(world, challenge))
    assert error_of(r) == "invalid_grant"                                       # no verifier
    r = await token(world, grant_type="authorization_code", code=await new_code(world, challenge),
                    redirect_uri=REDIRECT + "/other", code_verifier=verifier)
    assert error_of(r) == "invalid_grant"
    assert error_of(await exchange(world, "no-such-code", verifier)) == "invalid_grant"
    r = await world.http.post("/auth/token", data={
        "grant_type": "authorization_code", "client_id": "spa", "redirect_uri": REDIRECT,
        "code": await new_code(world, challenge), "code_verifier": verifier})
    assert error_of(r) == "invalid_grant"                             # another client's code


async def test_reused_code_revokes_the_first_exchange(world: World) -> None:
    verifier, challenge = pkce()
    code = await new_code(world, challenge)
    first = (await exchange(world, code, verifier)).json()
    await world.rt.tokens.validate(first["access_token"])
    r = await exchange(world, code, verifier)
    assert r.status_code == 400 and error_of(r) == "invalid_grant"
    with pytest.raises(InvalidToken, match="grant"):
        await world.rt.tokens.validate(first["access_token"])
    assert error_of(await token(world, grant_type="refresh_token",
                                refresh_token=first["refresh_token"])) == "invalid_grant"


async def test_refresh_rotation_and_reuse(world: World) -> None:
    verifier, challenge = pkce()
    first = (await exchange(world, await new_code(world, challenge), verifier)).json()
    r = await token(world, grant_type="refresh_token", refresh_token=first["refresh_token"],
                    scope="openid")
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["scope"] == "openid"
    who = await world.rt.tokens.validate(second["access_token"])
    assert who.grant_id == (await world.rt.tokens.validate(first["access_token"])).grant_id
    r = await token(world, grant_type="refresh_token", refresh_token=second["refresh_token"],
                    scope="openid admin")
    assert error_of(r) == "invalid_scope"
    # the first refresh token again: reuse, the whole family dies
    for used in (first["refresh_token"], second["refresh_token"]):
        r = await token(world, grant_type="refresh_token", refresh_token=used)
        assert error_of(r) == "invalid_grant"
    for access in (first["access_token"], second["access_token"]):
        with pytest.raises(InvalidToken):
            await world.rt.tokens.validate(access)


async def _form(world: World, path: str, auth: Any = None, **form: str) -> httpx.Response:
    return await world.http.post(path, data=form, auth=auth or ("app", world.secret))


async def test_introspection(world: World) -> None:
    access = (await token(world, grant_type="client_credentials")).json()["access_token"]
    r = await _form(world, "/auth/introspect", token=access)
    assert r.json()["active"] is True and r.json()["sub"] == "app" and r.json()["scope"]
    assert (await _form(world, "/auth/introspect", token="garbage")).json() == {"active": False}
    verifier, challenge = pkce()
    refresh = (await exchange(world, await new_code(world, challenge), verifier)).json()
    r = await _form(world, "/auth/introspect", token=refresh["refresh_token"])
    assert r.json()["active"] is True and r.json()["token_type"] == "refresh_token"
    r = await world.http.post("/auth/introspect", data={"token": access, "client_id": "spa"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    await _form(world, "/auth/revoke", token=access)
    assert (await _form(world, "/auth/introspect", token=access)).json() == {"active": False}


async def test_revocation(world: World) -> None:
    verifier, challenge = pkce()
    body = (await exchange(world, await new_code(world, challenge), verifier)).json()
    r = await _form(world, "/auth/revoke", token=body["access_token"], token_type_hint="access_token")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    with pytest.raises(InvalidToken, match="revoked"):
        await world.rt.tokens.validate(body["access_token"])
    assert (await token(world, grant_type="refresh_token",
                        refresh_token=body["refresh_token"])).status_code == 200
    verifier, challenge = pkce()
    body = (await exchange(world, await new_code(world, challenge), verifier)).json()
    assert (await _form(world, "/auth/revoke", token=body["refresh_token"])).status_code == 200
    assert error_of(await token(world, grant_type="refresh_token",
                                refresh_token=body["refresh_token"])) == "invalid_grant"
    with pytest.raises(InvalidToken):           # the grant's access tokens die with it
        await world.rt.tokens.validate(body["access_token"])
    assert (await _form(world, "/auth/revoke", token="unknown")).status_code == 200
    assert (await _form(world, "/auth/revoke", auth=("app", "bad"), token="x")).status_code == 401


async def test_userinfo(world: World) -> None:
    verifier, challenge = pkce()
    body = (await exchange(world, await new_code(world, challenge), verifier)).json()
    r = await world.http.get("/auth/userinfo",
                             headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.json() == {"sub": world.account_id, "organization": "kobe-city", "tenant": "kobe",
                        "name": "Hanako", "preferred_username": "hanako"}
    client = (await token(world, grant_type="client_credentials")).json()["access_token"]
    r = await world.http.post("/auth/userinfo", headers={"Authorization": "Bearer " + client})
    assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
    assert (await world.http.get("/auth/userinfo")).status_code == 401
    r = await world.http.get("/auth/userinfo", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]


async def test_through_the_whole_app(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    # behind the app's middleware (client_secret_post: it answers Authorization: Basic itself)
    _, secret = await auth_app.state.auth.directory.create_client(
        "cc", client_id="cc", grant_types=("client_credentials",), scopes=("entities:read",))
    r = await auth_client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": "cc", "client_secret": secret})
    assert r.status_code == 200, r.text
    assert (await auth_app.state.auth.tokens.validate(r.json()["access_token"])).subject == "cc"
    assert (await auth_client.get("/.well-known/openid-configuration")).json()["jwks_uri"] == \
        f"{BASE}/auth/jwks.json"


async def test_refresh_drops_personal_data_without_fresh_mfa(world: World) -> None:
    verifier, challenge = pkce()
    code = await new_code(world, challenge, scope="openid entities:read pd:location")
    first = (await exchange(world, code, verifier)).json()
    assert first["scope"] == "openid entities:read pd:location"
    r = await token(world, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.json()["scope"] == "openid entities:read"       # amr has no mfa: pd:* drops out
    await world.rt.directory.update_client("app", scopes=["openid", "entities:read"])
    verifier, challenge = pkce()
    r = await exchange(world, await new_code(world, challenge), verifier)
    assert r.json()["scope"] == "openid entities:read"       # "profile" no longer registered
