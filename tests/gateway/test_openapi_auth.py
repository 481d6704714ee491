"""The OpenAPI document describes authentication: schemes, per-operation security, the auth APIs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.routing import Route

from cityos.app import create_app
from cityos.auth.routes_actions import OPEN, action_of
from cityos.core.access import PD_CATEGORIES
from cityos.core.settings import Settings

BASE = "http://testserver"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def app() -> Any:
    return create_app(Settings.load(database_url="sqlite://", insecure_no_auth=False,
                                    public_url=BASE, systems_poll_interval=0.0))


@pytest.fixture
async def doc(app: Any) -> dict[str, Any]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            answer = await client.get("/openapi.json")      # open: no token needed
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, item[method]) for path, item in doc["paths"].items()
            for method in METHODS if method in item]


async def test_the_document_declares_the_security_schemes(doc: dict[str, Any]) -> None:
    OpenAPIV31SpecValidator(doc).validate()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer",
                                     "bearerFormat": "JWT"}
    code = schemes["oauth2"]["flows"]["authorizationCode"]
    assert code["authorizationUrl"] == f"{BASE}/auth/authorize"
    assert code["tokenUrl"] == code["refreshUrl"] == f"{BASE}/auth/token"
    assert {"entities:read", "admin", "consent", "audit"} <= set(code["scopes"])
    assert {f"pd:{c}" for c in PD_CATEGORIES} <= set(code["scopes"])
    machine = schemes["clientCredentials"]["flows"]["clientCredentials"]
    assert not any(s.startswith("pd:") for s in machine["scopes"])
    assert doc["security"] == [{"bearerAuth": []}, {"oauth2": []}]


async def test_open_operations_need_no_token_and_the_others_say_what_they_need(
        doc: dict[str, Any]) -> None:
    for path, method, op in _operations(doc):
        if path == "/auth/userinfo":      # open to the middleware, checks its own token
            assert op["security"][0] == {"bearerAuth": []}
        elif action_of(method.upper(), path) == OPEN:
            assert op["security"] == [], (method, path)
        else:
            assert op.get("security", doc["security"]), (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
    paths = doc["paths"]
    for open_path in ("/health", "/.well-known/openid-configuration", "/auth/token",
                      "/auth/jwks.json", "/iot/json", "/iot/d"):
        assert all(op["security"] == [] for m, op in paths[open_path].items() if m in METHODS)
    assert paths["/ngsi-ld/v1/jsonldContexts/{ctx_id}"]["get"]["security"] == []
    assert paths["/ngsi-ld/v1/entities"]["get"]["security"][1] == {"oauth2": ["entities:read"]}
    assert paths["/admin/policies"]["post"]["security"][1] == {"oauth2": ["admin"]}
    denied = doc["components"]["responses"]["AuthRequired"]["content"]["application/problem+json"]
    assert set(denied["example"]) >= {"type", "title", "status", "detail"}


async def test_every_admin_me_and_audit_route_of_the_app_is_documented(
        app: Any, doc: dict[str, Any]) -> None:
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and re.match(r"^/(admin|me|audit)(/|$)", route.path):
            for method in (route.methods or set()) - {"HEAD"}:
                served.add((route.path, method.lower()))
    documented = {(path, method) for path, method, _ in _operations(doc)}
    assert len(served) > 30
    assert served - documented == set()
    for path in ("/auth/token", "/auth/revoke", "/auth/introspect", "/auth/userinfo",
                 "/auth/jwks.json", "/.well-known/openid-configuration"):
        assert path in doc["paths"]
    token = doc["paths"]["/auth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert "client_credentials" in form["schema"]["properties"]["grant_type"]["enum"]


async def test_the_console_signs_in_with_pkce_and_serves_its_redirect_page(app: Any) -> None:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            page = await client.get("/docs")
            redirect = await client.get("/docs/oauth2-redirect?code=x&state=y")
            script = await client.get("/docs/static/oauth2-redirect.js")
    if page.status_code == 503:
        pytest.skip("swagger-ui-bundle-v2 is not installed")
    assert 'clientId: "cityos-console"' in page.text
    assert "usePkceWithAuthorizationCodeGrant: true" in page.text
    assert "persistAuthorization: true" in page.text
    assert '"/docs/oauth2-redirect"' in page.text
    assert redirect.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", redirect.headers["content-security-policy"])
    assert nonce is not None and f'nonce="{nonce[1]}"' in redirect.text
    assert '<script src="/docs/static/oauth2-redirect.js"' in redirect.text
    assert redirect.headers["cache-control"] == "no-store"
    assert script.status_code == 200


@pytest.fixture
def demo_server(tmp_path: Any) -> Any:
    """``cityos serve --demo`` with access control on, by uvicorn on a free loopback port."""
    import asyncio
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(Settings.load(database_url=f"sqlite:///{tmp_path}/cityos.db", demo=True,
                                   insecure_no_auth=False, password_hash="t=1,m=1024,p=1",
                                   public_url=base, systems_poll_interval=0.0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield base, tmp_path / "demo-credentials.txt"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_authorize_in_the_console_signs_in_with_pkce(demo_server: Any) -> None:
    """Authorize -> the provider's sign-in popup -> /docs/oauth2-redirect (under its CSP) ->
    token: the console then holds a token of the demo operator."""
    from playwright.sync_api import sync_playwright

    from cityos.ops.demo_auth import read_credentials

    base, credentials = demo_server
    password = read_credentials(credentials)["operator.password"]
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/docs")
            page.locator("button.authorize").first.click()
            block = page.locator(".auth-container", has_text="authorizationCode").first
            with page.expect_popup() as opened:
                block.locator("button.authorize").click()
            popup = opened.value
            # (the sign-in pages name no icon, so the browser asks for /favicon.ico: not ours)
            popup.on("console", lambda m: problems.append(m.text) if m.type == "error"
                     and "favicon" not in str(m.location.get("url")) else None)
            popup.wait_for_load_state()
            assert popup.url.startswith(f"{base}/auth/login")
            popup.fill("input[name=username]", "operator")
            popup.fill("input[name=password]", password)
            popup.click("button[type=submit]")
            popup.wait_for_event("close", timeout=20_000)
            # the oauth2 block now shows "Authorized" with a Logout button
            page.locator(".auth-container button", has_text="Logout").first.wait_for(
                timeout=10_000)
        finally:
            browser.close()
    assert problems == [], f"errors in the browser: {problems}"
