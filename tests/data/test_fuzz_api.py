"""Property-based tests: no malformed body, header or query string yields a 500 or a partial write.

Hypothesis generates hostile requests; every answer must be a precise 4xx problem (or a success),
and after a refused write the stored data must be exactly what it was before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.data.fuzz_support import check_ngsild_answer, json_values

BASE = "/ngsi-ld/v1"
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_value = json_values(text=20, keys=10, width=4, leaves=12)
attr_names = st.one_of(st.sampled_from(["temperature", "location", "name", "@context", "id", "type",
                                        "observedAt", "a b", "x;y", "名前", ""]), st.text(max_size=12))
attribute = st.one_of(
    json_value,
    st.fixed_dictionaries({"type": st.sampled_from(["Property", "Relationship", "GeoProperty",
                                                    "LanguageProperty", "VocabProperty",
                                                    "ListProperty", "JsonProperty", "Bogus"])},
                          optional={"value": json_value, "object": json_value,
                                    "languageMap": json_value, "vocab": json_value,
                                    "valueList": json_value, "json": json_value,
                                    "observedAt": json_value, "datasetId": json_value,
                                    "unitCode": json_value}),
)
entity_body = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"id": st.one_of(st.just("urn:ngsi-ld:Fuzz:1"), json_value),
         "type": st.one_of(st.just("Fuzz"), json_value)},
        optional={"x": attribute, "location": attribute, "name": attribute}),
    st.dictionaries(attr_names, attribute, max_size=5),
)
content_types = st.sampled_from(["application/json", "application/ld+json", "text/plain", "",
                                 "application/json; charset=utf-8", "application/geo+json",
                                 "application/merge-patch+json", "multipart/form-data"])
links = st.one_of(st.none(), st.sampled_from([
    '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
    "garbage", "<>; rel=\"http://www.w3.org/ns/json-ld#context\"",
    '<ftp://x>; rel="http://www.w3.org/ns/json-ld#context"']))


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    app = create_app(Settings.load(database_url="sqlite://", max_batch_size=20,
                                   context_fetch_enabled=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        seed = {"id": "urn:ngsi-ld:Fuzz:seed", "type": "Fuzz",
                "temperature": {"type": "Property", "value": 20}}
        assert client.post(f"{BASE}/entities", json=seed).status_code == 201
        yield client


def _snapshot(api: TestClient) -> Any:
    response = api.get(f"{BASE}/entities", params={"local": "true", "limit": 200,
                                                   "options": "sysAttrs"})
    assert response.status_code == 200
    return response.json()




WRITES = [("POST", "/entities"), ("PUT", "/entities/urn:ngsi-ld:Fuzz:seed"),
          ("PATCH", "/entities/urn:ngsi-ld:Fuzz:seed"), ("POST", "/entities/urn:ngsi-ld:Fuzz:seed/attrs"),
          ("PATCH", "/entities/urn:ngsi-ld:Fuzz:seed/attrs"),
          ("PATCH", "/entities/urn:ngsi-ld:Fuzz:seed/attrs/temperature"),
          ("PUT", "/entities/urn:ngsi-ld:Fuzz:seed/attrs/temperature"),
          ("POST", "/entityOperations/create"), ("POST", "/entityOperations/upsert"),
          ("POST", "/entityOperations/update"), ("POST", "/entityOperations/merge"),
          ("POST", "/entityOperations/delete"), ("POST", "/entityOperations/query"),
          ("POST", "/jsonldContexts")]


@FUZZ
@given(route=st.sampled_from(WRITES), body=st.one_of(entity_body, st.lists(entity_body, max_size=4)),
       content_type=content_types, link=links, raw=st.booleans(), junk=st.binary(max_size=40))
def test_malformed_writes_never_500_and_never_half_apply(
        api: TestClient, route: tuple[str, str], body: Any, content_type: str, link: str | None,
        raw: bool, junk: bytes) -> None:
    before = _snapshot(api)
    headers = {"content-type": content_type} if content_type else {}
    if link:
        headers["link"] = link
    data = junk if raw else json.dumps(body).encode()
    response = api.request(route[0], BASE + route[1], content=data, headers=headers)
    check_ngsild_answer(response)
    if response.status_code >= 400:
        assert _snapshot(api) == before, f"{route} answered {response.status_code} but changed data"
    # Put the seed back so every example starts from the same state.
    api.post(f"{BASE}/entityOperations/upsert", json=[{
        "id": "urn:ngsi-ld:Fuzz:seed", "type": "Fuzz",
        "temperature": {"type": "Property", "value": 20}}])


query_keys = st.sampled_from(["type", "id", "idPattern", "q", "attrs", "pick", "omit", "limit",
                              "offset", "count", "options", "format", "lang", "georel",
                              "geometry", "coordinates", "geoproperty", "geometryProperty",
                              "scopeQ", "datasetId", "details", "local"])
query_values = st.one_of(st.text(max_size=30), st.sampled_from([
    "Fuzz", "temperature>10", "near;maxDistance==100", "Point", "[135,34]", "[[[0,0]]]", "-1",
    "99999", "true", "keyValues,concise", "((", "a==\"", "urn:x", ".*", "[", "Polygon", "within"]))


@FUZZ
@given(params=st.dictionaries(query_keys, query_values, max_size=6),
       path=st.sampled_from(["/entities", "/entities/urn:ngsi-ld:Fuzz:seed", "/types",
                             "/types/Fuzz", "/attributes", "/attributes/temperature",
                             "/jsonldContexts"]),
       accept=st.sampled_from(["application/json", "application/ld+json", "application/geo+json",
                               "*/*", "text/html", "", "application/json;q=0"]),
       tenant=st.sampled_from(["", "other", "bad tenant!", "東京"]))
def test_malformed_queries_never_500(api: TestClient, params: dict[str, str], path: str,
                                     accept: str, tenant: str) -> None:
    headers = {}
    if accept:
        headers["accept"] = accept
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    try:
        response = api.get(BASE + path, params=params, headers=headers)
    except UnicodeEncodeError:
        return  # httpx refuses non-ASCII header values before anything is sent
    check_ngsild_answer(response)
