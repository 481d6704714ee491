"""Every IoT agent and device route is in the app's OpenAPI 3.1 document, under its route name."""

from __future__ import annotations

import re
from typing import Any

import httpx
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.routing import Route

OURS = re.compile(r"^/iot/|^/assets/v1/devices")


async def test_iot_and_device_routes_are_documented(client: httpx.AsyncClient, app: Any) -> None:
    doc = (await client.get("/openapi.json")).json()
    OpenAPIV31SpecValidator(doc).validate()
    served = {(re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", r.path), m.lower(), r.name)
              for r in app.routes if isinstance(r, Route) and OURS.match(r.path)
              for m in (r.methods or set()) - {"HEAD"}}
    documented = {(path, method, op["operationId"]) for path, item in doc["paths"].items()
                  if OURS.match(path) for method, op in item.items() if method != "parameters"}
    assert len(served) == 16    # 9 provisioning, 3 southbound, 4 native
    assert served == documented
