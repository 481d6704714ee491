"""Problem details (RFC 7807) with the NGSI-LD error types of ETSI GS CIM 009, clause 5.5.

Every failure a caller can cause is raised as a :class:`Problem` subclass and rendered by one
handler, so the status code and ``type`` URI of an error are decided here and nowhere else.
"""

from __future__ import annotations

from typing import Any

NGSI_LD_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class Problem(Exception):
    """An error that becomes an ``application/problem+json`` (or NGSI-LD error) response."""

    status = 500
    type_uri = NGSI_LD_ERRORS + "InternalError"
    title = "Internal error"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        out: dict[str, Any] = {"type": self.type_uri, "title": self.title,
                               "status": self.status, "detail": self.detail}
        out.update(self.extra)
        return out


def _problem(name: str, status: int, title: str) -> type[Problem]:
    cls = type(name, (Problem,), {"status": status, "type_uri": NGSI_LD_ERRORS + name,
                                  "title": title, "__doc__": f"NGSI-LD {name} ({status})."})
    return cls


InvalidRequest = _problem("InvalidRequest", 400, "Invalid request")
BadRequestData = _problem("BadRequestData", 400, "Bad request data")
AlreadyExists = _problem("AlreadyExists", 409, "Already exists")
OperationNotSupported = _problem("OperationNotSupported", 422, "Operation not supported")
ResourceNotFound = _problem("ResourceNotFound", 404, "Resource not found")
InternalError = _problem("InternalError", 500, "Internal error")
TooComplexQuery = _problem("TooComplexQuery", 403, "Too complex query")
TooManyResults = _problem("TooManyResults", 403, "Too many results")
LdContextNotAvailable = _problem("LdContextNotAvailable", 503, "@context not available")
NoMultiTenantSupport = _problem("NoMultiTenantSupport", 501, "No multi-tenant support")
NonexistentTenant = _problem("NonexistentTenant", 404, "Nonexistent tenant")


class NotAcceptable(Problem):
    """406: no representation the caller accepts (``Accept`` header)."""

    status = 406
    type_uri = NGSI_LD_ERRORS + "NotAcceptable"
    title = "Not acceptable"


class UnsupportedMediaType(Problem):
    """415: the request body's ``Content-Type`` is not one NGSI-LD accepts."""

    status = 415
    type_uri = NGSI_LD_ERRORS + "UnsupportedMediaType"
    title = "Unsupported media type"


class MethodNotAllowed(Problem):
    """405: the resource exists but not with this method."""

    status = 405
    type_uri = NGSI_LD_ERRORS + "MethodNotAllowed"
    title = "Method not allowed"


class PayloadTooLarge(Problem):
    """413: the body is larger than the configured maximum."""

    status = 413
    type_uri = NGSI_LD_ERRORS + "PayloadTooLarge"
    title = "Payload too large"


class ServiceUnavailable(Problem):
    """503: a storage engine or other dependency is down; retrying later may work."""

    status = 503
    type_uri = NGSI_LD_ERRORS + "ServiceUnavailable"
    title = "Service unavailable"
