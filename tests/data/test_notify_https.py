"""HTTPS notifications: certificates are checked, and a city's own CA can be trusted.

A throw-away CA and a server certificate for 127.0.0.1 are made with the openssl command (test
set-up only; the broker never shells out), and a real aiohttp receiver serves TLS with them.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from cityos.data.ngsild.notify.dispatcher import Notifier
from tests.data.test_notify_support import (
    MemoryStore,
    Registry,
    eventually,
    free_port,
    make_settings,
    render,
    row,
    running,
    subscription,
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, and server.pem / server.key for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=Kobe City test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d


@pytest.fixture
async def https_receiver(pki: Path) -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    app = web.Application()
    app.router.add_post("/notify", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield f"https://127.0.0.1:{port}/notify", received
    finally:
        await runner.cleanup()


async def test_unknown_ca_is_refused_and_counted(
        https_receiver: tuple[str, list[dict[str, object]]]) -> None:
    uri, received = https_receiver
    sub = subscription(uri)
    registry = Registry(sub)
    notifier = Notifier(MemoryStore(), registry, render, make_settings(notification_retries=0))
    async with running(notifier):
        notifier.submit([row([sub.id])])
        await eventually(lambda: notifier.metrics()["givenUp"] == 1)
    assert received == []
    assert registry.counters("", sub.id).times_failed == 1


async def test_city_ca_file_makes_the_endpoint_trusted(
        https_receiver: tuple[str, list[dict[str, object]]], pki: Path) -> None:
    uri, received = https_receiver
    sub = subscription(uri)
    registry = Registry(sub)
    settings = make_settings(notification_ca_file=str(pki / "ca.pem"))
    notifier = Notifier(MemoryStore(), registry, render, settings)
    async with running(notifier):
        notifier.submit([row([sub.id], n=7)])
        await eventually(lambda: len(received) == 1)
    assert registry.counters("", sub.id).times_sent == 1


def test_a_missing_ca_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Notifier(MemoryStore(), Registry(), render,
                 make_settings(notification_ca_file=str(tmp_path / "nowhere.pem")))
