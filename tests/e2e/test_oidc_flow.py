"""A real OAuth client library (requests-oauthlib) against a running CityOS (issue #4, item 8).

The resident signs in through the login form, enrols TOTP when personal-data scopes ask for it,
approves the application, and the library exchanges the code with PKCE (S256).  The tokens then
work on the NGSI-LD and NGSI v2 APIs; refresh rotates and a replayed refresh token kills the
family; a second application signs in without a password (SSO); RP-initiated logout ends the
session and its tokens.  The ID token is verified against the published JWKS.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from requests_oauthlib import OAuth2Session

from cityos.auth.directory import opened_directory
from cityos.auth.passwords import Passwords
from tests.e2e.server import free_port, start_server, stop_server

PASSWORD = "hanako-no-himitsu-2026"
REDIRECT = "http://127.0.0.1:8765/callback"
SCOPE = ["openid", "profile", "entities:read", "pd:location"]
ENV = {"CITYOS_INSECURE_NO_AUTH": "0", "OAUTHLIB_INSECURE_TRANSPORT": "1",
       "CITYOS_PASSWORD_HASH": "t=1,m=1024,p=1"}


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def next_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["next"][0]


async def _setup(database_url: str) -> dict[str, Any]:
    """Accounts and applications, written to the directory before the server starts."""
    async with opened_directory(database_url) as directory:
        await directory.create_organization("navi", "Navi Inc.", "service-provider")
        hashed = await Passwords("t=1,m=1024,p=1").hash(PASSWORD)
        resident = await directory.create_account("hanako", password_hash=hashed,
                                                  roles=("resident",), name="山田花子")
        apps = {}
        for name in ("navi-app", "bus-app"):
            _, secret = await directory.create_client(
                name, client_id=name, organization_id="navi", redirect_uris=(REDIRECT,),
                post_logout_redirect_uris=("http://127.0.0.1:8765/bye",),
                scopes=tuple(SCOPE), grant_types=("authorization_code", "refresh_token"))
            apps[name] = secret
        _, loader_secret = await directory.create_client(
            "loader", client_id="loader", organization_id="navi",
            grant_types=("client_credentials",), scopes=("entities:read", "entities:write"),
            roles=("data-provider",))
        return {"resident": resident.id, "secrets": apps, "loader": loader_secret}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("oidc")
    url = f"sqlite:///{folder}/cityos.db"
    made = asyncio.run(_setup(url))
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"     # the test server speaks plain http
    port = free_port()
    # the issuer and cookie origin must be the address the client uses
    process, base = start_server(url, port=port,
                                 env={**ENV, "CITYOS_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    try:
        yield {"base": base, **made}
    finally:
        stop_server(process)


def sign_in(browser: requests.Session, base: str, auth_url: str, *, totp: list[str]) -> str:
    """Follow the browser's way from the authorization URL to the redirect with the code."""
    url = auth_url
    for _ in range(12):
        r = browser.get(url, allow_redirects=False)
        if r.status_code in (302, 303) and r.headers["location"].startswith(REDIRECT):
            return str(r.headers["location"])
        if r.status_code in (302, 303):
            url = base + r.headers["location"] if r.headers["location"].startswith("/") \
                else r.headers["location"]
            continue
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        path = urlsplit(url).path
        if path == "/auth/login":
            r = browser.post(f"{base}/auth/login", data={
                "csrf": csrf(r.text), "next": next_of(url), "username": "hanako",
                "password": PASSWORD}, allow_redirects=False)
        elif path == "/auth/mfa/setup":
            scan = browser.post(f"{base}/auth/mfa/setup", data={
                "csrf": csrf(r.text), "next": next_of(url), "password": PASSWORD})
            secret = re.search(r'<code id="secret">([^<]+)</code>', scan.text)
            assert secret, scan.text[:500]
            totp.append(secret.group(1))
            done = browser.post(f"{base}/auth/mfa/setup", data={
                "csrf": csrf(scan.text), "next": next_of(url),
                "enrolment": hidden(scan.text, "enrolment"),
                "code": pyotp.TOTP(totp[0]).now()})
            assert done.status_code == 200 and 'id="continue"' in done.text, done.text[:500]
            url = base + next_of(url)
            continue
        elif path == "/auth/mfa":
            r = browser.post(f"{base}/auth/mfa", data={
                "csrf": csrf(r.text), "next": next_of(url), "code": pyotp.TOTP(totp[0]).now()},
                allow_redirects=False)
        elif path == "/auth/approve":
            if "pd:location" in r.text:     # personal data asked: the page points to consents
                assert "/me/consents/page" in r.text
            r = browser.post(f"{base}/auth/approve", data={
                "csrf": csrf(r.text), "next": next_of(url), "decision": "approve"},
                allow_redirects=False)
        else:
            raise AssertionError(f"unexpected page {url}")
        assert r.status_code == 303, (path, r.status_code, r.text[:300])
        location = r.headers["location"]
        url = base + location if location.startswith("/") else location
    raise AssertionError("the sign-in did not finish")


def test_code_flow_with_pkce_refresh_sso_and_logout(server: dict[str, Any]) -> None:
    base = server["base"]
    meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    # data: a room and the resident's own position, written by a data provider's service
    loader = requests.post(meta["token_endpoint"], auth=("loader", server["loader"]), timeout=5,
                           data={"grant_type": "client_credentials",
                                 "scope": "entities:read entities:write"}).json()
    headers = {"Authorization": f"Bearer {loader['access_token']}"}
    for body in ({"id": "urn:ngsi-ld:Room:1", "type": "Room",
                  "temperature": {"type": "Property", "value": 21}},
                 {"id": "urn:ngsi-ld:PersonLocation:h1", "type": "PersonLocation",
                  "dataOwner": {"type": "Relationship",
                                "object": f"urn:cityos:account:{server['resident']}"},
                  "dataCategory": {"type": "Property", "value": "location"}}):
        r = requests.post(f"{base}/ngsi-ld/v1/entities", json=body, headers=headers, timeout=5)
        assert r.status_code == 201, r.text

    browser = requests.Session()
    totp: list[str] = []
    navi = OAuth2Session("navi-app", redirect_uri=REDIRECT, scope=SCOPE, pkce="S256")
    auth_url, state = navi.authorization_url(meta["authorization_endpoint"], nonce="n-0")
    callback = sign_in(browser, base, auth_url, totp=totp)
    returned = parse_qs(urlsplit(callback).query)
    assert returned["iss"] == [meta["issuer"]] and returned["state"] == [state]   # RFC 9207
    token = navi.fetch_token(meta["token_endpoint"], authorization_response=callback,
                             client_secret=server["secrets"]["navi-app"])
    assert {"access_token", "refresh_token", "id_token"} <= set(token)

    # the ID token, verified with the published keys
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["sub"] == server["resident"] and claims["aud"] == "navi-app"
    assert claims["nonce"] == "n-0" and "mfa" in claims["amr"]

    # the token works on both data APIs; the resident sees their own personal data
    r = navi.get(f"{base}/ngsi-ld/v1/entities?type=Room,PersonLocation")
    assert r.status_code == 200, r.text
    assert sorted(e["id"] for e in r.json()) == ["urn:ngsi-ld:PersonLocation:h1", "urn:ngsi-ld:Room:1"]
    assert navi.get(f"{base}/v2/entities?type=Room").status_code == 200
    assert navi.get(f"{base}/auth/userinfo").json()["name"] == "山田花子"

    # refresh rotates; replaying the old refresh token kills the whole family
    old_refresh = token["refresh_token"]
    refreshed = navi.refresh_token(meta["token_endpoint"], auth=("navi-app",
                                                                 server["secrets"]["navi-app"]))
    assert refreshed["refresh_token"] != old_refresh
    replay = requests.post(meta["token_endpoint"], auth=("navi-app", server["secrets"]["navi-app"]),
                           data={"grant_type": "refresh_token", "refresh_token": old_refresh},
                           timeout=5)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    again = requests.post(meta["token_endpoint"], auth=("navi-app", server["secrets"]["navi-app"]),
                          data={"grant_type": "refresh_token",
                                "refresh_token": refreshed["refresh_token"]}, timeout=5)
    assert again.status_code == 400

    # single sign-on: a second application, the same browser, no password asked
    bus = OAuth2Session("bus-app", redirect_uri=REDIRECT, scope=["openid", "entities:read"],
                        pkce="S256")
    bus_url, _ = bus.authorization_url(meta["authorization_endpoint"], nonce="n-1")
    first = browser.get(bus_url, allow_redirects=False)
    assert not first.headers["location"].startswith("/auth/login")
    bus_token = bus.fetch_token(meta["token_endpoint"],
                                authorization_response=sign_in(browser, base, bus_url, totp=totp),
                                client_secret=server["secrets"]["bus-app"])
    assert bus.get(f"{base}/ngsi-ld/v1/entities?type=Room").status_code == 200

    # RP-initiated logout ends the session and the tokens issued in it
    page = browser.get(f"{meta['end_session_endpoint']}", params={
        "id_token_hint": bus_token["id_token"], "client_id": "bus-app",
        "post_logout_redirect_uri": "http://127.0.0.1:8765/bye", "state": "bye-1"})
    assert page.status_code == 200, page.text[:300]
    done = browser.post(f"{base}/auth/logout", allow_redirects=False, data={
        "csrf": csrf(page.text), "client_id": "bus-app",
        "post_logout_redirect_uri": "http://127.0.0.1:8765/bye", "state": "bye-1"})
    assert done.status_code == 303 and done.headers["location"].endswith("state=bye-1")
    r = httpx.get(f"{base}/ngsi-ld/v1/entities?type=Room",
                  headers={"Authorization": f"Bearer {bus_token['access_token']}"})
    assert r.status_code == 401
    relogin = browser.get(bus_url, allow_redirects=False)
    assert relogin.headers["location"].startswith("/auth/login")
