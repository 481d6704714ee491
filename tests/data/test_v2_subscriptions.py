"""NGSI v2 /v2/subscriptions: create, read, list, update, delete, validation (Orion's format)."""

from __future__ import annotations

from typing import Any

import httpx

RECEIVER = "http://receiver.example.com/notify"
LD = "/ngsi-ld/v1"


def v2_sub(**extra: Any) -> dict[str, Any]:
    """A typical Orion subscription body."""
    body: dict[str, Any] = {
        "description": "温度の監視",
        "subject": {"entities": [{"idPattern": ".*", "type": "Room"}],
                    "condition": {"attrs": ["temperature"],
                                  "expression": {"q": "temperature>40"}}},
        "notification": {"http": {"url": RECEIVER}, "attrs": ["temperature", "humidity"]},
        "expires": "2040-01-01T14:00:00+09:00", "throttling": 5}
    body.update(extra)
    return body


async def forget_leftovers(client: httpx.AsyncClient) -> None:
    """The PostgreSQL fixture empties the database after start-up, when the registry has already
    loaded an earlier test's subscriptions: delete them through the API."""
    for sub in (await client.get("/v2/subscriptions", params={"limit": 1000})).json():
        assert (await client.delete(f"/v2/subscriptions/{sub['id']}")).status_code == 204


async def create(client: httpx.AsyncClient, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> str:
    r = await client.post("/v2/subscriptions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.startswith("/v2/subscriptions/")
    return location.rsplit("/", 1)[1]


async def test_create_read_and_orion_defaults(client: httpx.AsyncClient) -> None:
    sub_id = await create(client, v2_sub())
    assert len(sub_id) == 24 and int(sub_id, 16) >= 0
    got = await client.get(f"/v2/subscriptions/{sub_id}")
    assert got.status_code == 200
    assert got.headers["fiware-correlator"]
    body = got.json()
    assert body["id"] == sub_id
    assert body["description"] == "温度の監視"
    assert body["status"] == "active"
    assert body["throttling"] == 5
    assert body["expires"] == "2040-01-01T05:00:00.000Z"
    assert body["subject"] == {"entities": [{"idPattern": ".*", "type": "Room"}],
                               "condition": {"attrs": ["temperature"],
                                             "expression": {"q": "temperature>40"}}}
    assert body["notification"] == {"http": {"url": RECEIVER},
                                    "attrs": ["temperature", "humidity"],
                                    "attrsFormat": "normalized", "onlyChangedAttrs": False,
                                    "covered": False}


async def test_list_pages_and_counts_only_v2_subscriptions(client: httpx.AsyncClient) -> None:
    await forget_leftovers(client)
    ids = [await create(client, v2_sub(description=f"s{n}")) for n in range(3)]
    ld = {"id": "urn:ngsi-ld:Subscription:ld1", "type": "Subscription",
          "entities": [{"type": "Room"}],
          "notification": {"endpoint": {"uri": RECEIVER}}}
    r = await client.post(f"{LD}/subscriptions", json=ld,
                          headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    listed = await client.get("/v2/subscriptions", params={"options": "count"})
    assert [s["id"] for s in listed.json()] == ids
    assert listed.headers["fiware-total-count"] == "3"
    page = await client.get("/v2/subscriptions", params={"limit": 1, "offset": 1})
    assert [s["id"] for s in page.json()] == ids[1:2]
    ld_ids = {s["id"] for s in (await client.get(f"{LD}/subscriptions")).json()}
    assert ld["id"] in ld_ids and not ld_ids & set(ids)
    # neither face reaches the other's subscriptions by id
    assert (await client.get(f"/v2/subscriptions/{ld['id']}")).status_code == 404
    assert (await client.delete(f"{LD}/subscriptions/{ids[0]}")).status_code == 400
    bad = await client.get("/v2/subscriptions", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"


async def test_tenants_are_separate(client: httpx.AsyncClient) -> None:
    await forget_leftovers(client)
    sub_id = await create(client, v2_sub(), headers={"Fiware-Service": "kobe"})
    assert (await client.get(f"/v2/subscriptions/{sub_id}")).status_code == 404
    found = await client.get(f"/v2/subscriptions/{sub_id}", headers={"Fiware-Service": "Kobe"})
    assert found.status_code == 200
    assert (await client.get("/v2/subscriptions")).json() == []


async def test_patch_replaces_members_and_status(client: httpx.AsyncClient) -> None:
    sub_id = await create(client, v2_sub())
    r = await client.patch(f"/v2/subscriptions/{sub_id}",
                           json={"status": "inactive", "throttling": 1,
                                 "notification": {"http": {"url": RECEIVER},
                                                  "attrsFormat": "keyValues"}})
    assert r.status_code == 204, r.text
    body = (await client.get(f"/v2/subscriptions/{sub_id}")).json()
    assert body["status"] == "inactive"
    assert body["throttling"] == 1
    assert body["notification"]["attrsFormat"] == "keyValues"
    assert body["notification"]["attrs"] == []
    assert body["description"] == "温度の監視"            # not named: kept
    r = await client.patch(f"/v2/subscriptions/{sub_id}", json={"status": "oneshot"})
    assert (await client.get(f"/v2/subscriptions/{sub_id}")).json()["status"] == "oneshot"
    r = await client.patch(f"/v2/subscriptions/{sub_id}", json={"status": "sleeping"})
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"
    r = await client.patch("/v2/subscriptions/000000000000000000000000", json={"throttling": 1})
    assert r.status_code == 404
    assert r.json() == {"error": "NotFound",
                        "description": "The requested subscription has not been found. Check id"}


async def test_delete(client: httpx.AsyncClient) -> None:
    sub_id = await create(client, v2_sub())
    assert (await client.delete(f"/v2/subscriptions/{sub_id}")).status_code == 204
    assert (await client.get(f"/v2/subscriptions/{sub_id}")).status_code == 404
    assert (await client.delete(f"/v2/subscriptions/{sub_id}")).status_code == 404


async def test_expired_subscription_reads_expired(client: httpx.AsyncClient) -> None:
    sub_id = await create(client, v2_sub(expires="2020-01-01T00:00:00Z"))
    assert (await client.get(f"/v2/subscriptions/{sub_id}")).json()["status"] == "expired"


async def test_mqtt_and_http_custom_are_accepted(client: httpx.AsyncClient) -> None:
    mqtt = await create(client, v2_sub(notification={
        "mqtt": {"url": "mqtt://broker.example.com:1883", "topic": "city/rooms", "qos": 1}}))
    custom = await create(client, v2_sub(notification={
        "httpCustom": {"url": RECEIVER, "method": "PUT", "headers": {"X-City": "Kobe"},
                       "qs": {"src": "cityos"}}, "attrsFormat": "values"}))
    for sub_id in (mqtt, custom):
        assert (await client.get(f"/v2/subscriptions/{sub_id}")).status_code == 200


BAD_BODIES: list[tuple[Any, str]] = [
    ({"notification": {"http": {"url": RECEIVER}}}, "subject"),
    ({"subject": {"entities": []}, "notification": {"http": {"url": RECEIVER}}}, "entities"),
    ({"subject": {"entities": [{"id": "A", "idPattern": ".*"}]},
      "notification": {"http": {"url": RECEIVER}}}, "idPattern"),
    ({"subject": {"entities": [{"idPattern": "("}]},
      "notification": {"http": {"url": RECEIVER}}}, "regex"),
    ({"subject": {"entities": [{"id": "A"}]}}, "notification"),
    ({"subject": {"entities": [{"id": "A"}]}, "notification": {}}, "http"),
    ({"subject": {"entities": [{"id": "A"}]}, "notification": {"http": {"url": "ftp://x"}}},
     "URL"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"http": {"url": RECEIVER}, "attrsFormat": "pretty"}}, "attrsFormat"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"http": {"url": RECEIVER}, "attrs": ["a"], "exceptAttrs": ["b"]}},
     "exceptAttrs"),
    ({"subject": {"entities": [{"id": "A"}], "condition": {"alterationTypes": ["entityMoved"]}},
      "notification": {"http": {"url": RECEIVER}}}, "alterationTypes"),
    ({"subject": {"entities": [{"id": "A"}], "condition": {"expression": {"q": "a=="}}},
      "notification": {"http": {"url": RECEIVER}}}, ""),
    ({"subject": {"entities": [{"id": "A"}],
                  "condition": {"expression": {"georel": "near", "geometry": "point"}}},
      "notification": {"http": {"url": RECEIVER}}}, ""),
    ({"subject": {"entities": [{"id": "A"}]}, "notification": {"http": {"url": RECEIVER}},
      "expires": "tomorrow"}, "expires"),
    ({"subject": {"entities": [{"id": "A"}]}, "notification": {"http": {"url": RECEIVER}},
      "throttling": -1}, "throttling"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": "a/#"}}}, "topic"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"httpCustom": {"url": RECEIVER, "payload": "${id}"}}}, "payload"),
    ({"id": "abc", "subject": {"entities": [{"id": "A"}]},
      "notification": {"http": {"url": RECEIVER}}}, "id"),
    ([1, 2], "object"),
    ({"subject": {"entities": [{"id": "A"}], "when": "now"},
      "notification": {"http": {"url": RECEIVER}}}, "when"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"http": {"url": RECEIVER}, "covered": True}}, "covered"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"http": {"url": RECEIVER}, "maxFailsLimit": 3}}, "maxFailsLimit"),
    ({"subject": {"entities": [{"id": "A"}], "condition": {"notifyOnMetadataChange": False}},
      "notification": {"http": {"url": RECEIVER}}}, "notifyOnMetadataChange"),
    ({"subject": {"entities": [{"id": "A"}]},
      "notification": {"httpCustom": {"url": RECEIVER, "method": "BREW"}}}, "method"),
]


async def test_invalid_bodies_are_orion_bad_requests(client: httpx.AsyncClient) -> None:
    await forget_leftovers(client)
    for body, word in BAD_BODIES:
        r = await client.post("/v2/subscriptions", json=body)
        assert r.status_code == 400, (body, r.text)
        error = r.json()
        assert error["error"] == "BadRequest", (body, error)
        assert word in error["description"], (body, error)
    assert (await client.get("/v2/subscriptions")).json() == []   # nothing half-created


async def test_framing_errors(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/subscriptions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "ParseError"
    r = await client.post("/v2/subscriptions", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = await client.post("/v2/subscriptions", json=v2_sub(),
                          headers={"Fiware-ServicePath": "/a,/b"})
    assert r.status_code == 400
    r = await client.post("/v2/subscriptions", json=v2_sub(notification={
        "http": {"url": "http://169.254.169.254/latest"}}))
    assert r.status_code == 400 and "refused" in r.json()["description"]
