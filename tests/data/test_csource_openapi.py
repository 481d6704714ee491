"""The OpenAPI description of /csourceRegistrations is valid, complete and its example works."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from cityos.core.settings import Settings
from cityos.data.ngsild.csource import ROUTES
from cityos.gateway.openapi_csource import EXAMPLE, csource_paths
from cityos.gateway.openapi_ngsild import build_openapi
from tests.data.test_csource_support import CSR, settings

__all__ = ["settings"]


def test_paths_merge_into_a_valid_openapi_3_1_document() -> None:
    doc = build_openapi(Settings.load())
    assert "/ngsi-ld/v1/csourceRegistrations" in doc["paths"]
    validate(doc)


def test_every_registration_route_is_described_under_its_name() -> None:
    described = {(path, method, op["operationId"])
                 for path, item in csource_paths().items()
                 for method, op in item.items() if method != "parameters"}
    routes = {(route.path, method.lower(), route.name)
              for route in ROUTES for method in route.methods or () if method != "HEAD"}
    assert described == routes


async def test_the_example_is_accepted_by_the_broker(client: httpx.AsyncClient) -> None:
    created = await client.post(CSR, json=EXAMPLE)
    assert created.status_code == 201, created.text
    got = (await client.get(created.headers["location"])).json()
    assert got["registrationName"] == EXAMPLE["registrationName"]
