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


class InvalidRequest(Problem):
    """NGSI-LD InvalidRequest (400)."""

    status = 400
    type_uri = NGSI_LD_ERRORS + "InvalidRequest"
    title = "Invalid request"


class BadRequestData(Problem):
    """NGSI-LD BadRequestData (400)."""

    status = 400
    type_uri = NGSI_LD_ERRORS + "BadRequestData"
    title = "Bad request data"


class AlreadyExists(Problem):
    """NGSI-LD AlreadyExists (409)."""

    status = 409
    type_uri = NGSI_LD_ERRORS + "AlreadyExists"
    title = "Already exists"


class OperationNotSupported(Problem):
    """NGSI-LD OperationNotSupported (422)."""

    status = 422
    type_uri = NGSI_LD_ERRORS + "OperationNotSupported"
    title = "Operation not supported"


class ResourceNotFound(Problem):
    """NGSI-LD ResourceNotFound (404)."""

    status = 404
    type_uri = NGSI_LD_ERRORS + "ResourceNotFound"
    title = "Resource not found"


class InternalError(Problem):
    """NGSI-LD InternalError (500)."""

    status = 500
    type_uri = NGSI_LD_ERRORS + "InternalError"
    title = "Internal error"


class TooComplexQuery(Problem):
    """NGSI-LD TooComplexQuery (403)."""

    status = 403
    type_uri = NGSI_LD_ERRORS + "TooComplexQuery"
    title = "Too complex query"


class TooManyResults(Problem):
    """NGSI-LD TooManyResults (403)."""

    status = 403
    type_uri = NGSI_LD_ERRORS + "TooManyResults"
    title = "Too many results"


class LdContextNotAvailable(Problem):
    """NGSI-LD LdContextNotAvailable (503)."""

    status = 503
    type_uri = NGSI_LD_ERRORS + "LdContextNotAvailable"
    title = "@context not available"


class NoMultiTenantSupport(Problem):
    """NGSI-LD NoMultiTenantSupport (501)."""

    status = 501
    type_uri = NGSI_LD_ERRORS + "NoMultiTenantSupport"
    title = "No multi-tenant support"


class NonexistentTenant(Problem):
    """NGSI-LD NonexistentTenant (404)."""

    status = 404
    type_uri = NGSI_LD_ERRORS + "NonexistentTenant"
    title = "Nonexistent tenant"


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


CITYOS_ERRORS = "urn:cityos:problem:"


class Unauthorized(Problem):
    """401: no valid credentials (RFC 6750 §3.1); ``WWW-Authenticate`` says what to send."""

    status = 401
    type_uri = CITYOS_ERRORS + "Unauthorized"
    title = "Unauthorized"


class Forbidden(Problem):
    """403: authenticated, but no policy, scope or consent allows this (RFC 6750 §3.1)."""

    status = 403
    type_uri = CITYOS_ERRORS + "Forbidden"
    title = "Forbidden"


class Conflict(Problem):
    """409: the resource's state forbids this (built in, still in use, being erased)."""

    status = 409
    type_uri = CITYOS_ERRORS + "Conflict"
    title = "Conflict"
