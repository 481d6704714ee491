"""PyPI's ngsildclient subscribes through a real ``cityos serve``; a real receiver is notified.

The subscription is built by the client's own SubscriptionBuilder (with its ``@context`` in the
body and ``application/ld+json`` notifications), so this checks our API against what a
third-party NGSI-LD client sends, end to end over HTTP, on both storage engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ngsildclient import Client, Entity, SubscriptionBuilder

from tests.e2e.receiver import Receiver, running_receiver
from tests.e2e.server import running_server

KIND = f"RiverGauge{uuid.uuid4().hex[:6]}"  # a fresh type: the database may be shared


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'e2e.db'}" if database_url == "sqlite://" else database_url
    with running_server(url, env={"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1"}) as base:
        yield base


def test_ngsildclient_subscription_is_notified(server: str, receiver: Receiver) -> None:
    port = int(server.rsplit(":", 1)[1])
    with Client(hostname="127.0.0.1", port=port) as client:
        built = (SubscriptionBuilder(receiver.url).description("河川水位の監視 / river watch")
                 .select_type(KIND).watch(["waterLevel"]).query("waterLevel>3.5")
                 .notif(["waterLevel", "name"]).build())
        sub_id = client.subscriptions.create(built)
        assert client.subscriptions.exists(sub_id)
        assert client.subscriptions.get(sub_id)["entities"] == [{"type": KIND}]

        calm = Entity(KIND, "kobe:gauge-1")
        calm.prop("name", "新湊川 水位計")
        calm.prop("waterLevel", 1.2)
        client.create(calm)
        flood = Entity(KIND, "kobe:gauge-2")
        flood.prop("name", "生田川 水位計")
        flood.prop("waterLevel", 4.1)
        client.create(flood)

        assert receiver.wait_for(lambda r: len(r.entities()) >= 1, timeout=15)
        notification = receiver.notifications[0]
        assert notification["type"] == "Notification"
        assert notification["subscriptionId"] == sub_id
        assert "@context" in notification            # ld+json, as the builder asked
        [entity] = notification["data"]
        assert entity["id"] == flood.id               # the calm gauge does not match q
        assert entity["waterLevel"]["value"] == 4.1
        assert entity["name"]["value"] == "生田川 水位計"

        client.subscriptions._delete(sub_id)
        assert not client.subscriptions.exists(sub_id)
