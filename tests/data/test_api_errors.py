"""Contract tests: error responses and request framing (CIM 009 5.5.2, 5.5.3, 6.3.4, 6.3.5).

Every error is a ProblemDetails JSON object with the NGSI-LD error type URI, a title, the status
and a detail, sent as ``application/json`` (clause 5.5.3 says so explicitly, not problem+json).
Request bodies: 415 for other media types, 400 when JSON-LD and Link header meet or when a JSON
body carries @context; 406 for an Accept nothing satisfies.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EID = "urn:ngsi-ld:Bridge:akashi-kaikyo"
LINK = ('<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; '
        'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')
BRIDGE: dict[str, Any] = {"id": EID, "type": "Bridge",
                          "name": {"type": "Property", "value": "明石海峡大橋"},
                          "length": {"type": "Property", "value": 3911, "unitCode": "MTR"}}


def assert_problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body["type"] == ERR + name
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["title"] != body["detail"]
    assert body["status"] == status


async def test_error_catalogue(client: httpx.AsyncClient) -> None:
    """One request per NGSI-LD error type the broker can produce, each fully checked."""
    assert (await client.post(f"{BASE}/entities", json=BRIDGE)).status_code == 201
    assert_problem(await client.post(f"{BASE}/entities", json=BRIDGE), 409, "AlreadyExists")
    assert_problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Bridge:none"),
                   404, "ResourceNotFound")
    assert_problem(await client.post(f"{BASE}/entities", json={"id": "x", "type": "Bridge"}),
                   400, "BadRequestData")
    assert_problem(await client.post(f"{BASE}/entities", content=b"{not json",
                                     headers={"Content-Type": "application/json"}),
                   400, "InvalidRequest")
    assert_problem(await client.get(f"{BASE}/entities", params={"type": "Bridge", "limit": "9999"}),
                   403, "TooManyResults")
    assert_problem(await client.get(f"{BASE}/types", headers={"NGSILD-Tenant": "void"}),
                   404, "NonexistentTenant")


async def test_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    for content_type in ("text/plain", "application/xml", ""):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(f"{BASE}/entities", content=b'{"id": "urn:x:1"}',
                                     headers=headers)
        assert response.status_code == 415, content_type
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert response.json()["type"].startswith(ERR)
    # merge-patch+json is only for PATCH /entities/{id}
    response = await client.post(f"{BASE}/entities", json=BRIDGE,
                                 headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 415


async def test_charset_parameter_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entities", json=BRIDGE,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


async def test_json_ld_body_with_link_header_is_400(client: httpx.AsyncClient) -> None:
    body = {**BRIDGE, "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
    response = await client.post(f"{BASE}/entities", json=body,
                                 headers={"Content-Type": "application/ld+json", "Link": LINK})
    assert_problem(response, 400, "BadRequestData")


async def test_json_ld_body_without_context_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entities", json=BRIDGE,
                                 headers={"Content-Type": "application/ld+json"})
    assert_problem(response, 400, "BadRequestData")


async def test_json_body_with_context_is_400(client: httpx.AsyncClient) -> None:
    body = {**BRIDGE, "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
    assert_problem(await client.post(f"{BASE}/entities", json=body), 400, "BadRequestData")
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404


async def test_not_acceptable_is_406(client: httpx.AsyncClient) -> None:
    await client.post(f"{BASE}/entities", json=BRIDGE)
    for path in (f"/entities/{EID}", "/types", "/attributes"):
        response = await client.get(BASE + path, headers={"Accept": "application/xml"})
        assert response.status_code == 406, path
        assert response.headers["content-type"].split(";")[0] == "application/json"
    # geo+json is for entities only
    response = await client.get(f"{BASE}/types", headers={"Accept": "application/geo+json"})
    assert response.status_code == 406


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("PATCH", f"/entities/{EID}/attrs", {"json": {"length": {"type": "Property", "value": 1}}}),
    ("POST", f"/entities/{EID}/attrs", {"json": {"length": {"type": "Property", "value": 1}}}),
    ("PATCH", f"/entities/{EID}/attrs/length", {"json": {"value": 1}}),
    ("PUT", f"/entities/{EID}/attrs/length", {"json": {"type": "Property", "value": 1}}),
    ("DELETE", f"/entities/{EID}/attrs/length", {}),
    ("PUT", f"/entities/{EID}", {"json": {"type": "Bridge"}}),
    ("PATCH", f"/entities/{EID}", {"json": {"length": 1}}),
    ("DELETE", f"/entities/{EID}", {}),
])
async def test_operations_on_a_missing_entity_are_404(client: httpx.AsyncClient, method: str,
                                                      path: str, kwargs: dict[str, Any]) -> None:
    response = await client.request(method, BASE + path, **kwargs)
    assert_problem(response, 404, "ResourceNotFound")


async def test_bad_query_parameters_are_400(client: httpx.AsyncClient) -> None:
    for params in ({"type": "Bridge", "count": "yes"}, {"type": "Bridge", "offset": "-1"},
                   {"type": "Bridge", "limit": "0"}, {"type": "Bridge", "pick": "a", "attrs": "b"},
                   {"type": "(Bridge"}, {"id": "not-a-uri"}, {"type": "Bridge", "q": "a=="}):
        response = await client.get(f"{BASE}/entities", params=params)
        assert response.status_code == 400, params
        assert response.json()["type"] in (ERR + "BadRequestData", ERR + "InvalidRequest")


async def test_empty_and_non_object_bodies_are_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entities", content=b"",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    for body in ([BRIDGE], "text", 42):
        response = await client.post(f"{BASE}/entities", json=body)
        assert response.status_code == 400, body
        assert response.json()["type"].startswith(ERR)


async def test_oversized_body_is_413(client: httpx.AsyncClient, app: Any) -> None:
    limit = app.state.settings.max_body_bytes
    body = b'{"id": "urn:x:1", "type": "T", "p": "' + b"x" * limit + b'"}'
    response = await client.post(f"{BASE}/entities", content=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["status"] == 413
