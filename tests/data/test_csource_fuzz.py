"""Property-based: no malformed registration, csource subscription or query yields a 500.

Hypothesis builds hostile registration bodies (every member with wrong shapes) and query strings;
every answer must be a success or a precise NGSI-LD 4xx problem, and a refused write leaves the
stored registrations as they were.
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

CSR = "/ngsi-ld/v1/csourceRegistrations"
CSUB = "/ngsi-ld/v1/csourceSubscriptions"
SEED = "urn:ngsi-ld:ContextSourceRegistration:seed"
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

value = json_values(text=12, keys=8, width=3, leaves=10)
entity_info = st.one_of(value, st.fixed_dictionaries(
    {}, optional={"type": st.one_of(st.just("Vehicle"), value),
                  "id": st.one_of(st.just("urn:ngsi-ld:Vehicle:1"), value),
                  "idPattern": st.one_of(st.just("^urn:.*"), st.just("(("), value)}))
information = st.one_of(value, st.lists(st.one_of(value, st.fixed_dictionaries(
    {}, optional={"entities": st.one_of(value, st.lists(entity_info, max_size=3)),
                  "propertyNames": st.one_of(value, st.lists(st.text(max_size=6), max_size=3)),
                  "relationshipNames": value})), max_size=3))
registration = st.one_of(value, st.fixed_dictionaries(
    {"type": st.one_of(st.just("ContextSourceRegistration"), value)},
    optional={"id": st.one_of(st.just("urn:ngsi-ld:ContextSourceRegistration:f"), value),
              "information": information,
              "endpoint": st.one_of(st.just("http://source.example.jp"), value),
              "mode": st.one_of(st.sampled_from(["inclusive", "exclusive", "redirect",
                                                 "auxiliary"]), value),
              "operations": st.one_of(st.lists(st.sampled_from(
                  ["federationOps", "retrieveOps", "createEntity", "bogus"]), max_size=3), value),
              "contextSourceInfo": value, "expiresAt": value, "location": value,
              "managementInterval": value, "scope": value, "tenant": value, "extra": value}))
subscription = st.one_of(value, st.fixed_dictionaries(
    {"type": st.one_of(st.just("Subscription"), value)},
    optional={"entities": value, "watchedAttributes": value, "csf": value, "geoQ": value,
              "notification": st.one_of(value, st.just({"endpoint": {
                  "uri": "http://receiver.example.jp/n"}})),
              "isActive": value, "expiresAt": value, "timeInterval": value}))


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    app = create_app(Settings.load(database_url="sqlite://", context_fetch_enabled=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        seed = {"id": SEED, "type": "ContextSourceRegistration", "endpoint": "http://s.example.jp",
                "information": [{"entities": [{"type": "Vehicle"}]}]}
        assert client.post(CSR, json=seed).status_code == 201
        yield client




def _snapshot(api: TestClient) -> Any:
    return api.get(CSR, params={"limit": 100}).json()


@FUZZ
@given(method_path=st.sampled_from([("POST", CSR), ("PATCH", f"{CSR}/{SEED}"), ("POST", CSUB)]),
       body=st.one_of(registration, subscription), raw=st.booleans(),
       junk=st.binary(max_size=30))
def test_malformed_bodies_never_500_and_never_half_apply(
        api: TestClient, method_path: tuple[str, str], body: Any, raw: bool,
        junk: bytes) -> None:
    before = _snapshot(api)
    data = junk if raw else json.dumps(body).encode()
    response = api.request(method_path[0], method_path[1], content=data,
                           headers={"content-type": "application/json"})
    check_ngsild_answer(response)
    if response.status_code >= 400:
        assert _snapshot(api) == before
    for reg in _snapshot(api):                     # keep the store small: only the seed stays
        if reg["id"] != SEED:
            api.delete(f"{CSR}/{reg['id']}")
    api.patch(f"{CSR}/{SEED}", json={"endpoint": "http://s.example.jp",
                                     "information": [{"entities": [{"type": "Vehicle"}]}]})


@FUZZ
@given(params=st.dictionaries(st.sampled_from(
    ["type", "id", "idPattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
     "geoproperty", "limit", "offset", "count", "options"]), st.text(max_size=20), max_size=4))
def test_malformed_registration_queries_never_500(api: TestClient, params: dict[str, str]) -> None:
    check_ngsild_answer(api.get(CSR, params=params))
