"""Fixtures and helpers shared by the subscription tests (no tests here).

The app is the real one from ``create_app`` on both engines.  Notification endpoints in these
tests point at 127.0.0.1, which the default SSRF policy refuses, so the settings allow it exactly
as an operator with a local receiver would (``CITYOS_NOTIFICATION_ALLOW=127.0.0.1``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from cityos.app import create_app
from cityos.core.settings import Settings
from cityos.data.ngsild.subscriptions import ROUTES, SubscriptionRegistry
from tests.conftest import _empty_postgres

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
RECEIVER = "http://127.0.0.1:9/notify"
KOBE_TYPE = "https://kobe.example.jp/vocab#ParkingSpot"
# an inline @context naming Kobe's vocabulary (no network needed)
KOBE_CONTEXT = {"ParkingSpot": KOBE_TYPE,
                "occupancy": "https://kobe.example.jp/vocab#occupancy",
                "駐車場名": "https://kobe.example.jp/vocab#name"}


def make_settings(database_url: str, **extra: Any) -> Settings:
    """Test settings that let notifications go to a receiver on 127.0.0.1."""
    values: dict[str, Any] = {"max_batch_size": 100, "max_page_size": 200,
                              "context_fetch_timeout": 2.0, "notification_allow": "127.0.0.1"}
    return Settings.load(database_url=database_url, **{**values, **extra})


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Overrides conftest's settings: notifications to 127.0.0.1 are allowed."""
    return make_settings(database_url)


@asynccontextmanager
async def running_app(settings: Settings, *, empty: bool = False) -> AsyncIterator[Any]:
    """A started app; ``empty`` first empties the PostgreSQL database (before start-up, so the
    registry does not load subscriptions a previous test left behind)."""
    if empty and settings.database_url.startswith("postgresql"):
        await _empty_postgres(settings.database_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _wire_subscriptions(application)
        yield application


async def _wire_subscriptions(application: Any) -> None:
    """Mount the subscription API when the composition root does not (yet) do it itself."""
    broker = application.state.broker
    if broker.registry is None:
        broker.registry = SubscriptionRegistry()
        await broker.registry.load(broker.store, broker.resolver)
    names = {getattr(route, "name", None) for route in application.router.routes}
    if "createSubscription" not in names:
        application.router.routes[0:0] = ROUTES


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    """Overrides conftest's app: emptied before start-up, with the subscription API."""
    async with running_app(settings, empty=True) as application:
        yield application


@asynccontextmanager
async def client_for(application: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of ``application``."""
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
        yield c


def subscription(**members: Any) -> dict[str, Any]:
    """A valid subscription body (core context only) with ``members`` replacing the defaults."""
    body: dict[str, Any] = {
        "type": "Subscription",
        "subscriptionName": "三宮の駐車場 / Sannomiya parking",
        "entities": [{"type": "ParkingSpot"}],
        "watchedAttributes": ["status"],
        "notification": {"endpoint": {"uri": RECEIVER, "accept": "application/json"}},
    }
    for key, value in members.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    """POST /subscriptions as JSON (the @context, if any, in a Link header)."""
    return await client.post(f"{BASE}/subscriptions", json=body, headers=headers)


async def post_ld(client: httpx.AsyncClient, body: dict[str, Any],
                  context: Any = None) -> httpx.Response:
    """POST /subscriptions as JSON-LD with ``context`` in the body."""
    payload = {**body, "@context": context if context is not None else KOBE_CONTEXT}
    return await client.post(f"{BASE}/subscriptions", json=payload,
                             headers={"Content-Type": "application/ld+json"})


async def created_id(response: httpx.Response) -> str:
    """The id from a 201's Location header."""
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.startswith(f"{BASE}/subscriptions/")
    return location.rsplit("/", 1)[1]


def problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    """Assert an NGSI-LD error response; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == ERR + name, body
    assert body["title"] and body["detail"]
    return body


async def host_context(client: httpx.AsyncClient, context: dict[str, Any]) -> str:
    """Host ``context`` on the broker; returns a Link header naming it."""
    response = await client.post(f"{BASE}/jsonldContexts", json={"@context": context})
    assert response.status_code == 201, response.text
    url = "http://cityos.test" + response.headers["location"]
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
