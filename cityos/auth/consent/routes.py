"""A resident's consents: ``/me/consents`` (JSON), receipts, and a small page to withdraw them.

The auth middleware lets any signed-in caller into ``/me*``; here the caller must be a resident
(kind ``user``) and, for a token, hold the ``consent`` scope, so an application holding a
resident's token cannot grant itself consent (ADR 0012 §10).  Records of other owners answer 404,
exactly as missing ones do.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cityos.auth.consent.page import render_page
from cityos.auth.consent.receipt import sign_receipt
from cityos.auth.consent.store import ConsentStore
from cityos.auth.directory.models import Purpose
from cityos.core.access import PD_CATEGORIES, Access, calling_resident
from cityos.core.http import json_response
from cityos.core.instants import aware_instant
from cityos.core.problems import (
    BadRequestData,
    Forbidden,
    ResourceNotFound,
    ServiceUnavailable,
)

MAX_DAYS = 3650
JWT_MEDIA_TYPE = "application/jwt"     # RFC 7519 §10.3.1


def _runtime(request: Request) -> Any:
    runtime = getattr(request.app.state, "auth", None)
    if runtime is None or runtime.consents is None:
        raise ServiceUnavailable("consent records are not available")
    return runtime


def _resident() -> tuple[Access, str]:
    """The calling resident and their owner urn (401/403 for anyone else)."""
    access, owner = calling_resident("sign in to manage your consents",
                                     "consents belong to residents' accounts")
    if not access.principal.allows_scope("consent"):
        raise Forbidden("this token lacks the 'consent' scope", headers={
            "WWW-Authenticate": 'Bearer error="insufficient_scope", scope="consent"'})
    return access, owner


async def list_consents(request: Request) -> Response:
    """GET /me/consents: the caller's consents, newest first (every state)."""
    _, owner = _resident()
    now = time.time()
    return json_response([c.public(now) for c in await _runtime(request).consents.list(owner)])


def _expiry(body: dict[str, Any], now: float) -> int | None:
    """``expiresAt`` (ISO 8601 with offset, e.g. +09:00) or ``durationDays``; None = until withdrawn."""
    at, days = body.get("expiresAt"), body.get("durationDays")
    if at is not None and days is not None:
        raise BadRequestData("give either expiresAt or durationDays, not both")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise BadRequestData(f"durationDays must be an integer from 1 to {MAX_DAYS}")
        return int(now + timedelta(days=days).total_seconds())
    if at is None:
        return None
    if not isinstance(at, str):
        raise BadRequestData("expiresAt must be an ISO 8601 date-time string")
    epoch = int(aware_instant(at, "expiresAt").timestamp())
    if epoch <= now:
        raise BadRequestData("expiresAt is in the past")
    if epoch > now + MAX_DAYS * 86400:
        raise BadRequestData(f"expiresAt is more than {MAX_DAYS} days ahead")
    return epoch


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise BadRequestData(f"{name} must be a non-empty string")
    return value.strip()


async def give_consent(request: Request) -> Response:
    """POST /me/consents {category, organization, purpose, expiresAt | durationDays}."""
    access, owner = _resident()
    runtime = _runtime(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequestData("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object")
    category, org_id, purpose_id = (_text(body, n) for n in ("category", "organization", "purpose"))
    assert category is not None and org_id is not None and purpose_id is not None
    if category not in PD_CATEGORIES:
        raise BadRequestData(f"category must be one of {', '.join(PD_CATEGORIES)}")
    now = time.time()
    expires_at = _expiry(body, now)
    org = await runtime.directory.get_organization(org_id)
    if org is None:
        raise BadRequestData(f"no organization {org_id!r}")
    declared: tuple[Any, Purpose] | None = None
    for client in await runtime.directory.list_clients(org_id):
        purpose = next((p for p in client.purposes if p.id == purpose_id), None)
        if purpose is not None and client.valid_at(now):
            declared = (client, purpose)
            break
    if declared is None:
        raise BadRequestData(f"no active client of {org_id!r} declares the purpose {purpose_id!r}")
    client, purpose = declared
    store: ConsentStore = runtime.consents
    record = await store.give(
        owner, category, org_id, purpose_id, expires_at,
        policy_url=_text(body, "policyUrl", required=False),
        notice_version=_text(body, "noticeVersion", required=False),
        controller=org.name, service=client.name, purpose_text=purpose.text,
        purpose_category=purpose.category, actor=access.principal, tenant=access.tenant,
        request_id=access.request_id)
    return json_response(record.public(now), status=201,
                         headers={"Location": f"/me/consents/{record.id}"})


async def _own(request: Request) -> tuple[Access, str, Any]:
    access, owner = _resident()
    record = await _runtime(request).consents.get(request.path_params["consent_id"])
    if record is None or record.owner_id != owner:
        raise ResourceNotFound("no such consent of yours")
    return access, owner, record


async def get_consent(request: Request) -> Response:
    """GET /me/consents/{id}."""
    _, _, record = await _own(request)
    return json_response(record.public(time.time()))


async def _withdraw(request: Request) -> None:
    access, owner, record = await _own(request)
    await _runtime(request).consents.withdraw(record.id, owner, actor=access.principal,
                                              tenant=access.tenant, request_id=access.request_id)


async def delete_consent(request: Request) -> Response:
    """DELETE /me/consents/{id}: withdraw (idempotent; the record stays as evidence)."""
    await _withdraw(request)
    return Response(status_code=204)


async def withdraw_form(request: Request) -> Response:
    """POST /me/consents/{id}/withdraw: the page's button; back to the page (RFC 9110 §15.4.4)."""
    await _withdraw(request)
    return RedirectResponse("/me/consents/page", status_code=303)


async def consent_receipt(request: Request) -> Response:
    """GET /me/consents/{id}/receipt: the Kantara CR v1.1 receipt, a signed JWT when possible."""
    _, _, record = await _own(request)
    accept = request.headers.get("accept", "")
    if "application/json" not in accept or JWT_MEDIA_TYPE in accept:
        signed = sign_receipt(_runtime(request).tokens, record.receipt)
        if signed is not None:
            return Response(signed, media_type=JWT_MEDIA_TYPE)
    return json_response(record.receipt)


async def consent_page(request: Request) -> Response:
    """GET /me/consents/page: the resident's consents in Japanese or English."""
    _, owner = _resident()
    records = await _runtime(request).consents.list(owner)
    html = render_page(records, request.headers.get("accept-language", ""), time.time())
    return Response(html, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
        "Cache-Control": "no-store"})


CONSENT_ROUTES = [
    Route("/me/consents", list_consents, methods=["GET"]),
    Route("/me/consents", give_consent, methods=["POST"]),
    Route("/me/consents/page", consent_page, methods=["GET"]),
    Route("/me/consents/{consent_id}", get_consent, methods=["GET"]),
    Route("/me/consents/{consent_id}", delete_consent, methods=["DELETE"]),
    Route("/me/consents/{consent_id}/withdraw", withdraw_form, methods=["POST"]),
    Route("/me/consents/{consent_id}/receipt", consent_receipt, methods=["GET"]),
]
