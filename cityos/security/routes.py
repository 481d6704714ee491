"""Readers of the audit log: a resident's own trail, the auditors' search and provision report.

The auth middleware maps ``/audit*`` to the action ``audit.read`` and ``/me*`` to any signed-in
caller (ADR 0012 §7); here ``/me/audit`` only narrows to the caller's own records.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.core.access import calling_resident, current_access
from cityos.core.http import json_response
from cityos.core.instants import aware_instant
from cityos.core.problems import BadRequestData, Forbidden, ServiceUnavailable
from cityos.security.audit import AuditLog, AuditQuery, public_record

DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 100, 1000, 1_000_000
PLATFORM_ROLE = "platform-operator"


def audit_log_of(request: Request) -> AuditLog:
    log: AuditLog | None = getattr(getattr(request.app.state, "auth", None), "audit", None)
    if log is None:
        raise ServiceUnavailable("the audit log is not running")
    return log


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestData(f"{name} must be an integer, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadRequestData(f"{name} must be between {low} and {high}")
    return value


def _time_param(request: Request, name: str) -> int | None:
    """An ISO 8601 date-time query parameter (with a UTC offset) as epoch milliseconds."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return int(aware_instant(raw, name).timestamp() * 1000)


async def _page(request: Request, query: AuditQuery) -> Response:
    """Newest first, ``limit``/``offset`` paging with an RFC 8288 ``Link: rel="next"``."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    rows = await audit_log_of(request).query(query, limit=limit + 1, offset=offset)
    headers: dict[str, str] = {}
    if len(rows) > limit:
        rows = rows[:limit]
        params = dict(request.query_params)
        params.update(limit=str(limit), offset=str(offset + limit))
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return json_response([public_record(r) for r in rows], headers=headers)


async def my_audit(request: Request) -> Response:
    """GET /me/audit: who used the caller's personal data, for what, when."""
    _, owner = calling_resident("sign in to see your audit trail",
                                "only residents' accounts own personal data")
    return await _page(request, AuditQuery(owner_id=owner, since_ms=_time_param(request, "from"),
                                           until_ms=_time_param(request, "to")))


def _auditor_query(request: Request) -> AuditQuery:
    params = request.query_params
    tenant = params.get("tenant")
    access = current_access()
    # an auditor reads its own tenant's records; a platform operator (or insecure mode) any
    if access is not None and PLATFORM_ROLE not in access.principal.roles:
        if tenant is not None and tenant != access.tenant:
            raise Forbidden("auditors read the records of their own tenant")
        tenant = access.tenant
    return AuditQuery(owner_id=params.get("ownerId"), actor=params.get("actor"),
                      organization=params.get("organization"), purpose=params.get("purpose"),
                      event=params.get("event"), tenant=tenant,
                      since_ms=_time_param(request, "from"), until_ms=_time_param(request, "to"))


async def search_audit(request: Request) -> Response:
    """GET /audit: records filtered by ownerId, actor, organization, purpose, event, from, to."""
    return await _page(request, _auditor_query(request))


REPORT_FIELDS = ("month", "organization", "purpose", "category", "records", "owners")


async def audit_report(request: Request) -> Response:
    """GET /audit/report: provisions per processor, purpose, category and month (JSON or CSV)."""
    rows = await audit_log_of(request).report(_auditor_query(request))
    if _wants_csv(request):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, lineterminator="\r\n")  # RFC 4180
        writer.writeheader()
        writer.writerows({k: ("" if r[k] is None else r[k]) for k in REPORT_FIELDS} for r in rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="provisions.csv"'})
    body: dict[str, Any] = {"events": ["pd.read", "pd.notify"], "timeZone": "+09:00",
                            "rows": rows}
    return json_response(body)


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


AUDIT_ROUTES = [
    Route("/me/audit", my_audit, methods=["GET"]),
    Route("/audit", search_audit, methods=["GET"]),
    Route("/audit/report", audit_report, methods=["GET"]),
]
