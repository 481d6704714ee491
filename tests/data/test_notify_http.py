"""HTTP delivery against a real receiver: body, headers, retries, giving up, isolation, SSRF."""

from __future__ import annotations

import asyncio

import pytest

from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.subscriptions.model import Endpoint
from tests.data.test_notify_support import (
    MemoryStore,
    Registry,
    eventually,
    free_port,
    make_settings,
    receiver,
    render,
    row,
    running,
    subscription,
)


async def test_receiver_gets_body_and_headers() -> None:
    async with receiver() as rec:
        endpoint = Endpoint(uri=rec.url(), accept="application/ld+json",
                            receiver_info=[("X-Auth-Token", "secret-1")])
        sub = subscription("", endpoint=endpoint)
        registry, store = Registry(sub), MemoryStore()
        async with running(Notifier(store, registry, render, make_settings())) as notifier:
            notifier.submit([row([sub.id], n=7, value=42)])
            got = await rec.wait_for(lambda r: len(r) == 1)
            await eventually(lambda: registry.counters("", sub.id).times_sent == 1)
        note = got[0]
        assert note.headers["Content-Type"] == "application/ld+json"
        assert note.headers["X-Auth-Token"] == "secret-1"
        assert note.headers["Link"].startswith("<https://example.org/ctx.jsonld>")
        assert note.body["subscriptionId"] == sub.id
        assert note.body["type"] == "Notification"
        [data] = note.body["data"]
        assert data["id"] == "urn:ngsi-ld:Parking:7"
        assert data["attrs"]["https://example.org/free"][0]["value"] == 42
        counters = registry.counters("", sub.id)
        assert counters.times_sent == 1 and counters.times_failed == 0
        assert counters.last_success == counters.last_notification
        assert counters.last_success is not None and counters.last_success.endswith("Z")


async def test_retry_after_two_server_errors() -> None:
    async with receiver() as rec:
        rec.statuses = [500, 500]
        sub = subscription(rec.url())
        registry = Registry(sub)
        notifier = Notifier(MemoryStore(), registry, render, make_settings(notification_retries=3))
        async with running(notifier):
            notifier.submit([row([sub.id])])
            await rec.wait_for(lambda r: len(r) == 1)
            await eventually(lambda: registry.counters("", sub.id).times_sent == 1)
            counters = registry.counters("", sub.id)
            assert (counters.times_failed, counters.times_sent) == (2, 1)
            assert counters.consecutive_failures == 0
            assert counters.last_failure is not None
            assert counters.last_success is not None and counters.last_success >= counters.last_failure
            assert notifier.metrics()["failed"] == 2 and notifier.metrics()["delivered"] == 1


async def test_gives_up_after_the_retries_and_finishes_the_row() -> None:
    async with receiver() as rec:
        rec.statuses = [503] * 10
        sub = subscription(rec.url())
        registry, store = Registry(sub), MemoryStore()
        notifier = Notifier(store, registry, render, make_settings(notification_retries=2))
        async with running(notifier):
            r = row([sub.id])
            store.outbox[r.id] = r
            notifier.submit([r])
            await eventually(lambda: notifier.metrics()["givenUp"] == 1)
            await eventually(lambda: r.id not in store.outbox)
        counters = registry.counters("", sub.id)
        assert counters.times_failed == 3 and counters.times_sent == 0   # 1 attempt + 2 retries
        assert counters.consecutive_failures == 3
        assert rec.received == []


async def test_dead_endpoints_do_not_delay_a_healthy_subscription() -> None:
    # one endpoint accepts connections but never answers, one refuses them
    async with receiver() as rec:
        rec.hang.add("/hang")
        hanging = subscription(rec.url("/hang"))
        refused = subscription(f"http://127.0.0.1:{free_port()}/nobody")
        healthy = subscription(rec.url("/ok"))
        registry = Registry(hanging, refused, healthy)
        notifier = Notifier(MemoryStore(), registry, render,
                            make_settings(notification_timeout=2.0, notification_retries=5))
        async with running(notifier):
            for n in range(20):
                notifier.submit([row([hanging.id, refused.id, healthy.id], n=n)])
            await rec.wait_for(lambda r: len(rec.entity_ids("/ok")) == 20)
            # the healthy subscription got everything while the others are still retrying
            assert notifier.metrics()["givenUp"] == 0
            backlog = notifier.metrics()["backlog"]
            assert backlog.get(hanging.id, 0) == 20 and backlog.get(refused.id, 0) == 20
            assert registry.counters("", refused.id).times_failed >= 1
        assert rec.entity_ids("/ok") == [f"urn:ngsi-ld:Parking:{n}" for n in range(20)]


async def test_backlog_is_batched_into_one_notification() -> None:
    async with receiver() as rec:
        sub = subscription(rec.url())
        notifier = Notifier(MemoryStore(), Registry(sub), render, make_settings(), batch_max=100)
        async with running(notifier):
            notifier.submit([row([sub.id], n=n) for n in range(250)])
            await rec.wait_for(lambda r: len(rec.entity_ids()) == 250)
        # all queued before the worker ran: full batches of 100, order kept
        assert [len(r.body["data"]) for r in rec.received] == [100, 100, 50]
        assert rec.entity_ids() == [f"urn:ngsi-ld:Parking:{n}" for n in range(250)]


async def test_throttling_groups_changes() -> None:
    async with receiver() as rec:
        sub = subscription(rec.url(), throttling=0.5)
        notifier = Notifier(MemoryStore(), Registry(sub), render, make_settings())
        async with running(notifier):
            notifier.submit([row([sub.id], n=0)])
            await rec.wait_for(lambda r: len(r) == 1)
            for n in range(1, 6):          # all within the throttling window of the first
                notifier.submit([row([sub.id], n=n)])
                await asyncio.sleep(0.02)
            await rec.wait_for(lambda r: len(rec.entity_ids()) == 6)
        assert [len(r.body["data"]) for r in rec.received] == [1, 5]


async def test_paused_and_removed_subscriptions_finish_their_rows_unsent() -> None:
    async with receiver() as rec:
        paused, removed = subscription(rec.url()), subscription(rec.url())
        registry, store = Registry(paused, removed), MemoryStore()
        registry.paused.add(paused.id)
        notifier = Notifier(store, registry, render, make_settings())
        async with running(notifier):
            del registry.subs[("", removed.id)]
            notifier.subscription_removed("", removed.id)
            r = row([paused.id, removed.id])
            store.outbox[r.id] = r
            notifier.submit([r])
            await eventually(lambda: not store.outbox)
        assert rec.received == []


async def test_endpoint_refused_by_policy_is_given_up_without_retries() -> None:
    sub = subscription("http://127.0.0.1:9/never")
    registry = Registry(sub)
    notifier = Notifier(MemoryStore(), registry, render,
                        make_settings(notification_allow="", notification_retries=5))
    async with running(notifier):
        notifier.submit([row([sub.id])])
        await eventually(lambda: notifier.metrics()["givenUp"] == 1)
    assert registry.counters("", sub.id).times_failed == 1


async def test_name_resolving_to_denied_address_is_refused_at_delivery() -> None:
    # 'localhost' is allowed statically by this deny list but resolves into it (DNS rebinding)
    async with receiver() as rec:
        sub = subscription(f"http://localhost:{rec.port}/notify")
        registry = Registry(sub)
        notifier = Notifier(MemoryStore(), registry, render,
                            make_settings(notification_allow="", notification_deny="127.0.0.0/8"))
        async with running(notifier):
            notifier.submit([row([sub.id])])
            await eventually(lambda: notifier.metrics()["givenUp"] == 1)
        assert rec.received == []


async def test_allowed_name_is_delivered_to_the_checked_address() -> None:
    async with receiver() as rec:
        sub = subscription(f"http://localhost:{rec.port}/notify")
        notifier = Notifier(MemoryStore(), Registry(sub), render,
                            make_settings(notification_allow="localhost"))
        async with running(notifier):
            notifier.submit([row([sub.id])])
            got = await rec.wait_for(lambda r: len(r) == 1)
        assert got[0].headers["Host"] == f"localhost:{rec.port}"


async def test_a_failing_lane_keeps_a_bounded_backlog() -> None:
    # the receiver refuses connections: the first batch is given up, after which the lane only
    # keeps the newest ``failing_backlog`` items and finishes (and counts) the rest
    sub = subscription(f"http://127.0.0.1:{free_port()}/down")
    registry, store = Registry(sub), MemoryStore()
    notifier = Notifier(store, registry, render, make_settings(notification_retries=0),
                        failing_backlog=50)
    async with running(notifier):
        first = row([sub.id], n=0)
        store.outbox[first.id] = first
        notifier.submit([first])
        await eventually(lambda: notifier.metrics()["givenUp"] == 1)
        later = [row([sub.id], n=n) for n in range(1, 301)]
        for r in later:
            store.outbox[r.id] = r
        notifier.submit(later)
        await asyncio.sleep(0)             # submitted rows reach their lanes on the next turn
        assert notifier.metrics()["backlog"].get(sub.id, 0) <= 50
        assert notifier.metrics()["dropped"] >= 250
        # the dropped items' rows are finished: the outbox does not keep them either
        await eventually(lambda: len(store.outbox) <= 51)


def test_the_failing_backlog_is_an_operator_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from cityos.app import create_app
    from cityos.core.settings import Settings

    monkeypatch.setenv("CITYOS_NOTIFICATION_FAILING_BACKLOG", "250")
    app = create_app(Settings.load(database_url="sqlite://"))
    assert app.state.broker.notifier.failing_backlog == 250
    # zero would give up every change of a failing subscription: refused at start-up
    with pytest.raises(ValueError, match="FAILING_BACKLOG"):
        create_app(Settings.load(database_url="sqlite://", notification_failing_backlog=0))


async def test_rows_sharing_their_subscriptions_keep_each_lanes_order() -> None:
    # consecutive rows that fired the same subscriptions reach the lanes as one run; a row that
    # fired others in between must not be overtaken by the rows after it
    async with receiver() as rec:
        both, one = subscription(rec.url("/both")), subscription(rec.url("/one"))
        notifier = Notifier(MemoryStore(), Registry(both, one), render, make_settings())
        fired_both = ((both.id, "attributeUpdated"), (one.id, "attributeUpdated"))
        fired_one = ((one.id, "attributeUpdated"),)
        rows = []
        for n, fired in enumerate([fired_both, fired_both, fired_one, fired_both, fired_both]):
            r = row([], n=n)
            r.body["subs"] = fired          # a tuple, as BrokerEvents hands it over
            rows.append(r)
        async with running(notifier):
            for r in rows:                  # one write at a time, as a group commit announces
                notifier.submit([r])
            await rec.wait_for(lambda _: len(rec.entity_ids()) == 9)
        assert rec.entity_ids("/one") == [f"urn:ngsi-ld:Parking:{n}" for n in range(5)]
        assert rec.entity_ids("/both") == [f"urn:ngsi-ld:Parking:{n}" for n in (0, 1, 3, 4)]


async def test_a_failing_lane_spaces_its_attempts_and_recovers() -> None:
    # once a batch was given up, the lane's single attempts are spaced by a pause that doubles
    # (0.2, 0.4, 0.8 s here) instead of one attempt per linger; when the receiver is back the
    # lane delivers again
    async with receiver() as rec:
        rec.statuses = [503] * 10_000                # down: every request fails
        sub = subscription(rec.url("/down"))
        store = MemoryStore()
        notifier = Notifier(store, Registry(sub), render,
                            make_settings(notification_retries=0, notification_backoff=0.2))

        async def feed(first: int, count: int) -> None:
            for n in range(first, first + count):    # one change every 10 ms
                r = row([sub.id], n=n)
                store.outbox[r.id] = r
                notifier.submit([r])
                await asyncio.sleep(0.01)

        async with running(notifier):
            await feed(0, 100)
            failed = notifier.metrics()["failed"]
            assert 2 <= failed <= 6, failed          # one per 10 ms linger would be ~100
            rec.statuses.clear()                     # the receiver is back
            await feed(100, 5)
            got = await rec.wait_for(lambda r: "urn:ngsi-ld:Parking:104" in rec.entity_ids())
            assert got and notifier.metrics()["givenUp"] == failed
