"""Hostile NGSI v2 requests: never a 500, always Orion's error body, never a partial write."""

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
from tests.data.fuzz_support import json_values

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
value = json_values(text=12, keys=8, width=3, leaves=8)
names = st.one_of(st.sampled_from(["temperature", "location", "id", "type", "dateCreated", "a b",
                                   "温度", "x;y", "", "*", "geo:distance"]), st.text(max_size=8))
v2types = st.sampled_from(["Number", "Text", "DateTime", "geo:json", "geo:point", "geo:line",
                           "geo:box", "geo:polygon", "Relationship", "StructuredValue", "a b"])
attribute = st.one_of(value, st.fixed_dictionaries({}, optional={
    "type": st.one_of(v2types, value), "value": value,
    "metadata": st.one_of(value, st.dictionaries(names, st.fixed_dictionaries(
        {}, optional={"type": st.one_of(v2types, value), "value": value}), max_size=2))}))
entity = st.one_of(value, st.fixed_dictionaries(
    {"id": st.one_of(st.just("Fz1"), st.text(max_size=10), value)},
    optional={"type": st.one_of(st.just("Fuzz"), value), "temperature": attribute,
              "location": attribute}), st.dictionaries(names, attribute, max_size=4))
batch = st.fixed_dictionaries({}, optional={
    "actionType": st.one_of(st.sampled_from(["append", "appendStrict", "update", "delete",
                                             "replace"]), value),
    "entities": st.one_of(st.lists(entity, max_size=3), value)})
WRITES = [("POST", "/v2/entities?options=upsert"), ("POST", "/v2/entities?options=keyValues"),
          ("POST", "/v2/entities/Seed/attrs"), ("PATCH", "/v2/entities/Seed/attrs"),
          ("PUT", "/v2/entities/Seed/attrs"), ("PUT", "/v2/entities/Seed/attrs/temperature"),
          ("PUT", "/v2/entities/Seed/attrs/temperature/value"), ("POST", "/v2/op/update"),
          ("POST", "/v2/op/query")]
SEED = {"id": "Seed", "type": "Fuzz", "temperature": {"type": "Number", "value": 20}}


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    app = create_app(Settings.load(database_url="sqlite://", max_batch_size=20,
                                   context_fetch_enabled=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v2/entities", json=SEED).status_code == 201
        yield client


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "description"} and body["error"], body


def _snapshot(api: TestClient) -> Any:
    response = api.get("/v2/entities?limit=1000&attrs=dateModified,*")
    assert response.status_code == 200
    return response.json()


@FUZZ
@given(route=st.sampled_from(WRITES), body=st.one_of(entity, batch),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/xml"]),
       raw=st.booleans(), junk=st.binary(max_size=30))
def test_malformed_v2_writes(api: TestClient, route: tuple[str, str], body: Any,
                             content_type: str, raw: bool, junk: bytes) -> None:
    before = _snapshot(api)
    headers = {"content-type": content_type} if content_type else {}
    response = api.request(route[0], route[1], content=junk if raw else json.dumps(body).encode(),
                           headers=headers)
    _check(response)
    if response.status_code >= 400:
        assert _snapshot(api) == before, f"{route} answered {response.status_code} but wrote"
    api.post("/v2/op/update", json={"actionType": "delete", "entities": [
        {"id": e["id"]} for e in _snapshot(api) if e["id"] != "Seed"]})
    api.put("/v2/entities/Seed/attrs", json={"temperature": {"type": "Number", "value": 20}})


params = st.dictionaries(st.sampled_from(
    ["id", "idPattern", "type", "typePattern", "q", "mq", "georel", "geometry", "coords", "attrs",
     "metadata", "orderBy", "limit", "offset", "options"]),
    st.one_of(st.text(max_size=20), st.sampled_from(
        ["near;maxDistance:10", "coveredBy", "point", "polygon", "34,135", "1,2;3,4", "^S",
         "temperature>1", "temperature==1..", "a.b.c", "count,keyValues", "values,unique", "!id",
         "geo:distance", "1001", "0"])), max_size=5)


@FUZZ
@given(query=params, path=st.sampled_from(["/v2/entities", "/v2/entities/Seed", "/v2/types",
                                           "/v2/entities/Seed/attrs/temperature/value"]),
       service=st.sampled_from([None, "/", "/#", "/a/#", "a", "/a b", "/a,/b"]))
def test_malformed_v2_reads(api: TestClient, query: dict[str, str], path: str,
                            service: str | None) -> None:
    headers = {"fiware-servicepath": service} if service is not None else {}
    _check(api.get(path, params=query, headers=headers))
