"""The audit log: append, search, paging, the owner's own trail, the provision report, retention."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from cityos.auth.runtime import AuthRuntime
from cityos.core.access import ACCOUNT_URN, AuditRecord
from cityos.core.http import handle_problem
from cityos.core.problems import Problem
from cityos.security import AUDIT_ROUTES, AuditLog, AuditQuery, parse_retention
from tests.auth.test_consent import ALICE, BOB, ActAs, who

ALICE_URN, BOB_URN = ACCOUNT_URN + ALICE, ACCOUNT_URN + BOB


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def runtime(auth_runtime: AuthRuntime) -> AuthRuntime:
    return auth_runtime


@pytest.fixture
async def client(runtime: AuthRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=AUDIT_ROUTES, exception_handlers={Problem: handle_problem})
    app.state.auth = runtime
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ActAs(app)),
                                 base_url="http://testserver") as c:
        yield c


def read(owner: str, category: str = "location", org: str = "acme", purpose: str = "nav",
         tenant: str = "", actor: str = "acme-navi", event: str = "pd.read") -> AuditRecord:
    return AuditRecord(event=event, actor_kind="client", actor_sub=actor, tenant=tenant,
                       client_id=actor, processor_org=org, purpose=purpose, owner_id=owner,
                       category=category, targets=("urn:ngsi-ld:Trip:1",), request_id="r1")


async def at(log: AuditLog, when: str, records: list[AuditRecord]) -> None:
    log._clock = lambda: epoch(when)
    await log.append(records)


async def test_append_query_filters_and_paging(runtime: AuthRuntime,
                                               client: httpx.AsyncClient) -> None:
    log: AuditLog = runtime.audit
    await log.append([read(ALICE_URN, actor=f"app-{i}") for i in range(5)])
    await log.append([read(BOB_URN, org="other", tenant="kobe"),
                      AuditRecord(event="auth.login", actor_kind="user", actor_sub=ALICE,
                                  targets=tuple(f"t{i}" for i in range(150)))])
    everything = await log.query(AuditQuery())
    assert [r["event"] for r in everything][:2] == ["auth.login", "pd.read"]   # newest first
    assert len(everything) == 7 and everything[0]["targets"].count('"t') == 100   # capped
    auditor = who(subject="aud", roles=("auditor",), scopes="audit")
    page = await client.get("/audit?organization=acme&limit=2", headers=auditor)
    assert page.status_code == 200 and [r["actor"] for r in page.json()] == ["app-4", "app-3"]
    assert page.headers["link"] == '</audit?organization=acme&limit=2&offset=2>; rel="next"'
    last = await client.get("/audit?organization=acme&limit=2&offset=4", headers=auditor)
    assert [r["actor"] for r in last.json()] == ["app-0"] and "link" not in last.headers
    assert len((await client.get("/audit?event=pd.*", headers=auditor)).json()) == 5   # tenant ""
    assert (await client.get("/audit?tenant=kobe", headers=auditor)).status_code == 403
    platform = who(subject="root", roles=("platform-operator",), scopes="audit")
    kobe = await client.get(f"/audit?tenant=kobe&ownerId={BOB_URN}", headers=platform)
    assert [r["organization"] for r in kobe.json()] == ["other"]
    record = kobe.json()[0]
    assert record["targets"] == ["urn:ngsi-ld:Trip:1"] and record["purpose"] == "nav"
    assert record["at"].endswith("Z") and record["requestId"] == "r1"
    for bad in ("limit=0", "limit=x", "offset=-1", "from=yesterday", "to=2026-01-01T00:00:00"):
        assert (await client.get(f"/audit?{bad}", headers=auditor)).status_code == 400, bad


async def test_owner_sees_only_own_records(runtime: AuthRuntime,
                                           client: httpx.AsyncClient) -> None:
    await runtime.audit.append([read(ALICE_URN), read(BOB_URN), read(ALICE_URN, "health")])
    mine = await client.get("/me/audit", headers=who())
    assert mine.status_code == 200
    assert {(r["ownerId"], r["category"]) for r in mine.json()} == {
        (ALICE_URN, "location"), (ALICE_URN, "health")}
    bobs = await client.get("/me/audit", headers=who(subject=BOB))
    assert [r["ownerId"] for r in bobs.json()] == [BOB_URN]
    paged = await client.get("/me/audit?limit=1", headers=who())
    assert len(paged.json()) == 1 and 'rel="next"' in paged.headers["link"]
    assert (await client.get("/me/audit")).status_code == 401
    assert (await client.get("/me/audit", headers=who(kind="client"))).status_code == 403


async def test_consent_changes_are_in_the_owners_trail(runtime: AuthRuntime,
                                                       client: httpx.AsyncClient) -> None:
    consent = await runtime.consents.give(ALICE_URN, "location", "acme", "nav")
    await runtime.consents.withdraw(consent.id, ALICE_URN)
    trail = (await client.get("/me/audit", headers=who())).json()
    assert [r["event"] for r in trail] == ["consent.withdrawn", "consent.given"]
    assert trail[1]["targets"] == [consent.id] and trail[1]["actor"] == ALICE


async def test_provision_report_per_processor_purpose_category_and_month(
        runtime: AuthRuntime, client: httpx.AsyncClient) -> None:
    log = AuditLog(runtime.db)                       # same table, a clock of its own
    await at(log, "2026-01-31T15:30:00+00:00", [read(ALICE_URN), read(BOB_URN)])  # Feb in Japan
    await at(log, "2026-01-31T14:30:00+00:00", [read(ALICE_URN)])                # Jan in Japan
    await at(log, "2026-02-10T00:00:00+00:00", [read(ALICE_URN), read(ALICE_URN, "health"),
                                                read(ALICE_URN, event="pd.notify"),
                                                read(ALICE_URN, event="consent.given")])
    auditor = who(subject="aud", roles=("auditor",), scopes="audit")
    report = await client.get("/audit/report", headers=auditor)
    assert report.status_code == 200
    rows = [(r["month"], r["category"], r["records"], r["owners"]) for r in report.json()["rows"]]
    assert rows == [("2026-01", "location", 1, 1), ("2026-02", "health", 1, 1),
                    ("2026-02", "location", 4, 2)]
    window = await client.get("/audit/report?from=2026-02-01T00:00:00%2B09:00&organization=acme",
                              headers=auditor)
    assert [r["month"] for r in window.json()["rows"]] == ["2026-02", "2026-02"]
    as_csv = await client.get("/audit/report", headers={**auditor, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert table[0] == {"month": "2026-01", "organization": "acme", "purpose": "nav",
                        "category": "location", "records": "1", "owners": "1"}


async def test_retention(runtime: AuthRuntime) -> None:
    await runtime.audit.stop()          # its own retention job must not race this one
    log = AuditLog(runtime.db, "P1Y")
    await at(log, "2020-01-01T00:00:00+00:00", [read(ALICE_URN)])
    log._clock = time.time
    await log.append([read(BOB_URN)])
    assert await log.purge_older_than(log.retention) == 1
    assert [r["owner_id"] for r in await log.query(AuditQuery())] == [BOB_URN]
    assert parse_retention("P3Y") == pytest.approx(3 * 365.2425 * 86400)
    assert parse_retention("P1M2DT3H") == pytest.approx(365.2425 * 86400 / 12 + 2 * 86400 + 10800)
    for bad in ("3 years", "P", "PT", "P0D", ""):
        with pytest.raises(ValueError):
            parse_retention(bad)
    assert datetime.now(UTC).year >= 2026
