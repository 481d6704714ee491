"""NGSI v2 requests no route serves as asked, answered as Orion answers them.

* A trailing slash (``/v2/entities/``, ``/version/``) names the path without it: Orion answers
  ``GET /v2/entities/?type=Store`` like ``GET /v2/entities?type=Store``, and FIWARE's tutorials and
  Postman collections use both spellings.  (The router would otherwise answer a ``307`` redirect
  that ``curl`` shows as an empty response and that names this server's own host — wrong behind a
  reverse proxy.)
* A known path with another method is ``405 MethodNotAllowed`` with ``Allow``, in Orion's body.
* An unknown path under ``/v2`` is Orion's ``400 BadRequest`` "Service not found. Check your URL
  as probably it is wrong." — not an NGSI-LD problem, and not a redirect.

These routes come last and are hidden from the OpenAPI document: they are spellings and errors of
documented operations, not operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from cityos.data.ngsiv2.errors import V2Error, bad_request, error_response

SERVICE_NOT_FOUND = "Service not found. Check your URL as probably it is wrong."


class WithoutTrailingSlash:
    """An ASGI app that routes the request again with its trailing slashes removed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strip the slashes (so these routes cannot match again) and route once more."""
        path = scope["path"].rstrip("/")
        raw = scope.get("raw_path")
        again = {**scope, "path": path, "raw_path": raw.rstrip(b"/") if raw else path.encode()}
        await scope["router"](again, receive, send)


class Unserved:
    """An ASGI app answering 405 (a served path, another method) or 400 "Service not found".

    An ASGI app rather than an endpoint function because Starlette gives function routes without
    ``methods`` only GET; this must take every method.
    """

    def __init__(self, served: Sequence[BaseRoute]) -> None:
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request in Orion's error format, with its correlator."""
        allowed: set[str] = set()
        for route in self.served:
            match, _ = route.matches(scope)
            if match is Match.PARTIAL and isinstance(route, Route) and route.methods:
                allowed |= route.methods
        if allowed:
            response = error_response(V2Error(405, "MethodNotAllowed", "method not allowed"))
            response.headers["Allow"] = ", ".join(sorted(allowed))
        else:
            response = error_response(bad_request(SERVICE_NOT_FOUND))
        response.headers["Fiware-Correlator"] = \
            Request(scope).headers.get("fiware-correlator") or str(uuid.uuid4())
        await response(scope, receive, send)


def unserved_routes(served: Sequence[BaseRoute]) -> list[Route]:
    """The routes to put after ``served`` (the v2 routes) in the application's table."""
    again, unserved = WithoutTrailingSlash(), Unserved(served)
    slashes = [Route(path, again, name=f"v2Slash{n}", include_in_schema=False)
               for n, path in enumerate(("/v2/", "/v2/{rest:path}/", "/version/"))]
    errors = [Route(path, unserved, name=f"v2Unserved{n}", include_in_schema=False)
              for n, path in enumerate(("/v2", "/v2/{rest:path}", "/version"))]
    return [*slashes, *errors]
