"""Bad input to the identity APIs gets a precise 4xx, never a 500 (every /auth, /admin, /me and
/audit route, as a platform operator and without a token, with broken bodies and parameters)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.auth.test_matrix import operations

BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b'{"username": 5, "password": [], "id": {}, "name": null, "roles": "x", "actions": 7, '
     b'"subject": [], "validFrom": "not a time", "redirectUris": [1], "category": {}, '
     b'"expiresAt": -1, "durationDays": "x", "organization": 3}', "application/json"),
    (b'{"id": "' + "長".encode() * 5000 + b'"}', "application/json"),
    (b"grant_type=%ff%fe&code=\x00&scope=" + b"a" * 5000, "application/x-www-form-urlencoded"),
    (b"\xff\xfe\x00garbage", "text/plain"),
]
QUERIES = ["", "?limit=-1&offset=abc&from=yesterday&to=2026-13-45T99:00:00+09:00",
           "?client_id=%00&redirect_uri=javascript:alert(1)&response_type=token&scope=" + "x" * 3000]
IDENTITY = ("/auth", "/admin", "/me", "/audit", "/.well-known")


@pytest.mark.parametrize("database_url", ["sqlite://"], indirect=False)
async def test_no_identity_route_answers_500(auth_client: httpx.AsyncClient, auth_app: Any,
                                             token_for: Any) -> None:
    platform = await token_for(roles=["platform-operator"], subject="platform-admin")
    failures: list[str] = []
    calls = 0
    for method, path in operations(auth_app):
        if not path.startswith(IDENTITY) or (method, path) == ("DELETE", "/me/sessions"):
            continue
        for headers in ({"Authorization": f"Bearer {platform}"}, {}):
            for body, media in BODIES:
                for query in QUERIES:
                    r = await auth_client.request(method, path + query, content=body,
                                                  headers={**headers, "Content-Type": media})
                    calls += 1
                    if r.status_code >= 500:
                        failures.append(f"{method} {path}{query[:30]} {body[:30]!r}: "
                                        f"{r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures[:20])
    assert calls > 1000
