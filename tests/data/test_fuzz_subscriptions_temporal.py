"""Property-based tests for the subscription and temporal APIs: hostile input never yields a 500
or a partial write.

``test_fuzz_api.py`` covers the entity API.  Here Hypothesis builds subscription bodies that are
nearly right (every NGSI-LD member, each with plausible and implausible values), hostile query
strings for both APIs, and temporal writes and instance edits.  Every answer must be a success or
an NGSI-LD problem with a 4xx status; after a refused write the stored subscriptions, or the
stored history, must be exactly what they were.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.conftest import ENGINES, _empty_postgres
from tests.data.fuzz_support import check_ngsild_answer, json_values

BASE = "/ngsi-ld/v1"
SEED_ID = "urn:ngsi-ld:Fuzz:seed"
SEED_SUB = "urn:ngsi-ld:Subscription:seed"
FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_value = json_values(text=16, keys=8, width=3, leaves=8)


def either(*plausible: Any) -> st.SearchStrategy[Any]:
    """One of ``plausible`` (valid or nearly so) or any JSON value."""
    return st.one_of(st.sampled_from(plausible), json_value)


@st.composite
def nearly(draw: st.DrawFn, valid: dict[str, Any], members: dict[str, Any]) -> Any:
    """Mostly ``valid`` with up to three members replaced (from ``members``) and one dropped:
    a body that is wrong everywhere at once only ever tests the first check."""
    if draw(st.integers(0, 7)) == 0:
        return draw(json_value)
    body = dict(valid)
    for key in draw(st.lists(st.sampled_from(sorted(members)), max_size=3, unique=True)):
        body[key] = draw(members[key])
    for key in draw(st.lists(st.sampled_from(sorted(valid)), max_size=1)):
        body.pop(key, None)
    return body


accepts = st.sampled_from(["application/json"] * 3 + ["application/ld+json", "*/*", "text/html",
                                                       "application/geo+json"])
times = either("2026-11-27T09:00:00+09:00", "2026-11-27T00:00:00Z", "2030-01-01T00:00:00Z",
               "2020-01-01T00:00:00Z", "2026-13-40T25:61:00Z", "yesterday", "2026-11-27", "")
attr_list = st.one_of(st.lists(either("temperature", "location", "名前", "", "a b", "@id"),
                               max_size=3), json_value)
selector = st.fixed_dictionaries({}, optional={
    "type": either("Fuzz", "ParkingSpot", "Fuzz,Other", "(Fuzz|Other)", "", "a;b"),
    "id": either(SEED_ID, "urn:ngsi-ld:Fuzz:2", "not a uri", ""),
    "idPattern": either(".*", "urn:ngsi-ld:Fuzz:.*", "((", "[", "")})
endpoint_members = {
    "uri": either("http://127.0.0.1:9/notify", "https://127.0.0.1:9/n", "mqtt://127.0.0.1:1883/t",
                  "mqtts://127.0.0.1/t", "ftp://127.0.0.1/x", "not a uri", "http://",
                  "http://169.254.169.254/latest", "http://[::1]:9/", "http://東京.example/",
                  "http://127.0.0.1:99999/"),
    "accept": either("application/json", "application/ld+json", "application/geo+json",
                     "text/plain", ""),
    "receiverInfo": either([{"key": "X-City", "value": "Kobe"}], [{"key": "bad key\n"}], []),
    "notifierInfo": either([{"key": "MQTT-QoS", "value": "1"}],
                           [{"key": "MQTT-QoS", "value": "7"}], [{"key": "MQTT-Version",
                                                                   "value": "mqtt9"}])}
notification = nearly({"endpoint": {"uri": "http://127.0.0.1:9/notify"}}, {
    "endpoint": st.one_of(nearly({"uri": "http://127.0.0.1:9/notify"}, endpoint_members),
                          json_value),
    "attributes": attr_list,
    "format": either("normalized", "concise", "keyValues", "simplified", "x-bogus"),
    "showChanges": either(True, False, "yes"),
    "sysAttrs": either(True, False, 1),
    "timesSent": either(5, -1),
    "status": either("ok", "failed")})
temporal_q = nearly({"timerel": "after", "timeAt": "2026-11-26T00:00:00Z"}, {
    "timerel": either("before", "between", "sideways"), "timeAt": times, "endTimeAt": times,
    "timeproperty": either("modifiedAt", "deletedAt", "bogus"), "lastN": either(1, "2", 0, -3)})
geo_q = st.fixed_dictionaries({}, optional={
    "georel": either("near;maxDistance==100", "within", "intersects", "near", "bogus"),
    "geometry": either("Point", "Polygon", "LineString", "Circle"),
    "coordinates": either([135.19, 34.69], "[135.19,34.69]", [[[0, 0], [1, 0], [0, 0]]],
                          [999, 999], "[[", []),
    "geoproperty": either("location", "", "名前")})
subscription_members = {
    "id": either(SEED_SUB, "urn:ngsi-ld:Subscription:fuzz", "not a uri"),
    "subscriptionName": either("三宮の駐車場", ""),
    "description": either("説明", ""),
    "entities": st.one_of(st.lists(st.one_of(selector, json_value), max_size=3), json_value),
    "watchedAttributes": attr_list,
    "notificationTrigger": st.one_of(st.lists(either(
        "entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
        "attributeUpdated", "attributeDeleted", "bogus"), max_size=3), json_value),
    "q": either("temperature>10", "temperature==20..30", "((", 'a=="', "名前==\"x\"", "a;b|c"),
    "geoQ": st.one_of(geo_q, json_value),
    "scopeQ": either("/Kobe/#", "/", "#", "bad scope"),
    "throttling": either(0, 1, 2.5, -1, 10**12, "5"),
    "timeInterval": either(0, 1, 60, -5, 0.001, "60"),
    "expiresAt": times,
    "isActive": either(True, False, "false"),
    "notification": st.one_of(notification, json_value),
    "lang": either("ja", "en,ja", "*", "", "ja;q=x"),
    "temporalQ": st.one_of(temporal_q, json_value),
    "jsonldContext": either("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
                            "not a uri"),
    "datasetId": either(["urn:ngsi-ld:Dataset:a"], ["@none"], "urn:x"),
    "csf": either("a==1", "(("),
    "status": either("active", "paused"),
    "@context": either("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
                       {"Fuzz": "https://example.jp/Fuzz"}, ["x"], 5),
}
VALID_SUBSCRIPTION = {"type": "Subscription", "entities": [{"type": "Fuzz"}],
                      "watchedAttributes": ["temperature"],
                      "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}}


# a body that is not JSON at all is one case in eight: the rest exercise the members
mostly_json = st.sampled_from([False] * 7 + [True])
content_types = st.sampled_from(["application/json"] * 6 + [
    "application/ld+json", "text/plain", "", "application/merge-patch+json"])




def _send(client: TestClient, method: str, path: str, body: Any, content_type: str,
          raw: bool, junk: bytes) -> Any:
    headers = {"content-type": content_type} if content_type else {}
    data = junk if raw else json.dumps(body, ensure_ascii=False).encode()
    return client.request(method, BASE + path, content=data, headers=headers)


@pytest.fixture(scope="module", params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str:
    """Both engines: PostgreSQL refuses some text SQLite stores (NUL), and says so its own way."""
    if request.param == "sqlite":
        return "sqlite://"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_empty_postgres(url))      # the module before may have left rows behind
    return url


def _app(database_url: str) -> Any:
    # 127.0.0.1 allowed so that valid bodies succeed and the SSRF refusals stay the exception
    return create_app(Settings.load(database_url=database_url, context_fetch_enabled=False,
                                    notification_allow="127.0.0.1", max_page_size=200))


# -- subscriptions ---------------------------------------------------------------------------

SEED_SUBSCRIPTION = {"id": SEED_SUB, "type": "Subscription", "entities": [{"type": "Fuzz"}],
                     "watchedAttributes": ["temperature"],
                     "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}}


@pytest.fixture(scope="module")
def subs_api(engine_url: str) -> Iterator[TestClient]:
    with TestClient(_app(engine_url), raise_server_exceptions=False) as client:
        assert client.post(f"{BASE}/subscriptions", json=SEED_SUBSCRIPTION).status_code == 201
        yield client


def _subscriptions(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{BASE}/subscriptions", params={"limit": 200})
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()
    return sorted(found, key=lambda s: s["id"])


def _reset_subscriptions(client: TestClient) -> None:
    """Back to the seed alone: what a success created or changed is undone."""
    for sub in _subscriptions(client):
        client.delete(f"{BASE}/subscriptions/{sub['id']}")
    assert client.post(f"{BASE}/subscriptions", json=SEED_SUBSCRIPTION).status_code == 201


@FUZZ
@given(method=st.sampled_from(["POST", "PATCH"]), body=nearly(VALID_SUBSCRIPTION, subscription_members),
       content_type=content_types, raw=mostly_json, junk=st.binary(max_size=30))
def test_hostile_subscriptions_never_500_and_never_half_apply(
        subs_api: TestClient, method: str, body: Any, content_type: str, raw: bool,
        junk: bytes) -> None:
    before = _subscriptions(subs_api)
    path = "/subscriptions" if method == "POST" else f"/subscriptions/{SEED_SUB}"
    response = _send(subs_api, method, path, body, content_type, raw, junk)
    check_ngsild_answer(response)
    if response.status_code >= 400:
        assert _subscriptions(subs_api) == before, f"{method} answered {response.status_code} " \
                                                    "but changed the subscriptions"
    else:
        _reset_subscriptions(subs_api)


sub_query_keys = st.sampled_from(["limit", "offset", "count", "options", "format", "lang",
                                  "local", "id", "type", "details"])
sub_query_values = either("1", "0", "-1", "1000", "true", "x", "sysAttrs", "keyValues", "ja",
                          "(( ")


@FUZZ
@given(params=st.dictionaries(sub_query_keys, sub_query_values.map(str), max_size=4),
       path=st.sampled_from(["/subscriptions", f"/subscriptions/{SEED_SUB}",
                             "/subscriptions/not%20a%20uri", "/subscriptions/urn:ngsi-ld:x:gone"]),
       accept=accepts)
def test_hostile_subscription_queries_never_500(subs_api: TestClient, params: dict[str, str],
                                                path: str, accept: str) -> None:
    check_ngsild_answer(subs_api.get(BASE + path, params=params, headers={"accept": accept}))


# -- temporal --------------------------------------------------------------------------------

SEED_TEMPORAL = {"id": SEED_ID, "type": "Fuzz", "temperature": [
    {"type": "Property", "value": 20 + i, "observedAt": f"2026-11-27T0{i}:00:00+09:00",
     "instanceId": f"urn:ngsi-ld:Instance:seed{i}"} for i in range(5)]}


@pytest.fixture(scope="module")
def temporal_api(engine_url: str) -> Iterator[TestClient]:
    with TestClient(_app(engine_url), raise_server_exceptions=False) as client:
        assert client.post(f"{BASE}/temporal/entities", json=SEED_TEMPORAL).status_code == 201
        yield client


OTHER_ID = "urn:ngsi-ld:Fuzz:2"        # the id temporal_entity bodies create by default


def _history(client: TestClient) -> Any:
    """The stored history of both ids the writes can touch (None where there is none)."""
    found = {}
    for entity_id in (SEED_ID, OTHER_ID):
        response = client.get(f"{BASE}/temporal/entities/{entity_id}",
                              params={"options": "sysAttrs", "timerel": "after",
                                      "timeAt": "1970-01-01T00:00:00Z"})
        assert response.status_code in (200, 404), response.text
        body = response.json() if response.status_code == 200 else None
        if body is not None:
            body.pop("modifiedAt", None)   # the record's own stamp moves with every success
        found[entity_id] = body
    return found


def _reset_history(client: TestClient) -> None:
    """Back to the seed alone, so every example starts from the same state."""
    client.delete(f"{BASE}/temporal/entities/{SEED_ID}")
    client.delete(f"{BASE}/temporal/entities/{OTHER_ID}")
    assert client.post(f"{BASE}/temporal/entities", json=SEED_TEMPORAL).status_code == 201


instance = st.one_of(st.fixed_dictionaries(
    {"type": either("Property", "Relationship", "GeoProperty", "Bogus")},
    optional={"value": json_value, "object": either("urn:ngsi-ld:Fuzz:2", "no uri"),
              "observedAt": times, "instanceId": either("urn:ngsi-ld:Instance:x", "bad id"),
              "datasetId": either("urn:ngsi-ld:Dataset:a", "x"), "unitCode": either("CEL", 5)}),
    json_value)
instances = st.one_of(st.lists(instance, max_size=3), instance)
temporal_fragment = nearly(
    {"temperature": [{"type": "Property", "value": 30, "observedAt": "2026-11-27T10:00:00+09:00"}]},
    {"temperature": instances, "名前": instances, "id": json_value, "type": json_value,
     "@context": json_value, "": instances})
temporal_entity = nearly(
    {"id": OTHER_ID, "type": "Fuzz",
     "temperature": [{"type": "Property", "value": 1, "observedAt": "2026-11-27T00:00:00Z"}]},
    {"id": either(SEED_ID, "not a uri"), "type": either("", 5, ["Fuzz", "Other"]),
     "temperature": instances, "location": instances})
instance_edit = nearly(
    {"value": 30},
    {"value": json_value, "type": either("Property", "Relationship", "Bogus"),
     "observedAt": times, "unitCode": either("CEL", 5, ""), "object": either("urn:x:1", "x"),
     "instanceId": either("urn:ngsi-ld:Instance:other", "bad"), "@context": json_value,
     "temperature": instances})
temporal_query_body = nearly(
    {"type": "Query", "entities": [{"type": "Fuzz"}],
     "temporalQ": {"timerel": "after", "timeAt": "2026-11-26T00:00:00Z"}},
    {"type": either("Entity", ""),
     "entities": st.lists(st.one_of(selector, json_value), max_size=2),
     "attrs": attr_list, "q": either("temperature>21", "(("),
     "temporalQ": st.one_of(temporal_q, json_value),
     "geoQ": geo_q})
TEMPORAL_WRITES = [
    ("POST", "/temporal/entities", temporal_entity),
    ("POST", f"/temporal/entities/{SEED_ID}/attrs", temporal_fragment),
    ("PATCH", f"/temporal/entities/{SEED_ID}/attrs/temperature/{{instance}}", instance_edit),
    ("PATCH", f"/temporal/entities/{SEED_ID}/attrs/temperature/urn:ngsi-ld:Instance:gone",
     instance_edit),
    ("DELETE", f"/temporal/entities/{SEED_ID}/attrs/temperature/{{instance}}", st.none()),
    ("DELETE", f"/temporal/entities/{SEED_ID}/attrs/temperature/not%20an%20instance", st.none()),
    ("DELETE", f"/temporal/entities/{SEED_ID}/attrs/名前", st.none()),
    ("POST", "/temporal/entityOperations/query", temporal_query_body),
]


@FUZZ
@given(choice=st.integers(0, len(TEMPORAL_WRITES) - 1), data=st.data(),
       content_type=content_types, raw=mostly_json, junk=st.binary(max_size=30))
def test_hostile_temporal_writes_never_500_and_never_half_apply(
        temporal_api: TestClient, choice: int, data: st.DataObject, content_type: str,
        raw: bool, junk: bytes) -> None:
    method, path, body_strategy = TEMPORAL_WRITES[choice]
    body = data.draw(body_strategy)
    before = _history(temporal_api)
    # the broker names the instances it stores: edit one that exists
    path = path.replace("{instance}", before[SEED_ID]["temperature"][0]["instanceId"])
    response = _send(temporal_api, method, path, body, content_type, raw, junk)
    check_ngsild_answer(response)
    if response.status_code >= 400:
        assert _history(temporal_api) == before, f"{method} {path} answered " \
                                                  f"{response.status_code} but changed history"
    elif method != "POST" or "Operations" not in path:
        _reset_history(temporal_api)


temporal_keys = st.sampled_from(["type", "id", "idPattern", "attrs", "q", "timerel", "timeAt",
                                 "endTimeAt", "timeproperty", "lastN", "aggrMethods",
                                 "aggrPeriodDuration", "options", "format", "limit", "offset",
                                 "count", "lang", "pick", "omit", "georel", "geometry",
                                 "coordinates", "datasetId"])
temporal_values = st.one_of(st.text(max_size=24), st.sampled_from([
    "Fuzz", "temperature", "after", "before", "between", "during", "2026-11-27T00:00:00Z",
    "2026-11-27T09:00:00+09:00", "2026-11-27", "observedAt", "modifiedAt", "deletedAt", "bogus",
    "0", "-1", "3", "99999999999999999999", "sum,avg,max", "totalCount,bogus", "PT1H", "P1D",
    "P0D", "PT0S", "P", "P1Y2M", "temporalValues", "aggregatedValues", "temporalValues,concise",
    "keyValues", "true", "ja", "near;maxDistance==10", "Point", "[135,34]", "((", ".*"]))


@FUZZ
@given(params=st.dictionaries(temporal_keys, temporal_values, max_size=6),
       path=st.sampled_from(["/temporal/entities", f"/temporal/entities/{SEED_ID}",
                             "/temporal/entities/urn:ngsi-ld:Fuzz:gone",
                             "/temporal/entities/not%20a%20uri"]),
       accept=accepts)
def test_hostile_temporal_queries_never_500(temporal_api: TestClient, params: dict[str, str],
                                            path: str, accept: str) -> None:
    try:
        response = temporal_api.get(BASE + path, params=params, headers={"accept": accept})
    except UnicodeEncodeError:
        return
    check_ngsild_answer(response)
