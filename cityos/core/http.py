"""HTTP plumbing shared by every block: fast JSON responses and the problem-details handler."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import Problem

log = logging.getLogger("cityos.http")

PROBLEM_JSON = "application/problem+json"
NGSI_LD_PREFIX = "/ngsi-ld/"


def error_media_type(request: Request) -> str:
    """NGSI-LD (clause 5.5.3) sends errors as application/json; every other API uses RFC 7807's type."""
    return "application/json" if request.url.path.startswith(NGSI_LD_PREFIX) else PROBLEM_JSON
_HTTP_PROBLEMS = {
    404: ("ResourceNotFound", "Resource not found"),
    405: ("MethodNotAllowed", "Method not allowed"),
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    """A JSON response serialised with orjson (several times faster than the stdlib on big pages)."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=media_type)


def problem_response(problem: Problem) -> Response:
    """The RFC 7807 / NGSI-LD error response for ``problem``."""
    return Response(orjson.dumps(problem.body()), status_code=problem.status,
                    headers=problem.headers or None, media_type=PROBLEM_JSON)


async def handle_problem(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`Problem`."""
    assert isinstance(exc, Problem)
    response = problem_response(exc)
    response.headers["content-type"] = error_media_type(request)
    return response


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405 as problem details, so every error has one shape."""
    assert isinstance(exc, HTTPException)
    name, title = _HTTP_PROBLEMS.get(exc.status_code, ("InvalidRequest", "Invalid request"))
    body = {"type": f"https://uri.etsi.org/ngsi-ld/errors/{name}", "title": title,
            "status": exc.status_code, "detail": str(exc.detail)}
    headers = dict(exc.headers) if exc.headers else None
    return Response(orjson.dumps(body), status_code=exc.status_code, headers=headers,
                    media_type=error_media_type(request))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log the bug with its traceback, answer a bare 500 that leaks nothing."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", "title": "Internal error",
            "status": 500, "detail": "an unexpected error occurred; it has been logged"}
    return Response(orjson.dumps(body), status_code=500, media_type=error_media_type(request))
