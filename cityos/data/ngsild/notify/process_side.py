"""The dispatcher process's side of the socket pair (ADR 0017); ``cityos/dispatcher.py`` runs it.

Started by the server (notify/process_link.py) with its end of a socket pair.  It runs
today's :class:`Notifier` unchanged (lanes, rendering, sending, retries, periodic
notifications, the outbox poller, owner checks) on a registry and settings the server sends
first, and a store of its own for reading.  What the Notifier would write goes back to the
server instead: finished outbox rows (the server's writer deletes them: SQLite has one writer,
ADR 0003) and counters (the server answers ``GET /subscriptions`` from its copy and saves them).

It exits when the server asks it to (after handing back what it finished) or when the server's
end closes (the server died: whatever is unfinished is in the outbox for the next dispatcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cityos.data.ngsild.notify import wire
from cityos.data.ngsild.notify.counters import apply_document, to_document
from cityos.data.ngsild.notify.dispatcher import NOTIFY, Notifier
from cityos.data.ngsild.store.base import OutboxRow
from cityos.data.ngsild.subscriptions import SubscriptionRegistry, render_notification
from cityos.data.ngsild.subscriptions.model import Subscription
from cityos.data.ngsild.terms import TermMap

log = logging.getLogger("cityos.dispatcher")

ACK_TIMEOUT = 30.0          # seconds the server may take to delete finished rows
COUNTERS_INTERVAL = 0.5     # seconds between counter and metrics reports to the server
POLLER_LAG = 5_000_000      # µs: the outbox poller takes rows this much older than a watermark


class ServerLink:
    """Frames to the server, and the answers to row deletions it was asked for."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.closed = False
        self._numbers = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[bool]] = {}

    def send(self, data: bytes) -> None:
        if not self.closed:
            wire.write(self.writer, data)

    async def delete(self, ids: list[str]) -> None:
        """Have the server delete finished outbox rows; raises when it did not."""
        if self.closed:
            raise ConnectionError("the server is gone")
        number = next(self._numbers)
        answer = self._waiting[number] = asyncio.get_running_loop().create_future()
        self.send(wire.json_frame(wire.DONE, [number, ids]))
        try:
            deleted = await asyncio.wait_for(answer, ACK_TIMEOUT)
        finally:
            self._waiting.pop(number, None)
        if not deleted:
            raise RuntimeError("the server could not delete finished outbox rows")

    def acknowledged(self, number: int, deleted: bool) -> None:
        answer = self._waiting.get(number)
        if answer is not None and not answer.done():
            answer.set_result(deleted)

    def close(self) -> None:
        self.closed = True
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the server is gone"))


class ForwardingStore:
    """The dispatcher's store: reads its own connection, deletes finished rows via the server.

    Its outbox poller takes only rows created ``POLLER_LAG`` before the last watermark read
    (see ``DispatcherLink._watermarks``): by then every subscription such a row can name has
    reached this process.  The lag covers a write's own span: a row's time is taken when the
    write's changes are worked out, a little before they are matched.
    """

    def __init__(self, store: Any, server: ServerLink) -> None:
        self._store = store
        self._server = server
        self.watermark = 0                      # epoch µs; 0: nothing is known yet

    async def outbox_pending(self, limit: int = 1000) -> list[OutboxRow]:
        rows: list[OutboxRow] = await self._store.outbox_pending(limit)
        before = self.watermark - POLLER_LAG
        early = [row.id for row in rows if row.created_at > before]
        if early:                               # left for a later poll, unclaimed
            self._store.release_claims(early)
            rows = [row for row in rows if row.created_at <= before]
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def outbox_done(self, ids: list[str]) -> None:
        await self._server.delete(ids)
        # rows this process read back from the outbox count as claimed by its store (on
        # PostgreSQL every poll renews their leases) until they are gone
        self._store.release_claims(ids)


class ForwardedCounters:
    """Stands for the Notifier's CounterStore: changed counters (and the metrics) go to the
    server, which keeps and saves them."""

    def __init__(self, registry: SubscriptionRegistry, server: ServerLink,
                 notifier: Notifier) -> None:
        self.registry = registry
        self.server = server
        self.notifier = notifier
        self.dirty: set[tuple[str, str]] = set()

    async def load(self) -> int:
        return 0                      # the server sent them with the registry

    async def flush(self) -> None:
        keys, self.dirty = self.dirty, set()
        entries = [[tenant, sub_id, to_document(sub_id, self.registry.counters(tenant, sub_id))]
                   for tenant, sub_id in keys if self.registry.get(tenant, sub_id) is not None]
        if entries:
            self.server.send(wire.json_frame(wire.COUNTERS, entries))
        self.server.send(wire.json_frame(wire.METRICS, self.notifier.metrics()))

    async def forget(self, tenant: str, sub_id: str) -> None:
        self.dirty.discard((tenant, sub_id))     # the server deletes the saved ones


class RowDecoder:
    """Rows of ROWS frames, with one shared tuple per distinct list of subscription pairs, so
    the Notifier hands runs of alike changes to each lane in one step (as in the server)."""

    def __init__(self) -> None:
        self._interned: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}

    def rows(self, payload: bytes) -> list[OutboxRow]:
        table, entries = orjson.loads(payload)
        shared = [self._intern(tuple(map(tuple, pairs))) for pairs in table]
        return [OutboxRow(row_id, tenant, NOTIFY,
                          {"subs": shared[index], "entity": entity, "previous": previous,
                           "at": at}, 0)
                for row_id, tenant, index, entity, previous, at in entries]

    def _intern(self, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        found = self._interned.get(pairs)
        if found is None:
            if len(self._interned) > 1000:          # alike matches are few; bounds memory
                self._interned.clear()
            found = self._interned[pairs] = pairs
        return found


class SubscriptionIntake:
    """Subscriptions as the server sent them, made fit for rendering in this process.

    * ``prepared`` (render.py) holds a number from the server's table of render keys; this
      process numbers its own, so the server's would name another rendering here: dropped.
    * Term maps come one pickle per change, so 100 subscriptions under one ``@context`` would
      hold 100 equal term maps, and render keys compare them by identity: every entity would be
      serialized once per subscription instead of once for all (measured: 70 % of the
      dispatcher's time).  Equal ones are replaced by one shared map.
    """

    def __init__(self, decoders: dict[str, Callable[[Any], Subscription]] | None = None) -> None:
        self._term_maps: dict[tuple[bytes, str | None], Any] = {}
        # face -> rebuilds a subscription from the form the server's ``codecs`` gave it
        self.decoders = decoders or {}

    def received(self, form: tuple[Any, ...]) -> Subscription | None:
        """The subscription of a wire form (``DispatcherLink._wire_form``); None, logged, when
        this process cannot rebuild it (it is then not notified here)."""
        if form[0] == "sub":
            return self(form[1])
        face, data = form[1], form[2]
        decode = self.decoders.get(face)
        if decode is None:
            log.error("a subscription of face %r arrived, which this dispatcher cannot rebuild",
                      face)
            return None
        try:
            return self(decode(data))
        except (ValueError, KeyError, TypeError):
            log.exception("a subscription of face %r could not be rebuilt", face)
            return None

    def __call__(self, sub: Subscription) -> Subscription:
        sub.prepared = None
        tm = sub.term_map
        if isinstance(tm, TermMap):
            key = (orjson.dumps(tm.terms, option=orjson.OPT_SORT_KEYS), tm.vocab)
            shared = self._term_maps.setdefault(key, tm)
            sub.term_map = shared
        return sub


def open_reading_store(settings: Any) -> Any:
    """The dispatcher's own store: the same database, a small pool, no maintenance work."""
    from cityos.core.storage import engine_of, sqlite_path

    if engine_of(settings.database_url) == "sqlite":
        from cityos.data.ngsild.store.sqlite import SQLiteEntityStore

        return SQLiteEntityStore(sqlite_path(settings.database_url),
                                 synchronous=settings.sqlite_synchronous)
    from cityos.data.ngsild.store.postgres import PostgresEntityStore

    return PostgresEntityStore(settings.database_url, min_size=1, max_size=4, self_vacuum="off")


async def _nothing() -> None:
    return None


@dataclass
class Parts:
    """What the composition root adds once the settings are known."""

    access_for: Any = None                                  # owner checks (None: off)
    close: Callable[[], Awaitable[None]] = _nothing         # closes what it opened for them
    decoders: dict[str, Callable[[Any], Subscription]] = field(default_factory=dict)


# (settings, the server's extras by name, how to report a oneshot subscription that fired)
Setup = Callable[[Any, dict[str, Any], Callable[[Subscription], None]], Awaitable[Parts]]


async def serve(fd: int, setup: Setup) -> None:
    """Run the dispatcher on the socket ``fd`` until told to stop or the server is gone."""
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2 ** 24)
    kind, payload = await wire.read_frame(reader)
    if kind != wire.START:
        raise RuntimeError(f"the server's first frame was {kind!r}, not the start frame")
    settings, forms, watermark, extras = pickle.loads(payload)
    server = ServerLink(writer)

    def fired_once(sub: Subscription) -> None:
        server.send(wire.json_frame(wire.FIRED, [sub.face, sub.tenant, sub.id]))

    parts = await setup(settings, extras, fired_once)
    intake = SubscriptionIntake(parts.decoders)
    subs = [(intake.received(form), doc) for form, doc in forms]
    registry = SubscriptionRegistry()
    registry.put_all([sub for sub, _ in subs if sub is not None])
    for sub, doc in subs:
        if sub is not None and doc:
            apply_document(registry.counters(sub.tenant, sub.id), doc)
    store = open_reading_store(settings)
    await store.open()
    forwarding = ForwardingStore(store, server)
    forwarding.watermark = watermark
    notifier = Notifier(forwarding, registry, render_notification, settings,
                        linger=settings.notification_linger,
                        send_rate=settings.notification_send_rate,
                        failing_backlog=settings.notification_failing_backlog,
                        counters_interval=COUNTERS_INTERVAL)
    notifier.counter_store = ForwardedCounters(registry, server, notifier)  # type: ignore[assignment]
    notifier.access_for = parts.access_for
    stopping = asyncio.Event()
    frames = asyncio.create_task(_read_frames(reader, registry, notifier, server, stopping,
                                              intake, forwarding))
    try:
        await notifier.start()
        log.info("dispatcher ready: %d subscriptions", len(subs))
        await stopping.wait()
    finally:
        # the frame reader keeps running here: stop() hands back finished rows and waits for
        # the server's answer
        await notifier.stop()
        frames.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await frames
        server.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        await parts.close()
        await store.close()


async def _read_frames(reader: asyncio.StreamReader, registry: SubscriptionRegistry,
                       notifier: Notifier, server: ServerLink, stopping: asyncio.Event,
                       intake: SubscriptionIntake, forwarding: ForwardingStore) -> None:
    decoder = RowDecoder()
    try:
        while True:
            try:
                kind, payload = await wire.read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                log.info("the server is gone: stopping")
                server.close()
                return
            if kind == wire.ROWS:
                rows = decoder.rows(payload)
                forwarding.add_claims([row.id for row in rows])   # the poller leaves them alone
                notifier.submit(rows)
            elif kind == wire.PUT:
                received = intake.received(pickle.loads(payload))
                if received is not None:
                    registry.put(received)
                    notifier.subscription_changed(received)
            elif kind == wire.REMOVE:
                tenant, sub_id = orjson.loads(payload)
                registry.remove(tenant, sub_id)
                notifier.subscription_removed(tenant, sub_id)
            elif kind == wire.DONE_ACK:
                number, deleted = orjson.loads(payload)
                server.acknowledged(number, deleted)
            elif kind == wire.WATERMARK:
                forwarding.watermark = orjson.loads(payload)
            elif kind == wire.STOP:
                stopping.set()
            else:
                log.warning("unknown frame %r from the server", kind)
    finally:
        stopping.set()
