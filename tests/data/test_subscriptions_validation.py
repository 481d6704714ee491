"""Every way a subscription body can be wrong gets a precise 4xx, on both engines, and nothing is
stored (ETSI GS CIM 009 5.8.1: "If the data types and restrictions ... are not met ... an error of
type BadRequestData shall be raised")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityos.core.settings import Settings
from tests.data.test_subscriptions_support import (
    BASE,
    KOBE_CONTEXT,
    RECEIVER,
    app,
    host_context,
    make_settings,
    post,
    problem,
    running_app,
    settings,
    subscription,
)

__all__ = ["app", "settings"]

ENDPOINT = {"uri": RECEIVER}


def notification(**members: Any) -> dict[str, Any]:
    return {"endpoint": ENDPOINT, **members}


def endpoint(**members: Any) -> dict[str, Any]:
    return {"endpoint": {"uri": RECEIVER, **members}}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # (case, body, a word the detail must contain)
    ("no type", subscription(type=None), "type"),
    ("wrong type", subscription(type="Entity"), "Subscription"),
    ("bad id", subscription(id="not a uri"), "id"),
    ("unknown member", subscription(colour="red"), "colour"),
    ("neither entities nor watchedAttributes",
     subscription(entities=None, watchedAttributes=None), "entities or watchedAttributes"),
    ("entities not an array", subscription(entities={"type": "ParkingSpot"}), "entities"),
    ("empty entities", subscription(entities=[]), "entities"),
    ("empty selector", subscription(entities=[{}]), "entities[0]"),
    ("selector with unknown member", subscription(entities=[{"type": "A", "x": 1}]),
     "entities[0]"),
    ("bad selector id", subscription(entities=[{"id": "nope nope"}]), "entities[0].id"),
    ("bad idPattern", subscription(entities=[{"idPattern": "(["}]), "idPattern"),
    ("bad type expression", subscription(entities=[{"type": "(A;B"}]), "parentheses"),
    ("type not a string", subscription(entities=[{"type": 3}]), "entities[0].type"),
    ("empty watchedAttributes", subscription(watchedAttributes=[]), "watchedAttributes"),
    ("bad attribute name", subscription(watchedAttributes=["a b"]), "attribute name"),
    ("unknown trigger", subscription(notificationTrigger=["entityTouched"]), "entityTouched"),
    ("empty triggers", subscription(notificationTrigger=[]), "notificationTrigger"),
    # found by test_fuzz_subscriptions_temporal: an array where a string belongs was a 500
    ("trigger an array", subscription(notificationTrigger=[["entityCreated"]]), "entityCreated"),
    ("timeInterval with watchedAttributes", subscription(timeInterval=30), "timeInterval"),
    ("timeInterval with throttling",
     subscription(watchedAttributes=None, timeInterval=30, throttling=5), "throttling"),
    ("zero timeInterval", subscription(watchedAttributes=None, timeInterval=0), "timeInterval"),
    ("boolean throttling", subscription(throttling=True), "throttling"),
    ("negative throttling", subscription(throttling=-1), "throttling"),
    ("bad q", subscription(q="status=="), "q"),
    ("q not a string", subscription(q=["status"]), "q"),
    ("geoQ without coordinates", subscription(geoQ={"georel": "near;maxDistance==10",
                                                    "geometry": "Point"}), "coordinates"),
    ("geoQ with bad georel", subscription(geoQ={"georel": "nearby", "geometry": "Point",
                                                "coordinates": [135.19, 34.69]}), "georel"),
    ("geoQ empty", subscription(geoQ={}), "geoQ"),
    ("geoQ unknown member", subscription(geoQ={"georel": "within", "geometry": "Point",
                                               "coordinates": [1, 2], "radius": 3}), "radius"),
    ("bad scopeQ", subscription(scopeQ="Kobe"), "scopeQ"),
    ("expiresAt in the past", subscription(expiresAt="2020-01-01T09:00:00+09:00"), "future"),
    ("expiresAt not a date", subscription(expiresAt="next week"), "expiresAt"),
    ("isActive not boolean", subscription(isActive="yes"), "isActive"),
    ("bad lang", subscription(lang="ja<script>"), "lang"),
    ("bad jsonldContext", subscription(jsonldContext="not a uri"), "jsonldContext"),
    ("subscriptionName not a string", subscription(subscriptionName=7), "subscriptionName"),
    ("no notification", subscription(notification=None), "notification"),
    ("notification not an object", subscription(notification="http://x"), "notification"),
    ("no endpoint", subscription(notification={"format": "keyValues"}), "endpoint"),
    ("unknown format", subscription(notification=notification(format="geojson")), "format"),
    ("empty notification attributes", subscription(notification=notification(attributes=[])),
     "attributes"),
    ("sysAttrs not boolean", subscription(notification=notification(sysAttrs="true")),
     "sysAttrs"),
    ("showChanges not boolean", subscription(notification=notification(showChanges=1)),
     "showChanges"),
    ("unknown notification member", subscription(notification=notification(joined="flat")),
     "joined"),
    ("unknown join", subscription(notification=notification(join="deep")), "join"),
    ("joinLevel without join", subscription(notification=notification(joinLevel=2)),
     "joinLevel"),
    ("joinLevel zero", subscription(notification=notification(join="flat", joinLevel=0)),
     "joinLevel"),
    ("joinLevel too deep", subscription(notification=notification(join="inline", joinLevel=11)),
     "joinLevel"),
    ("joinLevel not integer", subscription(notification=notification(join="flat", joinLevel="2")),
     "joinLevel"),
    ("datasetId not array", subscription(datasetId="urn:ngsi-ld:Dataset:a"), "datasetId"),
    ("datasetId empty", subscription(datasetId=[]), "datasetId"),
    ("datasetId not URI", subscription(datasetId=["french name"]), "datasetId"),
    ("no uri", subscription(notification={"endpoint": {}}), "uri"),
    ("relative uri", subscription(notification={"endpoint": {"uri": "/notify"}}), "uri"),
    ("ftp uri", subscription(notification={"endpoint": {"uri": "ftp://127.0.0.1/x"}}), "ftp"),
    ("mqtt without topic", subscription(notification={"endpoint": {"uri": "mqtt://127.0.0.1"}}),
     "topic"),
    ("bad port", subscription(notification={"endpoint": {"uri": "http://127.0.0.1:99999/"}}),
     "uri"),
    ("bad accept", subscription(notification=endpoint(accept="text/plain")), "accept"),
    ("accept an array", subscription(notification=endpoint(accept=["application/json"])),
     "accept"),
    ("receiverInfo not a list", subscription(notification=endpoint(receiverInfo={"a": "b"})),
     "receiverInfo"),
    ("receiverInfo header injection", subscription(notification=endpoint(
        receiverInfo=[{"key": "X-Token", "value": "a\r\nHost: evil"}])), "control"),
    ("receiverInfo bad key", subscription(notification=endpoint(
        receiverInfo=[{"key": "X Token", "value": "a"}])), "header name"),
    ("receiverInfo reserved header", subscription(notification=endpoint(
        receiverInfo=[{"key": "Content-Length", "value": "1"}])), "Content-Length"),
    ("bad MQTT QoS", subscription(notification=endpoint(
        notifierInfo=[{"key": "MQTT-QoS", "value": "3"}])), "MQTT-QoS"),
    ("unknown endpoint member", subscription(notification=endpoint(proxy="x")), "proxy"),
]


@pytest.mark.parametrize(("case", "body", "word"), INVALID, ids=[c for c, _, _ in INVALID])
async def test_invalid_subscription_is_400_bad_request_data(
        client: httpx.AsyncClient, case: str, body: dict[str, Any], word: str) -> None:
    detail = problem(await post(client, body), 400, "BadRequestData")["detail"]
    assert word in detail, (case, detail)
    assert (await client.get(f"{BASE}/subscriptions")).json() == []


async def test_body_framing_errors(client: httpx.AsyncClient) -> None:
    url = f"{BASE}/subscriptions"
    problem(await client.post(url, content=b"{not json",
                              headers={"Content-Type": "application/json"}), 400, "InvalidRequest")
    problem(await client.post(url, content=b"", headers={"Content-Type": "application/json"}),
            400, "InvalidRequest")
    problem(await post(client, []), 400, "BadRequestData")
    problem(await post(client, {}), 400, "BadRequestData")             # ETSI 028_02_02
    response = await client.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
    problem(response, 415, "UnsupportedMediaType")
    with_context = {**subscription(), "@context": "https://example.org/ctx.jsonld"}
    problem(await post(client, with_context), 400, "BadRequestData")  # JSON body with @context
    problem(await client.get(f"{BASE}/subscriptions", headers={"Accept": "text/html"}), 406,
            "NotAcceptable")


async def test_private_endpoints_are_refused_by_default(database_url: str) -> None:
    """The SSRF guard: without an allow list, loopback and private networks are refused."""
    strict: Settings = make_settings(database_url, notification_allow="")
    async with running_app(strict, empty=True) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as client:
            for uri in ("http://127.0.0.1:8080/notify", "http://169.254.169.254/latest",
                        "http://10.0.0.5/notify", "mqtt://localhost:1883/kobe/parking"):
                body = subscription(notification={"endpoint": {"uri": uri}})
                problem(await post(client, body), 400, "BadRequestData")
            assert (await client.get(f"{BASE}/subscriptions")).json() == []
            public = subscription(notification={"endpoint": {"uri": "https://receiver.example.jp/n"}})
            assert (await post(client, public)).status_code == 201


async def test_valid_variants_are_accepted(client: httpx.AsyncClient) -> None:
    """Members in every allowed form are accepted (and read back as written)."""
    link = await host_context(client, KOBE_CONTEXT)
    hosted = link[1:link.index(">")]
    variants = [
        subscription(watchedAttributes=None, timeInterval=60),
        subscription(datasetId=["urn:ngsi-ld:Dataset:french-name", "@none"],
                     notification=notification(join="inline", joinLevel=3)),
        subscription(notification=notification(join="@none")),
        subscription(entities=None),
        subscription(entities=[{"id": "urn:ngsi-ld:ParkingSpot:kobe-1", "type": "ParkingSpot"}],
                     notificationTrigger=["entityCreated", "entityDeleted", "attributeDeleted"],
                     throttling=1.5, isActive=False, lang="ja,en",
                     scopeQ="/Kobe/#,/Hyogo/+", jsonldContext=hosted),
        subscription(geoQ={"georel": "within", "geometry": "Polygon",
                           "coordinates": "[[[135.18,34.68],[135.21,34.68],[135.21,34.70],"
                                          "[135.18,34.68]]]", "geoproperty": "location"}),
        subscription(notification={
            "format": "concise", "sysAttrs": True, "showChanges": True, "attributes": ["status"],
            "endpoint": {"uri": "mqtt://127.0.0.1:1883/kobe/駐車場", "accept": "application/ld+json",
                         "receiverInfo": [{"key": "X-Kobe-Key", "value": "神戸"}],
                         "notifierInfo": [{"key": "MQTT-QoS", "value": "1"},
                                          {"key": "MQTT-Version", "value": "mqtt5.0"}]}}),
    ]
    for body in variants:
        response = await post(client, body)
        assert response.status_code == 201, (body, response.text)
        got = (await client.get(response.headers["location"])).json()
        defaults = {"notificationTrigger": ["attributeCreated", "attributeUpdated"]}
        assert {k: v for k, v in got.items() if k not in ("id", "status")} == {**defaults, **body}
    assert len((await client.get(f"{BASE}/subscriptions")).json()) == len(variants)


async def test_unreachable_json_ld_context_is_503(client: httpx.AsyncClient) -> None:
    body = subscription(jsonldContext="http://127.0.0.1:9/missing-context.jsonld")
    problem(await post(client, body), 503, "LdContextNotAvailable")
    assert (await client.get(f"{BASE}/subscriptions")).json() == []


async def test_read_only_members_sent_back_are_ignored(client: httpx.AsyncClient) -> None:
    body = subscription(status="expired", createdAt="2000-01-01T00:00:00Z",
                        notification={"endpoint": {"uri": RECEIVER}, "timesSent": 99,
                                      "status": "failed"})
    response = await post(client, body)
    assert response.status_code == 201, response.text
    got = (await client.get(response.headers["location"])).json()
    assert got["status"] == "active" and "createdAt" not in got
    assert got["notification"] == {"endpoint": {"uri": RECEIVER}}
