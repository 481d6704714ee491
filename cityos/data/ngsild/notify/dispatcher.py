"""The Notifier: turns committed outbox rows into delivered notifications.

Flow (DESIGN "One way for data to flow"): a write commits its entity rows and, in the same
transaction, one outbox row of kind ``notify`` listing the subscriptions it matched.  Right after
the commit the composition root hands the rows to :meth:`Notifier.submit`; at start-up and every
few seconds after, :meth:`Notifier.start`'s poller asks the store for rows nobody is working on
(left by a crash, or by another node whose lease expired).  A row is deleted
(:meth:`outbox_done`) only when every subscription it lists has finished with it (delivered,
given up after the bounded retries, or the subscription is gone, paused or expired), so a crash
at any point means the row is delivered again: at-least-once, duplicates possible.

Isolation: every subscription has its own queue (a :class:`Lane`) and at most one worker, and the
HTTP sender keeps one connection pool per origin, so a dead or slow receiver delays only its own
subscriptions.  When items pile up while a notification is in flight (a burst, a slow receiver,
throttling), the next notification carries up to ``batch_max`` of them in its ``data`` array, so
100 matching subscriptions cost 100 requests per burst rather than per change.

Retries: a failed attempt is retried after ``notification_backoff`` seconds, doubling, capped at
60 s, at most ``notification_retries`` times; then the batch is given up.  While a subscription's
last batch was given up, its next batch gets a single attempt (no retry schedule) until one
succeeds, so a receiver that is down for hours costs one attempt per batch instead of holding an
ever-growing backlog in memory.  Those single attempts are spaced by a pause that starts at
``notification_backoff`` and doubles with each batch given up in a row, up to 60 s; items
arriving meanwhile wait, at most ``failing_backlog`` of them (older ones are given up, counted).

Cost: with 100 subscriptions matching every change, the notifier does 100 times the work of a
write, so the per-item path is kept lean.  One :class:`NotifyItem` per outbox row (and trigger)
is shared by every lane, so a renderer with ``encode`` (render.py) serializes the entity once
for all subscriptions rendered alike; and a lane that has just sent waits ``linger`` seconds,
or its share of the ``send_rate`` budget when many lanes are busy, before its next
notification, so under load changes go out in fewer, larger requests (an idle lane sends at
once, so a lone change is not delayed).

Throttling keeps every change: items arriving within ``throttling`` seconds of the last
notification wait and go out together in the next one.  When one entity changed several times,
each change stays its own item in ``data`` (nothing is merged), which is the simplest rule that
never loses a ``previous`` value needed by ``showChanges``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from cityos.core.access import Access, acting_as
from cityos.data.ngsild.notify.clock import utc_stamp
from cityos.data.ngsild.notify.counters import CounterStore, Key, Registry, flush_every
from cityos.data.ngsild.notify.errors import DeliveryFailed
from cityos.data.ngsild.notify.http import HttpSender, http_method
from cityos.data.ngsild.notify.mqtt import MqttSender
from cityos.data.ngsild.notify.owner_view import AccessFor, visible_items
from cityos.data.ngsild.notify.periodic import first_delay, matching_pages
from cityos.data.ngsild.notify.policy import EndpointPolicy
from cityos.data.ngsild.store.base import FANOUT, OutboxRow, QueryPlan
from cityos.data.ngsild.subscriptions.model import NotifyItem, Subscription

log = logging.getLogger(__name__)

Render = Callable[[Subscription, list[NotifyItem]], tuple[dict[str, Any], dict[str, str]]]


@runtime_checkable
class Encoder(Protocol):
    """A renderer that can also build the body straight as JSON bytes (preferred when offered).

    The headers it returns include ``Content-Type`` and may be shared: they are not changed.
    """

    def encode(self, sub: Subscription, items: list[NotifyItem]) -> tuple[bytes, dict[str, str]]:
        ...


NOTIFY = "notify"                      # the outbox row kind this dispatcher owns
MAX_BACKOFF = 60.0
SKIPPED_STATUSES = frozenset({"paused", "expired"})
_ITEM_OF = operator.attrgetter("item")


@dataclass(slots=True)
class Pending:
    """One item waiting in a lane, and the outbox row it came from (None: periodic).

    Shared by every lane the row's change goes to (one per trigger), so it is never changed.
    """

    item: NotifyItem
    row_id: str | None


@dataclass(slots=True)
class _Fanout:
    """What a row's (subscription id, trigger) pairs mean for the lanes, worked out once.

    Kept per tuple of pairs (the registry hands out one tuple per alike match, so a stream of
    changes reuses a few); rows read back from the outbox carry lists and get a fresh one.
    """

    entries: Any                       # the pairs (held: their id is the cache key)
    tenant: str
    triggers: tuple[str, ...]          # distinct triggers
    lanes: list[tuple[Key, str]]       # ((tenant, subscription id), trigger) per pair


@dataclass(slots=True)
class _Run:
    """Consecutive submitted rows that fired the same subscriptions: per trigger, their items."""

    fanout: _Fanout
    by_trigger: dict[str, list[Pending]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_trigger = {trigger: [] for trigger in self.fanout.triggers}


def _new_fanout(entries: Any, tenant: str) -> _Fanout:
    return _Fanout(entries, tenant, tuple(dict.fromkeys(t for _, t in entries)),
                   [((tenant, sub_id), trigger) for sub_id, trigger in entries])


@dataclass
class Lane:
    """One subscription's queue and its single worker."""

    key: Key
    items: deque[Pending] = field(default_factory=deque)
    in_flight: list[Pending] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class Metrics:
    """Running totals, for /health or /metrics."""

    delivered: int = 0                 # notifications that reached their endpoint
    failed: int = 0                    # failed attempts (each retry counts)
    given_up: int = 0                  # notifications abandoned after the retries
    items_delivered: int = 0           # entities in delivered notifications
    dropped: int = 0                   # entities given up unsent: a failing lane over its cap


class Notifier:
    """Delivers notifications for committed outbox rows and periodic subscriptions."""

    def __init__(self, store: Any, registry: Registry, render: Render, settings: Any, *,
                 policy: EndpointPolicy | None = None, batch_max: int = 100,
                 linger: float = 0.01, send_rate: float = 3000.0, poll_interval: float = 3.0,
                 counters_interval: float = 2.0,
                 done_interval: float = 0.1, done_batch: int = 500,
                 periodic_max_entities: int = 10_000,
                 failing_backlog: int = 10_000) -> None:
        self.store = store
        self.registry = registry
        self.render = render
        self._encode = render.encode if isinstance(render, Encoder) else None
        # subscriptions with ``join`` need their linked entities looked up: an async rendering
        self._encode_linked = getattr(render, "encode_linked", None)
        self.settings = settings
        self.policy = policy or EndpointPolicy.from_settings(settings)
        self.batch_max = batch_max
        self.linger = linger
        self.send_rate = send_rate
        if failing_backlog < 1:              # 0 would give up every change of a failing lane
            raise ValueError(f"CITYOS_NOTIFICATION_FAILING_BACKLOG must be at least 1, got "
                             f"{failing_backlog}")
        self.failing_backlog = failing_backlog
        self.poll_interval = poll_interval
        self.counters_interval = counters_interval
        self.done_interval = done_interval
        self.done_batch = done_batch
        self.periodic_max_entities = periodic_max_entities
        self.timeout = float(settings.notification_timeout)
        self.http = HttpSender(self.policy, self.timeout,
                               ca_file=str(getattr(settings, "notification_ca_file", "") or ""))
        self.mqtt = MqttSender(self.policy, self.timeout)
        self.counter_store = CounterStore(store, registry)
        self.stats = Metrics()
        self._lanes: dict[Key, Lane] = {}
        self._rows: dict[str, int] = {}            # outbox row id -> deliveries still open
        self._done: list[str] = []                 # finished rows not yet deleted
        self._done_set: set[str] = set()
        self._done_wake = asyncio.Event()
        self._incoming: list[_Run] = []            # submitted, not yet on their lanes
        self._fanout_cache: dict[tuple[int, str], _Fanout] = {}
        self._drain_due = False
        # lanes whose last batch was given up -> seconds between their single attempts
        self._failing: dict[Key, float] = {}
        self._fanouts: dict[tuple[str, str], list[Any]] = {}   # (tenant, key) -> stored pairs
        self._last_send: dict[Key, float] = {}     # monotonic start of each lane's last send
        self._periodic: dict[Key, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        # set by the composition root when access control is on: re-resolves a subscription's
        # owner at delivery (notify/owner_view.py)
        self.access_for: AccessFor | None = None

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Load counters, take over pending outbox rows, start periodic subscriptions."""
        self._running = True
        try:
            await self.counter_store.load()
        except Exception:
            log.warning("could not load notification counters", exc_info=True)
        await self._recover()
        self._drain_incoming()
        for lane in self._lanes.values():          # rows submitted before start()
            if lane.task is None and lane.items:
                lane.task = asyncio.create_task(self._work(lane), name=f"notify-{lane.key[1]}")
        for sub in list(self.registry.all()):
            if sub.time_interval:
                self._start_periodic(sub)
        counting = flush_every(self.counter_store, self.counters_interval)
        self._background = [asyncio.create_task(self._poll_loop(), name="notify-poll"),
                            asyncio.create_task(self._done_loop(), name="notify-done"),
                            asyncio.create_task(counting, name="notify-counters")]

    async def stop(self) -> None:
        """Stop every worker; flush finished rows and counters.  Unfinished rows stay pending."""
        self._running = False
        tasks = [*self._background, *self._periodic.values(), *self._side_tasks,
                 *(lane.task for lane in self._lanes.values() if lane.task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._background, self._periodic, self._lanes = [], {}, {}
        self._side_tasks.clear()
        await self._flush_done()
        await self.counter_store.flush()
        await self.http.close()
        await self.mqtt.close()

    # -- input ---------------------------------------------------------------------------------
    def submit(self, rows: Iterable[OutboxRow]) -> None:
        """Queue the work of committed outbox rows (call on the event loop, after the commit).

        The items reach their lanes on the loop's next turn (:meth:`_drain_incoming`, scheduled
        before the writer's answer wakes its caller): a group commit announces its writes one by
        one, and consecutive rows that fired the same subscriptions (the registry hands out one
        tuple per alike match) then go to each lane as one run, one step per subscription
        instead of one per row and subscription.
        """
        incoming = self._incoming
        for row in rows:
            if row.kind != NOTIFY or row.id in self._rows or row.id in self._done_set:
                continue                            # not ours, or already being worked on
            body = row.body
            entries = body.get("subs") or ()
            if type(entries) is not tuple:
                # read back from the outbox (JSON gives lists): check every entry; a tuple is
                # what BrokerEvents built in this process, checking it cost ~4 % of the CPU
                entries = [e for e in entries if isinstance(e, list | tuple) and len(e) == 2]
            self._rows[row.id] = len(entries)
            if not entries:
                self._row_finished(row.id)
                continue
            run = incoming[-1] if incoming else None
            if run is None or run.fanout.entries is not entries or \
                    run.fanout.tenant != row.tenant:
                run = _Run(self._fanout_of(entries, row.tenant))
                incoming.append(run)
            entity = body.get("entity") or {}
            previous = body.get("previous")
            # one item and one Pending per trigger, shared by the lanes (never changed after)
            for trigger, pendings in run.by_trigger.items():
                pendings.append(Pending(NotifyItem(entity, previous, trigger), row.id))
        if incoming and not self._drain_due:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:                    # no loop (a synchronous caller): at once
                self._drain_incoming()
                return
            self._drain_due = True
            loop.call_soon(self._drain_incoming)

    def _fanout_of(self, entries: Any, tenant: str) -> _Fanout:
        if type(entries) is not tuple:              # a list read back: used once
            return _new_fanout(entries, tenant)
        fanout = self._fanout_cache.get((id(entries), tenant))
        if fanout is None or fanout.entries is not entries:
            if len(self._fanout_cache) > 1000:     # alike matches are few; this bounds memory
                self._fanout_cache.clear()
            fanout = self._fanout_cache[(id(entries), tenant)] = _new_fanout(entries, tenant)
        return fanout

    def _drain_incoming(self) -> None:
        """Hand the submitted runs to their lanes, in the order the rows were submitted."""
        self._drain_due = False
        runs, self._incoming = self._incoming, []
        lanes, failing = self._lanes, self._failing
        for run in runs:
            by_trigger = run.by_trigger
            # with 100 subscriptions matching every update this loop is the notifier's hot spot
            for key, trigger in run.fanout.lanes:
                lane = lanes.get(key)
                if lane is not None and lane.task is not None and key not in failing:
                    lane.items.extend(by_trigger[trigger])   # its worker will take them
                else:
                    self._enqueue(key, by_trigger[trigger])

    def subscription_changed(self, sub: Subscription) -> None:
        """A subscription was created or updated: (re)start or stop its periodic task."""
        key = (sub.tenant, sub.id)
        self._stop_periodic(key)
        self._failing.pop(key, None)                # a new endpoint deserves full retries
        if sub.time_interval and self._running:
            self._start_periodic(sub)

    def subscription_removed(self, tenant: str, sub_id: str) -> None:
        """A subscription was deleted: drop its queue and periodic task and its counters."""
        key = (tenant, sub_id)
        self._stop_periodic(key)
        self._failing.pop(key, None)
        self._last_send.pop(key, None)
        lane = self._lanes.pop(key, None)
        if lane is not None:
            if lane.task is not None:
                lane.task.cancel()
            self._finish([*lane.in_flight, *lane.items])   # nothing left to deliver them to
            lane.items.clear()
            lane.in_flight = []
        self._spawn(self.counter_store.forget(tenant, sub_id))
        self._spawn(self.http.discard(key))

    # -- metrics -------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """Queue lengths and totals (for /health or /metrics)."""
        backlog = {f"{t}/{s}" if t else s: len(lane.items) + len(lane.in_flight)
                   for (t, s), lane in self._lanes.items() if lane.items or lane.in_flight}
        return {"queued": sum(len(lane.items) for lane in self._lanes.values()),
                "inFlight": sum(len(lane.in_flight) for lane in self._lanes.values()),
                "delivered": self.stats.delivered, "itemsDelivered": self.stats.items_delivered,
                "failed": self.stats.failed, "givenUp": self.stats.given_up,
                "dropped": self.stats.dropped,
                "pendingRows": len(self._rows), "periodic": len(self._periodic),
                # what a lane that has just sent waits now (the linger or its budget share)
                "lingerMs": round(self._linger() * 1000, 1),
                "backlog": backlog}

    # -- lanes ---------------------------------------------------------------------------------
    def _enqueue(self, key: Key, pendings: list[Pending]) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key)
        lane.items.extend(pendings)
        if key in self._failing and len(lane.items) > self.failing_backlog:
            # A receiver that is down gets one attempt per batch; under a steady stream of
            # changes its queue would still grow without end.  Past the cap the oldest items are
            # given up (counted), which bounds memory and the outbox; a healthy but slow
            # receiver is never cut, only one whose last batch was already given up.
            excess = len(lane.items) - self.failing_backlog
            dropped = [lane.items.popleft() for _ in range(excess)]
            self.stats.dropped += excess
            self._finish(dropped)
        if lane.task is None and self._running:
            lane.task = asyncio.create_task(self._work(lane), name=f"notify-{key[1]}")

    async def _work(self, lane: Lane) -> None:
        """Drain one lane: throttle, batch, deliver; exit when it stays empty for a linger."""
        try:
            while True:
                if not lane.items:
                    # A lane that has just sent waits its linger anyway; waiting it here keeps
                    # the worker for the changes that arrive meanwhile.  Ending at once and
                    # starting a new task for the next change cost ~5 % of the broker's CPU
                    # with 100 subscriptions matching every update.
                    idle = self._until_next_send(lane.key)
                    if idle <= 0:
                        break
                    await asyncio.sleep(idle)
                    if not lane.items:
                        break
                sub = self.registry.get(*lane.key)
                if sub is None or self.registry.status(sub) in SKIPPED_STATUSES:
                    self._finish(lane.items)        # gone, paused or expired: nothing to send
                    lane.items.clear()
                    break
                wait = self._throttle_wait(sub)
                if wait <= 0 and len(lane.items) < self.batch_max:
                    wait = self._until_next_send(lane.key)
                if lane.key in self._failing:
                    wait = max(wait, self._failing_wait(lane.key))
                if wait > 0:
                    await asyncio.sleep(wait)       # changes arriving meanwhile join the batch
                    continue
                # per-entity steps in C (list, map): with 100 subscriptions on every change they
                # run 100 times per update
                if len(lane.items) <= self.batch_max:
                    lane.in_flight = list(lane.items)
                    lane.items.clear()
                else:
                    lane.in_flight = [lane.items.popleft() for _ in range(self.batch_max)]
                self._last_send[lane.key] = time.monotonic()
                await self._deliver(sub, list(map(_ITEM_OF, lane.in_flight)))
                batch, lane.in_flight = lane.in_flight, []
                self._finish(batch)
        finally:
            lane.task = None
            if not lane.items and not lane.in_flight and self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]           # idle lanes cost nothing

    def _until_next_send(self, key: Key) -> float:
        """Seconds until a lane that has sent may send again (0 or less: at once).

        A lane that sent within the last period waits for the next tick of a clock all lanes
        share (the multiples of the period), not for its own last send plus the period: lanes
        fed the same changes then send in the same tick with the same items, and their ``data``
        is serialized once for all of them (the batch cache in subscriptions/render.py).  A lane
        that has not sent for a period sends at once, so a lone change is not delayed.
        """
        period = self._linger()
        last = self._last_send.get(key, 0.0)
        now = time.monotonic()
        if last + period <= now:
            return 0.0
        return (last // period + 1) * period - now

    def _linger(self) -> float:
        """How long a lane that has just sent waits before its next notification.

        Every lane with work waits its share of the send-rate budget, at least the linger: 10
        busy lanes at 3,000 requests/s wait the 10 ms linger, 100 wait 33 ms, so fan-out to many
        subscriptions goes out in larger, fewer requests.  Each request costs the broker about
        as much as 30 entities in one (mostly the socket write and the receiver it wakes, which
        in the benchmark shares the machine).  Signals of a busy broker were tried instead of a
        fixed budget and failed: at saturation the event loop ran timers under 3 ms late and its
        thread was on the CPU only 60-70 % of the time (the rest waiting, for the GIL or I/O).
        """
        return max(self.linger, len(self._lanes) / self.send_rate)

    def _fail_lane(self, key: Key) -> None:
        """A batch was given up: its lane goes to single attempts, spaced by a pause that
        starts at the retry backoff and doubles with every batch given up in a row (capped)."""
        pause = self._failing.get(key)
        first = float(self.settings.notification_backoff)
        self._failing[key] = first if pause is None else min(pause * 2, MAX_BACKOFF)

    def _failing_wait(self, key: Key) -> float:
        """Seconds until a failing lane may make its next attempt.

        Without a pause a receiver that refuses connections was tried once per linger, about
        100 times a second under a steady stream of changes (116,725 attempts in a 20-minute
        soak, bench/RESULTS.md).  Meanwhile new items wait, up to ``failing_backlog``.
        """
        return self._last_send.get(key, 0.0) + self._failing[key] - time.monotonic()

    def _throttle_wait(self, sub: Subscription) -> float:
        if not sub.throttling:
            return 0.0
        last = self.registry.counters(sub.tenant, sub.id).last_sent_monotonic
        return 0.0 if not last else last + sub.throttling - time.monotonic()

    # -- delivery ------------------------------------------------------------------------------
    async def _deliver(self, sub: Subscription, items: list[NotifyItem], *,
                       retries: int | None = None) -> bool:
        """Render and send one notification with the retry schedule; True when delivered."""
        key = (sub.tenant, sub.id)
        if retries is None:
            retries = 0 if key in self._failing else int(self.settings.notification_retries)
        query = self.store.query
        if sub.owner is not None and self.access_for is not None:
            try:
                items, owner = await visible_items(self.access_for, sub, items)
            except Exception:
                log.exception("could not check what subscription %s may receive", sub.id)
                return False                # fail closed: nothing leaves unchecked
            if not items:
                return True                 # nothing the owner may see: nothing to send
            query = _guarded_query(self.store, owner)
        try:
            if sub.join is not None and self._encode_linked is not None:
                body, headers = await self._encode_linked(
                    query, int(getattr(self.settings, "max_page_size", 1000)), sub, items)
            elif self._encode is not None:
                body, headers = self._encode(sub, items)
            else:
                payload, extra = self.render(sub, items)
                body = orjson.dumps(payload)
                headers = {"Content-Type": sub.endpoint.accept, **extra}
        except Exception:
            log.exception("could not render a notification for subscription %s", sub.id)
            self._record(key, ok=False, reason="the notification could not be rendered")
            self.stats.given_up += 1
            return False
        delay = float(self.settings.notification_backoff)
        attempt = 0
        while True:
            try:
                code = await self._send(sub, body, headers)
            except DeliveryFailed as exc:
                self._record(key, ok=False, reason=exc.reason)
                if not exc.retry or attempt >= retries:
                    log.warning("giving up a notification of subscription %s to %s after %d "
                                "attempt(s): %s", sub.id, sub.endpoint.uri, attempt + 1, exc.reason)
                    self.stats.given_up += 1
                    self._fail_lane(key)
                    return False
                log.info("notification of subscription %s to %s failed (%s); retrying in %.1f s",
                         sub.id, sub.endpoint.uri, exc.reason, delay)
                await asyncio.sleep(delay)
                delay, attempt = min(delay * 2, MAX_BACKOFF), attempt + 1
                current = self.registry.get(*key)
                if current is None or self.registry.status(current) in SKIPPED_STATUSES:
                    return False
                sub = current                       # the endpoint may have been changed meanwhile
                continue
            self._record(key, ok=True, code=code)
            self._failing.pop(key, None)
            self.stats.items_delivered += len(items)
            return True

    async def _send(self, sub: Subscription, body: bytes, headers: dict[str, str]) -> int | None:
        """Send once; the HTTP status of a success (None for MQTT)."""
        endpoint = sub.endpoint
        scheme = endpoint.uri.partition(":")[0].lower()
        try:
            if scheme in ("http", "https"):     # the sender keeps the timeout itself (cheaper)
                return await self.http.send(endpoint.uri, body, headers,
                                            pool=(sub.tenant, sub.id),
                                            method=http_method(endpoint.notifier_info))
            if scheme in ("mqtt", "mqtts"):
                async with asyncio.timeout(self.timeout):
                    await self.mqtt.send(endpoint.uri, headers, body, endpoint.notifier_info)
                return None
            raise DeliveryFailed(f"unsupported endpoint scheme {scheme!r}", retry=False)
        except TimeoutError as exc:
            raise DeliveryFailed(f"no answer within {self.timeout:g} s") from exc
        except DeliveryFailed:
            raise
        except Exception as exc:    # a sender bug must not kill the lane and strand its rows
            log.exception("sending a notification of subscription %s failed", sub.id)
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    def _record(self, key: Key, *, ok: bool, code: int | None = None,
                reason: str | None = None) -> None:
        """Count one attempt, in the totals and in the subscription's counters."""
        if ok:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
        if self.registry.get(*key) is None:         # removed while the attempt was under way
            return
        counters = self.registry.counters(*key)
        stamp = utc_stamp()                         # from_micros(now_micros()), cheaper
        counters.last_notification = stamp
        counters.last_sent_monotonic = time.monotonic()
        if ok:
            counters.times_sent += 1
            counters.last_success = stamp
            counters.last_success_code = code
            counters.consecutive_failures = 0
        else:
            counters.times_failed += 1
            counters.last_failure = stamp
            counters.last_failure_reason = reason
            counters.consecutive_failures += 1
        self.counter_store.dirty.add(key)

    # -- outbox rows ---------------------------------------------------------------------------
    def _finish(self, pendings: Iterable[Pending]) -> None:
        rows = self._rows
        for pending in pendings:
            row_id = pending.row_id
            if row_id is None:                  # periodic: no outbox row
                continue
            left = rows.get(row_id)
            if left is None:                    # finished already (its subscription went away)
                continue
            if left > 1:
                rows[row_id] = left - 1
            else:
                self._row_finished(row_id)

    def _row_finished(self, row_id: str) -> None:
        del self._rows[row_id]
        self._done.append(row_id)
        self._done_set.add(row_id)
        if len(self._done) >= self.done_batch:
            self._done_wake.set()

    async def _flush_done(self) -> None:
        ids, self._done = self._done, []
        if not ids:
            return
        try:
            await self.store.outbox_done(ids)
        except Exception:
            log.warning("could not delete %d finished outbox rows; will retry", len(ids),
                        exc_info=True)
            self._done = ids + self._done
            return
        self._done_set.difference_update(ids)

    async def _recover(self) -> int:
        """Submit every pending row the store hands us; returns how many."""
        total = 0
        while True:
            rows = await self.store.outbox_pending()
            fresh = [r for r in rows if r.kind == NOTIFY and r.id not in self._rows
                     and r.id not in self._done_set]
            fresh = [r for r in [await self._expanded(r) for r in fresh] if r is not None]
            self.submit(fresh)
            total += len(fresh)
            if not fresh or len(rows) < 1000:   # 1000: outbox_pending's default page
                return total

    async def _expanded(self, row: OutboxRow) -> OutboxRow | None:
        """A row read back from the outbox with its fan-out set's pairs in place of the set's
        key (events.py stores a change firing many subscriptions that way); None when the set
        cannot be found (logged; the row stays in the outbox)."""
        key = row.body.get("fanout")
        if key is None or "subs" in row.body:
            return row
        pairs = self._fanouts.get((row.tenant, key))
        if pairs is None:
            doc = await self.store.get_document(FANOUT, row.tenant, str(key))
            if doc is None or not isinstance(doc.get("subs"), list):
                log.error("outbox row %s names fan-out set %s, which is missing: not delivered",
                          row.id, key)
                return None
            if len(self._fanouts) > 10_000:
                self._fanouts.clear()
            pairs = self._fanouts[(row.tenant, key)] = doc["subs"]
        return OutboxRow(row.id, row.tenant, row.kind, {**row.body, "subs": pairs},
                         row.created_at)

    # -- background loops ----------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._recover()
            except Exception:
                log.warning("polling the outbox failed", exc_info=True)

    async def _done_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.done_interval):
                    await self._done_wake.wait()
            self._done_wake.clear()
            await self._flush_done()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- periodic subscriptions ----------------------------------------------------------------
    def _start_periodic(self, sub: Subscription) -> None:
        key = (sub.tenant, sub.id)
        self._periodic[key] = asyncio.create_task(self._periodic_loop(key),
                                                  name=f"notify-periodic-{sub.id}")

    def _stop_periodic(self, key: Key) -> None:
        task = self._periodic.pop(key, None)
        if task is not None:
            task.cancel()

    async def _periodic_loop(self, key: Key) -> None:
        sub = self.registry.get(*key)
        if sub is None or not sub.time_interval:
            return
        counters = self.registry.counters(*key)
        await asyncio.sleep(first_delay(sub.time_interval, counters.last_notification))
        while True:
            sub = self.registry.get(*key)
            if sub is None or not sub.time_interval:
                return
            if self.registry.status(sub) not in SKIPPED_STATUSES:
                try:
                    await self._send_current_state(sub)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("periodic notification of subscription %s failed", sub.id)
            await asyncio.sleep(sub.time_interval)

    async def _send_current_state(self, sub: Subscription) -> None:
        page_size = min(self.batch_max * 10, int(getattr(self.settings, "max_page_size", 1000)))
        async for entities in matching_pages(self.store, sub, page_size, self.periodic_max_entities):
            items = [NotifyItem(entity=e) for e in entities]
            # a periodic notification is not retried: the next interval brings fresher state
            await self._deliver(sub, items, retries=0)


def _guarded_query(store: Any, owner: Access | None) -> Callable[[QueryPlan], Any]:
    """The store's query as the subscription's owner sees it (linked entities of ``join``)."""
    from cityos.data.ngsild.guarded import GuardedStore

    guarded = GuardedStore(store)

    async def query(plan: QueryPlan) -> Any:
        with acting_as(owner):
            return await guarded.query(plan)

    return query
