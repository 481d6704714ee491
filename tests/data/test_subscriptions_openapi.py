"""The OpenAPI description of /subscriptions is valid and its examples are what the broker does."""

from __future__ import annotations

from typing import Any

import httpx
from openapi_spec_validator import validate

from cityos.core.settings import Settings
from cityos.data.ngsild.subscriptions import ROUTES
from cityos.gateway.openapi_ngsild import build_openapi
from cityos.gateway.openapi_subscriptions import EXAMPLE, MQTT_EXAMPLE, subscription_paths
from tests.data.test_subscriptions_support import BASE, app, make_settings, running_app, settings

__all__ = ["app", "settings"]


def test_paths_merge_into_a_valid_openapi_3_1_document() -> None:
    doc = build_openapi(Settings.load())
    doc["paths"].update(subscription_paths())
    validate(doc)


def test_every_subscription_route_is_described_under_its_name() -> None:
    described = {(path, method, op["operationId"])
                 for path, item in subscription_paths().items()
                 for method, op in item.items() if method != "parameters"}
    routes = {(route.path, method.lower(), route.name)
              for route in ROUTES for method in route.methods or () if method != "HEAD"}
    assert described == routes


async def test_the_examples_are_accepted_by_the_broker(database_url: str) -> None:
    public = make_settings(database_url, notification_allow="")
    async with running_app(public, empty=True) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as client:
            body: dict[str, Any] = {**EXAMPLE, "expiresAt": "2099-03-31T15:00:00.000Z"}
            assert (await client.post(f"{BASE}/subscriptions", json=body)).status_code == 201
            mqtt = await client.post(f"{BASE}/subscriptions", json=MQTT_EXAMPLE)
            assert mqtt.status_code == 201, mqtt.text
