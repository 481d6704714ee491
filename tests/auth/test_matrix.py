"""Roles × every API operation: no access beyond policy (issue #4, deliverable 8).

Every route of the app is called as each built-in role (and as an operator of another tenant);
the answer must be 401/403 exactly where the role's policies do not allow the route's action, and
never 401/403 where they do.  The expected actions per role are written out here, not read from
the policies, so a change to the built-in policies has to be made in both places.  A route
without an access rule fails the first test: new APIs are closed until someone decides.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from cityos.auth.routes_actions import OPEN, SELF, action_of
from cityos.core.access import ACTIONS

ENTITY_ACTIONS = {"entity.read", "entity.write", "entity.delete"}
EXPECTED: dict[str, set[str]] = {
    "anonymous": set(),
    "resident": {"entity.read", "consent.manage"},
    "developer": {"entity.read", "subscription.manage"},
    "operator": set(ACTIONS),
    "auditor": {"entity.read", "audit.read"},
    "data-provider": ENTITY_ACTIONS | {"pd.manage", "device.manage", "import.run",
                                       "system.manage", "context.manage"},
}
# Refused by the admin API itself although the role's policy allows the action: organizations and
# roles are the platform's (an operator administers its own organizations' accounts, clients and
# policies), and a client without an organization of the operator's is not the operator's.
ADMIN_SCOPED = {("operator", "POST", "/admin/organizations"),
                ("operator", "DELETE", "/admin/organizations/x"),
                ("operator", "POST", "/admin/roles"), ("operator", "DELETE", "/admin/roles/x"),
                ("operator", "POST", "/admin/clients")}
# spot checks of the classification itself (method, path, action)
CLASSIFIED = [
    ("GET", "/ngsi-ld/v1/entities", "entity.read"),
    ("POST", "/ngsi-ld/v1/entities", "entity.write"),
    ("DELETE", "/ngsi-ld/v1/entities/urn:x", "entity.delete"),
    ("POST", "/ngsi-ld/v1/entityOperations/query", "entity.read"),
    ("POST", "/ngsi-ld/v1/entityOperations/upsert", "entity.write"),
    ("POST", "/ngsi-ld/v1/entityOperations/delete", "entity.delete"),
    ("GET", "/ngsi-ld/v1/temporal/entities/urn:x", "entity.read"),
    ("POST", "/ngsi-ld/v1/temporal/entityOperations/query", "entity.read"),
    ("PATCH", "/ngsi-ld/v1/subscriptions/urn:x", "subscription.manage"),
    ("GET", "/ngsi-ld/v1/csourceRegistrations", "csource.manage"),
    ("GET", "/ngsi-ld/v1/jsonldContexts/kobe", OPEN),
    ("POST", "/ngsi-ld/v1/jsonldContexts", "context.manage"),
    ("POST", "/v2/op/update", "entity.write"),
    ("GET", "/v2/entities/Room1/attrs/temperature/value", "entity.read"),
    ("POST", "/iot/services", "device.manage"),
    ("POST", "/iot/json", OPEN),
    ("POST", "/ingest/v1/imports", "import.run"),
    ("POST", "/assets/v1/systems/s1/run", "system.manage"),
    ("GET", "/admin/accounts", "account.manage"),
    ("PUT", "/admin/policies/p1", "policy.manage"),
    ("GET", "/audit/report", "audit.read"),
    ("GET", "/me/consents", SELF),
    ("GET", "/ngsi-ld/v1/entitiesX", None),
    ("GET", "/internal/anything", None),
]


def operations(app: Any) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of the app, path parameters filled in."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        route = getattr(route, "route", route)          # MalformedPath wraps a Route
        if not isinstance(route, Route) or route.methods is None:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        found += [(m, path) for m in sorted(route.methods) if m != "HEAD"]
    return sorted(set(found))


@pytest.mark.parametrize(("method", "path", "action"), CLASSIFIED)
def test_paths_are_classified_as_declared(method: str, path: str, action: str | None) -> None:
    assert action_of(method, path) == action


@pytest.mark.parametrize("database_url", ["sqlite://"], indirect=False)
async def test_every_route_has_an_access_rule(auth_app: Any) -> None:
    missing = [f"{m} {p}" for m, p in operations(auth_app) if action_of(m, p) is None]
    assert not missing, "routes without an access rule (routes_actions.py):\n" + "\n".join(missing)
    assert len(operations(auth_app)) > 100


async def _token(token_for: Any, role: str, tenant: str = "") -> dict[str, str]:
    if role == "anonymous":
        return {}
    return {"Authorization": f"Bearer {await token_for(roles=[role], tenant=tenant)}"}


@pytest.mark.parametrize("database_url", ["sqlite://"], indirect=False)
async def test_roles_times_operations(auth_client: httpx.AsyncClient, auth_app: Any,
                                      token_for: Any) -> None:
    refused: dict[tuple[str, str, str], int] = {}
    checked = 0
    for role, allowed in EXPECTED.items():
        headers = await _token(token_for, role)
        for method, path in operations(auth_app):
            action = action_of(method, path)
            if action == OPEN or (method, path) == ("DELETE", "/me/sessions"):
                # login pages and the token endpoint answer 401 themselves; logging out
                # everywhere would void the token the rest of the loop uses (test_login_pages)
                continue
            r = await auth_client.request(method, path, headers=headers, content=b"{}")
            denied = r.status_code in (401, 403)
            if action == SELF:
                expect_denied = role == "anonymous"
            else:
                expect_denied = action not in allowed or (role, method, path) in ADMIN_SCOPED
            if denied != expect_denied:
                refused[(role, method, path)] = r.status_code
            if denied and role == "anonymous":
                assert r.status_code == 401 and "www-authenticate" in r.headers, (method, path)
            checked += 1
    assert not refused, f"answers against policy: {refused}"
    assert checked > 400


@pytest.mark.parametrize("database_url", ["sqlite://"], indirect=False)
async def test_an_operator_of_another_tenant_gets_nothing_here(auth_client: httpx.AsyncClient,
                                                              auth_app: Any,
                                                              token_for: Any) -> None:
    headers = {**await _token(token_for, "operator", tenant="osaka"),
               "NGSILD-Tenant": "kobe", "Fiware-Service": "kobe"}
    wrong: list[str] = []
    for method, path in operations(auth_app):
        action = action_of(method, path)
        if action in (OPEN, SELF) or path.startswith(("/admin", "/audit")):
            continue        # not tenant-scoped by header (the admin API scopes by organization)
        r = await auth_client.request(method, path, headers=headers, content=b"{}")
        if r.status_code != 403:
            wrong.append(f"{method} {path}: {r.status_code}")
    assert not wrong, wrong
