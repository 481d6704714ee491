"""GET /v2/subscriptions never shows the MQTT password (as Orion), but delivery keeps it."""

from __future__ import annotations

import httpx

from cityos.data.ngsiv2 import sub_actions
from cityos.data.ngsiv2.sub_render import subscription_view


async def test_mqtt_passwd_is_not_returned(client: httpx.AsyncClient, app: object) -> None:
    body = {"subject": {"entities": [{"idPattern": ".*", "type": "Room"}]},
            "notification": {"mqtt": {"url": "mqtt://broker.example.com:1883",
                                      "topic": "city/rooms", "user": "kobe",
                                      "passwd": "s3cret-パス"}}}
    r = await client.post("/v2/subscriptions", json=body)
    assert r.status_code == 201, r.text
    sub_id = r.headers["location"].rsplit("/", 1)[1]
    one = (await client.get(f"/v2/subscriptions/{sub_id}")).json()
    listed = (await client.get("/v2/subscriptions")).json()
    for view in (one, *listed):
        assert "passwd" not in view["notification"]["mqtt"]
        assert "s3cret" not in str(view)
    assert one["notification"]["mqtt"]["user"] == "kobe"
    # the stored subscription still has it, for the MQTT client that delivers
    registry = sub_actions.registry_of(app.state.broker)  # type: ignore[attr-defined]
    [sub] = [s for s in registry.all() if s.id == sub_id]
    assert sub.document["notification"]["mqtt"]["passwd"] == "s3cret-パス"
    assert "passwd" not in subscription_view(sub, "active", None)["notification"]["mqtt"]
