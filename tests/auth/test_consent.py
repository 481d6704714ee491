"""Consent records (SI-CS-6, DM-PD-1): give, withdraw, expire, uniqueness, receipts, the page.

The HTTP tests mount the consent and audit routes on a small app whose middleware sets the caller
from an ``X-Test-Principal`` header (``Principal.describe()`` JSON), so they test these handlers
without depending on the token issuer; ``test_through_the_real_app`` uses real tokens when the
issuer is wired.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from cityos.auth.consent import CONSENT_ROUTES
from cityos.auth.consent.page import language
from cityos.auth.consent.receipt import sign_receipt
from cityos.auth.directory.models import Purpose
from cityos.auth.runtime import AuthRuntime
from cityos.core.access import ACCOUNT_URN, Access, Principal, acting_as
from cityos.core.http import handle_http_exception, handle_problem
from cityos.core.problems import Problem
from cityos.security import AUDIT_ROUTES, AuditQuery

ORG, PURPOSE = "acme", "route-planning"
ALICE, BOB = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


class ActAs:
    """Test stand-in for the auth middleware: the caller comes from a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = dict(scope.get("headers") or []).get(b"x-test-principal")
        access = None if raw is None else Access(
            principal=Principal.from_description(orjson.loads(raw)), action="self", tenant="",
            read=None, write=None, request_id="req-1")
        with acting_as(access):
            await self.app(scope, receive, send)


def who(kind: str = "user", subject: str = ALICE, scopes: str | None = "consent",
        roles: tuple[str, ...] = ("resident",)) -> dict[str, str]:
    principal = Principal(kind=kind, subject=subject, roles=frozenset(roles),
                          scopes=None if scopes is None else frozenset(scopes.split()))
    return {"X-Test-Principal": orjson.dumps(principal.describe()).decode()}


@pytest.fixture
async def runtime(auth_runtime: AuthRuntime) -> AuthRuntime:
    """The identity block with a service provider and its application declaring a purpose."""
    await auth_runtime.directory.create_organization(ORG, "ACME Mobility", "service-provider")
    await auth_runtime.directory.create_client(
        "ACME Navi", organization_id=ORG, client_id="acme-navi",
        purposes=(Purpose(PURPOSE, "Suggest routes", "ServiceProvision"),))
    return auth_runtime


@pytest.fixture
async def client(runtime: AuthRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[*CONSENT_ROUTES, *AUDIT_ROUTES], middleware=[],
                    exception_handlers={Problem: handle_problem,
                                        Exception: handle_http_exception})
    app.state.auth = runtime
    transport = httpx.ASGITransport(app=ActAs(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def owner(account: str = ALICE) -> str:
    return ACCOUNT_URN + account


async def test_give_withdraw_and_expire_apply_at_once(runtime: AuthRuntime) -> None:
    store = runtime.consents
    assert await store.granted(ORG, PURPOSE, ["location"]) == frozenset()
    given = await store.give(owner(), "location", ORG, PURPOSE)
    await store.give(owner(BOB), "location", ORG, PURPOSE, int(time.time()) + 3600)
    assert await store.granted(ORG, PURPOSE, ["location", "health"]) == {
        (owner(), "location"), (owner(BOB), "location")}
    # other processor, purpose or category, or no purpose at all: nothing
    assert await store.granted("other", PURPOSE, ["location"]) == frozenset()
    assert await store.granted(ORG, "ads", ["location"]) == frozenset()
    assert await store.granted(ORG, PURPOSE, ["health"]) == frozenset()
    assert await store.granted(ORG, None, ["location"]) == frozenset()
    withdrawn = await store.withdraw(given.id, owner())
    assert withdrawn is not None and withdrawn.state == "withdrawn"
    assert await store.granted(ORG, PURPOSE, ["location"]) == {(owner(BOB), "location")}
    assert await store.withdraw(given.id, owner(BOB)) is None          # not Bob's
    # expiry: a clock past the end hides the consent before any sweep runs
    store._clock = lambda: time.time() + 7200
    assert await store.granted(ORG, PURPOSE, ["location"]) == frozenset()
    assert await store.expire_due() == 1
    assert [c.state for c in await store.list(owner(BOB))] == ["expired"]
    events = [r["event"] for r in await runtime.audit.query(AuditQuery(event="consent.*"))]
    assert sorted(events) == ["consent.expired", "consent.given", "consent.given",
                              "consent.withdrawn"]


async def test_one_live_consent_per_owner_category_processor_purpose(runtime: AuthRuntime) -> None:
    store = runtime.consents
    first = await store.give(owner(), "location", ORG, PURPOSE)
    second = await store.give(owner(), "location", ORG, PURPOSE, int(time.time()) + 60)
    states = {c.id: c.state for c in await store.list(owner())}
    assert states == {first.id: "withdrawn", second.id: "given"}
    replaced = await runtime.audit.query(AuditQuery(event="consent.withdrawn"))
    assert replaced[0]["targets"] == orjson.dumps([first.id]).decode()
    assert orjson.loads(replaced[0]["detail"]) == {"replacedBy": second.id}
    await store.give(owner(), "health", ORG, PURPOSE)                  # another category: both live
    assert await store.withdraw_all(owner()) == 2
    assert await store.granted(ORG, PURPOSE, ["location", "health"]) == frozenset()


async def test_concurrent_gives_leave_one_live_consent(runtime: AuthRuntime) -> None:
    import asyncio

    await asyncio.gather(*(runtime.consents.give(owner(), "location", ORG, PURPOSE)
                           for _ in range(6)))
    states = sorted(c.state for c in await runtime.consents.list(owner()))
    assert states == ["given"] + ["withdrawn"] * 5


async def test_post_and_read_consents_over_http(client: httpx.AsyncClient,
                                                runtime: AuthRuntime) -> None:
    body = {"category": "location", "organization": ORG, "purpose": PURPOSE,
            "expiresAt": "2030-04-01T09:00:00+09:00"}
    created = await client.post("/me/consents", json=body, headers=who())
    assert created.status_code == 201, created.text
    consent = created.json()
    assert created.headers["location"] == f"/me/consents/{consent['id']}"
    assert consent["expiresAt"] == "2030-04-01T00:00:00Z"               # +09:00 read right
    assert consent["state"] == "given" and consent["ownerId"] == owner()
    by_days = await client.post("/me/consents", headers=who(), json={
        "category": "health", "organization": ORG, "purpose": PURPOSE, "durationDays": 30})
    assert by_days.status_code == 201
    days = datetime.fromisoformat(by_days.json()["expiresAt"]).timestamp() - time.time()
    assert 29.9 * 86400 < days <= 30 * 86400
    listed = await client.get("/me/consents", headers=who())
    assert sorted(c["category"] for c in listed.json()) == ["health", "location"]
    assert (await client.get(f"/me/consents/{consent['id']}", headers=who())).json() == consent
    # Bob sees neither the record nor its receipt, and cannot withdraw it
    for method, path in (("GET", ""), ("GET", "/receipt"), ("DELETE", "")):
        answer = await client.request(method, f"/me/consents/{consent['id']}{path}",
                                      headers=who(subject=BOB))
        assert answer.status_code == 404
    assert (await client.get("/me/consents", headers=who(subject=BOB))).json() == []
    assert await runtime.consents.granted(ORG, PURPOSE, ["location"]) == {(owner(), "location")}
    gone = await client.delete(f"/me/consents/{consent['id']}", headers=who())
    assert gone.status_code == 204
    assert await runtime.consents.granted(ORG, PURPOSE, ["location"]) == frozenset()
    again = await client.get(f"/me/consents/{consent['id']}", headers=who())
    assert again.json()["state"] == "withdrawn" and again.json()["withdrawnAt"]


@pytest.mark.parametrize(("change", "detail"), [
    ({"category": "shoe-size"}, "category must be one of"),
    ({"organization": "nobody"}, "no organization"),
    ({"purpose": "ads"}, "declares the purpose"),
    ({"expiresAt": "2030-01-01T00:00:00"}, "UTC offset"),
    ({"expiresAt": "2001-01-01T00:00:00+09:00"}, "in the past"),
    ({"expiresAt": "next week"}, "not an ISO 8601"),
    ({"durationDays": 0}, "durationDays"),
    ({"durationDays": 3, "expiresAt": "2030-01-01T00:00:00Z"}, "not both"),
    ({"purpose": None}, "purpose must be"),
])
async def test_bad_consent_requests_get_400(client: httpx.AsyncClient, change: dict[str, Any],
                                            detail: str) -> None:
    body = {"category": "location", "organization": ORG, "purpose": PURPOSE, **change}
    answer = await client.post("/me/consents", json=body, headers=who())
    assert answer.status_code == 400 and detail in answer.json()["detail"], answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await client.post("/me/consents", content=b"[1", headers=who())).status_code == 400


async def test_only_residents_with_the_consent_scope(client: httpx.AsyncClient) -> None:
    assert (await client.get("/me/consents")).status_code == 401
    assert (await client.get("/me/consents", headers=who(kind="client"))).status_code == 403
    no_scope = await client.get("/me/consents", headers=who(scopes="entities:read"))
    assert no_scope.status_code == 403 and "insufficient_scope" in no_scope.headers[
        "www-authenticate"]


async def test_kantara_receipt(client: httpx.AsyncClient, runtime: AuthRuntime) -> None:
    created = (await client.post("/me/consents", headers=who(), json={
        "category": "health", "organization": ORG, "purpose": PURPOSE,
        "expiresAt": "2030-04-01T09:00:00+09:00", "policyUrl": "https://acme.example/privacy"})).json()
    path = f"/me/consents/{created['id']}/receipt"
    answer = await client.get(path, headers={**who(), "Accept": "application/json"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    receipt = answer.json()
    if runtime.tokens is not None:                # signed with the issuer's current key
        from joserfc import jwt
        from joserfc.jwk import KeySet

        signed = await client.get(path, headers=who())
        assert signed.headers["content-type"] == "application/jwt"
        keys = KeySet.import_key_set(runtime.tokens.keys.jwks())
        assert jwt.decode(signed.text, keys).claims == receipt
    assert receipt["version"] == "KI-CR-v1.1.0" and receipt["jurisdiction"] == "JP"
    assert receipt["consentReceiptID"] == created["id"]
    assert receipt["piiPrincipalId"] == owner()
    assert abs(receipt["consentTimestamp"] - time.time()) < 60
    assert receipt["piiControllers"][0]["piiController"] == "ACME Mobility"
    assert receipt["policyUrl"] == "https://acme.example/privacy" and receipt["sensitive"] is True
    assert receipt["collectionMethod"]
    service = receipt["services"][0]
    assert service["service"] == "ACME Navi"
    purpose = service["purposes"][0]
    assert purpose["purpose"] == "Suggest routes" and purpose["purposeCategory"] == ["ServiceProvision"]
    assert purpose["consentType"] == "EXPLICIT" and purpose["piiCategory"] == ["health"]
    assert "2030-04-01T09:00:00+09:00" in purpose["termination"]


def test_receipt_is_signed_with_the_current_token_key() -> None:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})

    class Keys:
        def signing_key(self) -> tuple[str, RSAKey]:
            return "k1", key

    class Tokens:
        keys = Keys()

    signed = sign_receipt(Tokens(), {"version": "KI-CR-v1.1.0", "consentReceiptID": "x"})
    assert signed is not None
    token = jwt.decode(signed, key)
    assert token.header["kid"] == "k1" and token.claims["consentReceiptID"] == "x"
    assert sign_receipt(None, {}) is None


async def test_page_lists_consents_in_the_callers_language(client: httpx.AsyncClient) -> None:
    created = (await client.post("/me/consents", headers=who(), json={
        "category": "location", "organization": ORG, "purpose": PURPOSE})).json()
    ja = await client.get("/me/consents/page", headers={**who(), "Accept-Language": "ja,en;q=0.5"})
    assert ja.status_code == 200 and "同意の管理" in ja.text and "撤回する" in ja.text
    assert f'action="/me/consents/{created["id"]}/withdraw"' in ja.text
    assert "frame-ancestors 'none'" in ja.headers["content-security-policy"]
    en = await client.get("/me/consents/page", headers={**who(), "Accept-Language": "en-US"})
    assert "Your consents" in en.text and "ACME Mobility" in en.text
    posted = await client.post(f"/me/consents/{created['id']}/withdraw", headers=who())
    assert posted.status_code == 303 and posted.headers["location"] == "/me/consents/page"
    after = await client.get("/me/consents/page", headers=who())
    assert "withdrawn" in after.text and "<button" not in after.text
    assert language("fr, ja;q=0.8, en;q=0.9") == "en" and language("") == "en"
    assert language("ja-JP") == "ja"


async def test_through_the_real_app(auth_app: Any, auth_client: httpx.AsyncClient,
                                    token_for: Any) -> None:
    runtime = auth_app.state.auth
    if runtime.tokens is None:
        pytest.skip("the token issuer is not wired yet")
    await runtime.directory.create_organization(ORG, "ACME Mobility", "service-provider")
    await runtime.directory.create_client("ACME Navi", organization_id=ORG, client_id="acme-navi",
                                          purposes=(Purpose(PURPOSE, "Suggest routes"),))
    token = await token_for(roles=["resident"], scopes="openid consent")
    auth = {"Authorization": f"Bearer {token}"}
    created = await auth_client.post("/me/consents", headers=auth, json={
        "category": "location", "organization": ORG, "purpose": PURPOSE, "durationDays": 1})
    assert created.status_code == 201, created.text
    receipt = await auth_client.get(f"/me/consents/{created.json()['id']}/receipt", headers=auth)
    assert receipt.status_code == 200
    trail = await auth_client.get("/me/audit", headers=auth)
    assert trail.status_code == 200 and trail.json()[0]["event"] == "consent.given"
    assert datetime.fromisoformat(trail.json()[0]["at"]).tzinfo == UTC
