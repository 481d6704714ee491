"""Every NGSI v2 route is described in the app's OpenAPI document, with Orion's error bodies."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from cityos.data.ngsiv2 import ROUTES


async def test_every_v2_route_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    documented = {(path, method, op["operationId"]) for path, item in doc["paths"].items()
                  for method, op in item.items() if method != "parameters"}
    for route in ROUTES:
        assert isinstance(route, Route)
        path = route.path
        for method in (route.methods or set()) - {"HEAD"}:
            assert (path, method.lower(), route.name) in documented, (path, method, route.name)
    ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items()
           if m != "parameters"]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    error = doc["paths"]["/v2/entities"]["post"]["responses"]["422"]["content"]["application/json"]
    assert error["schema"]["required"] == ["error"]
