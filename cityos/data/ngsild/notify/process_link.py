"""The server's side of the dispatcher process (ADR 0017): it stands where the Notifier stands.

The composition root hands this object to the broker and to ``BrokerEvents`` instead of a
:class:`~cityos.data.ngsild.notify.dispatcher.Notifier` when ``CITYOS_NOTIFIER=process``.  It
starts ``python -m cityos.dispatcher`` (notify/process_side.py) joined by a socket pair and
sends it the committed ``notify`` rows (one frame per loop turn) and every subscription change,
in one ordered stream.  The dispatcher answers with finished rows (deleted here, by the server's
writer: SQLite has one, ADR 0003), counters (kept here for ``GET /subscriptions`` and saved
here) and its metrics (for ``/health``).

Nothing here waits for the dispatcher.  When it is down, starting or behind (its socket buffer
over ``max_buffer``), rows are not sent at all: they are in the outbox, and the dispatcher's
start-up recovery and poller pick them up there.  Subscription changes are always sent (they
are few and small), and a restarted dispatcher gets the whole registry first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from cityos.core.storage import engine_of, sqlite_path
from cityos.data.ngsild.notify import wire
from cityos.data.ngsild.notify.counters import (
    CounterStore,
    apply_document,
    flush_every,
    to_document,
)
from cityos.data.ngsild.notify.dispatcher import NOTIFY
from cityos.data.ngsild.store.base import OutboxRow
from cityos.data.ngsild.subscriptions.model import LD_FACE, Subscription
from cityos.data.ngsild.subscriptions.registry import SubscriptionRegistry
from cityos.data.ngsild.times import now_micros

log = logging.getLogger(__name__)

CHILD = "cityos.dispatcher"
FIRST_RESTART = 0.5          # seconds before restarting a dispatcher that died; doubles
MAX_RESTART = 30.0
STABLE_AFTER = 60.0          # a dispatcher that ran this long restarts after the first pause
WATERMARK_INTERVAL = 0.5     # seconds between watermark frames (process_side.py: the poller)
STOP_TIMEOUT = 15.0          # seconds a stopping dispatcher may take to hand its work back


class DispatcherLink:
    """Runs the dispatcher process and talks to it; the Notifier's interface for the server."""

    def __init__(self, store: Any, registry: SubscriptionRegistry, settings: Any, *,
                 max_buffer: int = 4 * 1024 * 1024, counters_interval: float = 2.0) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.max_buffer = max_buffer
        self.counters_interval = counters_interval
        self.counter_store = CounterStore(store, registry)
        self.access_for: Any = None     # the dispatcher resolves owners itself (same tables)
        # set by the composition root for faces other than NGSI-LD (ADR 0017): face -> the
        # picklable form of its subscriptions; values the dispatcher gets at start (by name);
        # what to do when the dispatcher reports that a oneshot subscription fired
        self.codecs: dict[str, Callable[[Subscription], Any]] = {}
        self.extras: dict[str, Callable[[], Any]] = {}
        self.on_fired_once: Callable[[str, str, str], Awaitable[None]] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: list[tuple[Any, ...]] = []    # rows of this loop turn, not yet sent
        self._table: list[Any] = []                  # their distinct subscription pairs
        self._tables: dict[int, int] = {}            # id(pairs) -> index in _table
        self._flush_due = False
        self._supervisor: asyncio.Task[None] | None = None
        self._counters_task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._metrics: dict[str, Any] = {}
        self.restarts = 0
        self.rows_sent = 0
        self.rows_left_to_poller = 0      # not sent (down, starting or behind): outbox recovery

    def delivers(self, face: str) -> bool:
        """Whether subscriptions of ``face`` are delivered: NGSI-LD's, and those of a face the
        composition root gave a ``codecs`` entry (their parsed form may not pickle: some hold
        Python tests built at parse time, so they cross as a form of their own)."""
        return face == LD_FACE or face in self.codecs

    def _wire_form(self, sub: Subscription) -> tuple[Any, ...]:
        encode = self.codecs.get(sub.face)
        return ("sub", sub) if encode is None else ("form", sub.face, encode(sub))

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Load saved counters, then start the dispatcher (and keep it running)."""
        others = sorted({sub.face for sub in self.registry.all() if not self.delivers(sub.face)})
        if others:
            raise RuntimeError(
                f"CITYOS_NOTIFIER=process does not deliver {', '.join(others)} subscriptions yet, "
                f"and this database holds some: run with CITYOS_NOTIFIER=inline")
        self._running = True
        try:
            await self.counter_store.load()
        except Exception:
            log.warning("could not load notification counters", exc_info=True)
        ready = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(ready), name="notify-dispatcher")
        self._counters_task = asyncio.create_task(
                flush_every(self.counter_store, self.counters_interval), name="notify-counters")
        await ready          # the first dispatcher has its registry: changes from now reach it

    async def stop(self) -> None:
        """Ask the dispatcher to finish (it hands back finished rows and counters), then stop."""
        self._running = False
        process, writer = self._process, self._writer
        if process is not None and writer is not None and process.returncode is None:
            wire.write(writer, wire.frame(wire.STOP))
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("the notification dispatcher did not stop in %.0f s: killed",
                            STOP_TIMEOUT)
                process.kill()
                await process.wait()
        if self._supervisor is not None and writer is not None:
            # its reader still holds the last frames (the final counters) when the process has
            # exited; it returns once it has read them and seen the end of the stream
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._supervisor), 5.0)
        for task in (self._supervisor, self._counters_task, *self._side_tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._supervisor, self._counters_task,
                                           *self._side_tasks) if t is not None),
                             return_exceptions=True)
        await self.counter_store.flush()

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        """Start the dispatcher; when it dies, start another after a growing pause."""
        pause = FIRST_RESTART
        while self._running:
            started = time.monotonic()
            try:
                await self._run_once(ready)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the notification dispatcher failed")
            finally:
                self._writer = None
                if not ready.done():       # start() must not wait forever for a failed start
                    ready.set_result(None)
            if not self._running:
                return
            if time.monotonic() - started > STABLE_AFTER:
                pause = FIRST_RESTART
            log.warning("the notification dispatcher stopped (exit status %s); restarting in "
                        "%.1f s", self._process.returncode if self._process else None, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RESTART)
            self.restarts += 1

    async def _run_once(self, ready: asyncio.Future[None]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", CHILD, str(theirs.fileno()), pass_fds=(theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()                 # the child holds its end; ours sees EOF if it dies
        self._process = process
        watermarks: asyncio.Task[None] | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours, limit=2 ** 24)
            subs = [(self._wire_form(sub),
                     to_document(sub.id, self.registry.counters(sub.tenant, sub.id)))
                    for sub in self.registry.all()]
            extras = {name: value() for name, value in self.extras.items()}
            # sent before anything else, in the same loop turn as taking the registry: every
            # later change is a frame after it, so the dispatcher misses none
            writer.write(wire.pickle_frame(wire.START,
                                           (self.settings, subs, now_micros(), extras)))
            self._writer = writer
            if not ready.done():
                ready.set_result(None)
            watermarks = asyncio.create_task(self._watermarks(writer), name="notify-watermarks")
            await self._read(reader, writer)
        finally:
            self._writer = None
            self._metrics = {}             # a dead dispatcher's figures are not current
            if watermarks is not None:
                watermarks.cancel()
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            else:
                ours.close()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()

    async def _watermarks(self, writer: asyncio.StreamWriter) -> None:
        """Tell the dispatcher, now and then, how far the stream it has read goes.

        A subscription change is written in the same loop turn as the registry takes it, so
        once the dispatcher has read a watermark it knows every subscription a row created
        before it can name.  Its outbox poller takes only such rows: a row read from the
        database ahead of its subscription's frame would otherwise find no subscription and be
        finished unsent.  Never dropped, unlike rows (8 bytes twice a second).
        """
        while True:
            wire.write(writer, wire.json_frame(wire.WATERMARK, now_micros()))
            await asyncio.sleep(WATERMARK_INTERVAL)

    # -- input from the server (the Notifier's interface) --------------------------------------
    def submit(self, rows: list[OutboxRow]) -> None:
        """Queue committed outbox rows for the dispatcher; sent once per loop turn.

        A row is sent as [id, tenant, index of its subscription pairs, entity, previous, at]:
        consecutive changes fire the same tuple of pairs (the registry hands out one per alike
        match), so each frame carries a distinct tuple once, not 100 pairs with every row.
        """
        pending, tables, table = self._pending, self._tables, self._table
        for row in rows:
            if row.kind != NOTIFY:
                continue
            body = row.body
            subs = body["subs"]
            index = tables.get(id(subs))
            if index is None or table[index] is not subs:
                index = tables[id(subs)] = len(table)
                table.append(subs)
            pending.append((row.id, row.tenant, index, body["entity"], body["previous"],
                            body["at"]))
        if pending and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush_rows)

    def _flush_rows(self) -> None:
        self._flush_due = False
        rows, table = self._pending, self._table
        self._pending, self._table, self._tables = [], [], {}
        writer = self._writer
        if writer is None or writer.transport.get_write_buffer_size() > self.max_buffer:
            self.rows_left_to_poller += len(rows)    # in the outbox: the poller finds them
            return
        if wire.write(writer, wire.json_frame(wire.ROWS, [table, rows])):
            self.rows_sent += len(rows)
        else:
            self.rows_left_to_poller += len(rows)

    def subscription_changed(self, sub: Subscription) -> None:
        """A subscription was created or changed: the dispatcher gets its new form."""
        self._send_control(wire.pickle_frame(wire.PUT, self._wire_form(sub)))

    def subscription_removed(self, tenant: str, sub_id: str) -> None:
        """A subscription was deleted: the dispatcher drops its queue; its counters go."""
        self._send_control(wire.json_frame(wire.REMOVE, [tenant, sub_id]))
        self._spawn(self.counter_store.forget(tenant, sub_id))

    def _send_control(self, data: bytes) -> None:
        # rows of this turn first, so the stream keeps the order things happened in
        if self._pending:
            self._flush_rows()
        if self._writer is not None:   # otherwise the next dispatcher starts from the registry
            wire.write(self._writer, data)

    # -- output of the dispatcher --------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                kind, payload = await wire.read_frame(reader)
            except asyncio.IncompleteReadError:
                return                                  # the dispatcher exited
            if kind == wire.DONE:
                number, ids = orjson.loads(payload)
                self._spawn(self._delete_done(writer, number, ids))
            elif kind == wire.COUNTERS:
                self._apply_counters(orjson.loads(payload))
            elif kind == wire.METRICS:
                self._metrics = orjson.loads(payload)
            elif kind == wire.FIRED:
                face, tenant, sub_id = orjson.loads(payload)
                if self.on_fired_once is not None:
                    self._spawn(self.on_fired_once(face, tenant, sub_id))
            else:
                log.warning("the notification dispatcher sent an unknown frame %r", kind)

    async def _delete_done(self, writer: asyncio.StreamWriter, number: int,
                           ids: list[str]) -> None:
        try:
            await self.store.outbox_done(ids)
            deleted = True
        except Exception:
            log.warning("could not delete %d finished outbox rows", len(ids), exc_info=True)
            deleted = False                             # the dispatcher keeps them and retries
        # to the dispatcher that asked: a restarted one numbers its requests from 1 again
        wire.write(writer, wire.json_frame(wire.DONE_ACK, [number, deleted]))

    def _apply_counters(self, entries: list[list[Any]]) -> None:
        for tenant, sub_id, doc in entries:
            if self.registry.get(tenant, sub_id) is None:   # deleted meanwhile
                continue
            apply_document(self.registry.counters(tenant, sub_id), doc)
            self.counter_store.dirty.add((tenant, sub_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- metrics -------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """The dispatcher's last reported metrics and the link's own."""
        process = self._process
        running = process is not None and process.returncode is None and self._writer is not None
        return {**self._metrics,
                "dispatcher": {"mode": "process", "running": running,
                               "pid": process.pid if running and process else None,
                               "restarts": self.restarts, "rowsSent": self.rows_sent,
                               "rowsLeftToPoller": self.rows_left_to_poller}}


def process_mode_problem(settings: Any) -> str | None:
    """Why ``CITYOS_NOTIFIER`` cannot be used as set (None: it can)."""
    mode = settings.notifier
    if mode not in ("inline", "process"):
        return f"CITYOS_NOTIFIER must be inline or process, got {mode!r}"
    if mode == "process" and engine_of(settings.database_url) == "sqlite" and \
            not sqlite_path(settings.database_url):
        return ("CITYOS_NOTIFIER=process needs a database two processes can open: a SQLite "
                "file or PostgreSQL, not sqlite:// (in memory)")
    return None

