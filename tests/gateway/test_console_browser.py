"""The API console in a real browser: Debian's Chromium driven by Playwright, with no internet.

A real uvicorn server runs in a background thread; the page must load everything from it (every
other request is blocked and recorded), and "Try it out" -> "Execute" on GET /ngsi-ld/v1/types must
show the live 200 with an EntityTypeList.  The screenshot lands in tests/gateway/artifacts/.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cityos.app import create_app
from cityos.core.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's Chromium is not installed at /usr/bin/chromium "
                              "(apt-get install -y chromium)"),
]


@pytest.fixture
def live_server() -> Iterator[str]:
    """``create_app`` on in-memory SQLite, served by uvicorn on a free 127.0.0.1 port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings.load(database_url="sqlite://"))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              name="cityos-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the CityOS server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_try_it_out_on_entity_types(live_server: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    foreign: list[str] = []
    problems: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(live_server + "/"):
            route.continue_()
        else:  # a CDN, the online validator... the console must not need any of them
            foreign.append(route.request.url)
            route.abort()

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
            page.route("**/*", only_this_server)
            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{live_server}/docs", wait_until="load")
            assert page.title() == "CityOS API コンソール / API console"

            operation = page.locator("#operations-Discovery-retrieveEntityTypes")
            operation.wait_for(timeout=20_000)
            assert "/ngsi-ld/v1/types" in operation.locator(".opblock-summary").inner_text()
            operation.locator(".opblock-summary-control").click()
            operation.get_by_role("button", name="Try it out").click()
            operation.get_by_role("button", name="Execute").click()

            live = operation.locator(".live-responses-table tbody tr.response").first
            live.wait_for(timeout=20_000)
            assert live.locator(".response-col_status").inner_text().strip() == "200"
            body = live.locator(".response-col_description").inner_text()
            assert "EntityTypeList" in body
            request_url = operation.locator(".request-url pre").inner_text()
            assert request_url.startswith(f"{live_server}/ngsi-ld/v1/types")

            page.locator(".cityos-header").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
        finally:
            browser.close()
    assert foreign == [], f"the console reached outside the server: {foreign}"
    assert problems == [], f"errors in the browser console: {problems}"
