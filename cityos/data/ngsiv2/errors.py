"""Errors of the NGSI v2 face in Orion's format: ``{"error": "...", "description": "..."}``.

Orion's error names and status codes (FIWARE-NGSI v2 "Error Responses"): ``ParseError`` (400, a body
that is not JSON), ``BadRequest`` (400), ``NotFound`` (404), ``TooManyResults`` (409),
``ContentLengthRequired`` (411), ``RequestEntityTooLarge`` (413), ``UnsupportedMediaType`` (415),
``Unprocessable`` (422), ``NotAcceptable`` (406), ``MethodNotAllowed`` (405).  Problems raised by the
NGSI-LD code this package reuses (geo-query parsing, for example) are translated here, so a v2
caller never sees an RFC 7807 body.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.core.problems import Problem

log = logging.getLogger("cityos.ngsiv2")

# HTTP status -> Orion's error name, for problems raised by shared (NGSI-LD) code
_NAMES = {400: "BadRequest", 403: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed",
          406: "NotAcceptable", 409: "TooManyResults", 411: "ContentLengthRequired",
          413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable",
          503: "ServiceUnavailable"}

ENTITY_NOT_FOUND = "The requested entity has not been found. Check type and id"
ATTRIBUTE_NOT_FOUND = "The entity does not have such an attribute"


class V2Error(Exception):
    """An NGSI v2 error response."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """Orion's error payload."""
        return {"error": self.error, "description": self.description}


def bad_request(description: str) -> V2Error:
    """400 BadRequest: the request alone is wrong."""
    return V2Error(400, "BadRequest", description)


def parse_error(description: str) -> V2Error:
    """400 ParseError: the body is not JSON."""
    return V2Error(400, "ParseError", description)


def not_found(description: str = ENTITY_NOT_FOUND) -> V2Error:
    """404 NotFound."""
    return V2Error(404, "NotFound", description)


def unprocessable(description: str) -> V2Error:
    """422 Unprocessable: the request conflicts with the current state."""
    return V2Error(422, "Unprocessable", description)


def error_response(error: V2Error) -> Response:
    """The JSON response for ``error``."""
    return Response(orjson.dumps(error.body()), status_code=error.status,
                    media_type="application/json")


def from_problem(problem: Problem) -> V2Error:
    """A shared-code :class:`Problem` in Orion's terms (same status, Orion's error name)."""
    status = problem.status if problem.status in _NAMES else 400
    if status == 403:      # NGSI-LD's TooManyResults (a page too large) is a BadRequest in v2
        status = 400
    if status >= 500:
        log.error("NGSI v2 request failed: %s", problem.detail)
    return V2Error(status, _NAMES.get(status, "InternalServerError"), problem.detail)


Endpoint = Callable[[Request], Awaitable[Response]]


def v2_route(path: str, endpoint: Endpoint, *, methods: list[str], name: str) -> Route:
    """A route of the NGSI v2 API whose every error leaves in Orion's format."""
    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except V2Error as error:
            response = error_response(error)
        except Problem as problem:
            response = error_response(from_problem(problem))
        # Orion echoes the caller's correlator (or makes one) so logs can follow a request
        response.headers["Fiware-Correlator"] = request.headers.get("fiware-correlator") \
            or str(uuid.uuid4())
        return response

    return Route(path, answer, methods=methods, name=name)
