"""What a write causes: temporal history rows and notification outbox rows (ADR 0006).

:class:`BrokerEvents` is the store's :class:`ChangeObserver`.  Inside the write transaction it
diffs each changed entity once, turns the diff into history rows (when history is on) and asks
the subscription registry which subscriptions fire; the matches become one outbox row per
changed entity.  Both are committed with the write, so an acknowledged write never loses its
history or its notifications.  After the commit the outbox rows go straight to the notifier; the
outbox table is only read again after a crash.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cityos.core.ids import unique_id
from cityos.data.ngsild.history import attribute_changes, history_rows
from cityos.data.ngsild.store.base import FANOUT, Change, Effects, OutboxRow, TemporalEntityRow
from cityos.data.ngsild.store.history_schema import TemporalEntityIfMissing
from cityos.data.ngsild.times import from_micros, now_micros

NOTIFY = "notify"
RECORDED_LIMIT = 200_000     # entities whose temporal record this process remembers as written
FANOUT_MIN = 8               # subscriptions a change fires from which they are stored as a set
FANOUT_LIMIT = 10_000        # fan-out sets this process remembers (keys and written ones)
# Seconds a fan-out set counts as written in this process.  Past that its next use writes it
# again, which stamps it with a fresh seq: fanout_sweep.py deletes only sets whose seq is older
# than its mark of an hour ago, so a set this process still counts as written is never deleted.
FANOUT_REFRESH = 600.0
# the refresh's clock keeps counting while the host is suspended (a node waking up must not
# trust sets the other nodes may have swept meanwhile); monotonic where there is no such clock
_boottime = getattr(time, "CLOCK_BOOTTIME", None)


def _clock() -> float:
    return time.clock_gettime(_boottime) if _boottime is not None else time.monotonic()


def fanout_key(fired: tuple[tuple[str, str], ...]) -> str:
    """The id of a fan-out set: a digest of its (subscription id, trigger) pairs."""
    text = "\n".join(f"{sub_id} {trigger}" for sub_id, trigger in fired)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_ALL: weakref.WeakSet[BrokerEvents] = weakref.WeakSet()


def forget_temporal_record(tenant: str, entity_id: str) -> None:
    """The entity's temporal record was deleted (the temporal API's DELETE): its next update
    inserts it again.  Every BrokerEvents of the process forgets it (the store's observer may be
    wrapped, e.g. by the IoT runtime, so the temporal API cannot reach its own one)."""
    for events in list(_ALL):
        events._recorded.discard((tenant, entity_id))


class Matcher(Protocol):
    """The subscription registry's hot path."""

    def match(self, tenant: str, change: Change,
              kinds: dict[str, str]) -> Sequence[tuple[str, str]]:
        """(subscription id, trigger) for every subscription this change fires."""


class BrokerEvents:
    """Turns entity changes into history and outbox rows, then hands the rows to a notifier."""

    def __init__(self, *, history: bool, matcher: Matcher | None = None,
                 deliver: Callable[[list[OutboxRow]], None] | None = None,
                 wants_previous: Callable[[str, list[str]], bool] | None = None) -> None:
        self.history = history
        self.matcher = matcher
        self.deliver = deliver
        # whether any of these subscriptions renders showChanges (then the state before is kept)
        self.wants_previous = wants_previous or (lambda tenant, subs: False)
        # (tenant, entity id) whose temporal entity record is known to exist: a plain attribute
        # update of these sends no record at all (even an insert-if-missing statement cost a
        # PostgreSQL write ~55 µs of database CPU, as much as the upsert it replaced)
        self._recorded: set[tuple[str, str]] = set()
        # A change that fires many subscriptions stores their list once, as a document named by
        # its digest, and its outbox row only that name: 100 subscription ids made every row
        # ~9 KB, which cost the SQLite writer ~50 us of CPU and ~85 us of wall time per row
        # against ~15 / ~20 us for a small one.  Keys are cached per fired tuple (hashing the
        # tuple is cheaper than digesting its text); written ones only once committed.
        self._fanout_keys: dict[tuple[tuple[str, str], ...], str] = {}
        self._fanouts_written: set[tuple[str, str]] = set()
        self._fanouts_since = _clock()              # when _fanouts_written was last emptied
        _ALL.add(self)

    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        effects = Effects()
        now = now_micros()
        at: str | None = None
        # one record per entity and write: a write may carry several states of one entity
        # (ADR 0006), and one statement cannot upsert the same row twice
        records: dict[str, TemporalEntityRow] = {}
        for change in changes:
            kinds = attribute_changes(change.before, change.after)
            if self.history:
                # a known record gives no insert-if-missing record (history_rows skips it)
                rows, record = history_rows(change, kinds, now,
                                            recorded=(tenant, change.entity_id) in self._recorded)
                effects.history.extend(rows)
                if record is not None and not (isinstance(record, TemporalEntityIfMissing)
                                               and change.entity_id in records):
                    records[change.entity_id] = record
            if self.matcher is None:
                continue
            fired = self.matcher.match(tenant, change, kinds)
            if not fired:
                continue
            at = at or from_micros(now)
            entity: dict[str, Any] | None = change.after
            if entity is None:       # a deletion: notify the last state, marked deleted
                entity = dict(change.before or {"id": change.entity_id, "type": [], "attrs": {}})
                entity["deletedAt"] = at
            subs = [sub_id for sub_id, _trigger in fired]
            previous = change.before if self.wants_previous(tenant, subs) else None
            pairs = tuple(fired)                  # a tuple: trusted by Notifier.submit
            row = OutboxRow(id=unique_id(), tenant=tenant, kind=NOTIFY, created_at=now,
                            body={"subs": pairs, "entity": entity, "previous": previous,
                                  "at": at})
            if len(pairs) >= FANOUT_MIN:
                row.stored = self._stored_as_set(tenant, pairs, row.body, effects)
            effects.outbox.append(row)
        effects.temporal_entities = list(records.values())
        return effects

    def _stored_as_set(self, tenant: str, pairs: tuple[tuple[str, str], ...],
                       body: dict[str, Any], effects: Effects) -> dict[str, Any]:
        """The row body as stored: the fan-out set's key instead of its pairs."""
        key = self._fanout_keys.get(pairs)
        if key is None:
            if len(self._fanout_keys) > FANOUT_LIMIT:
                self._fanout_keys.clear()
            key = self._fanout_keys[pairs] = fanout_key(pairs)
        now = _clock()
        if now - self._fanouts_since > FANOUT_REFRESH:
            self._fanouts_written.clear()
            self._fanouts_since = now
        if (tenant, key) not in self._fanouts_written and not any(
                doc_id == key for kind, doc_id, _ in effects.documents if kind == FANOUT):
            effects.documents.append((FANOUT, key, {"key": key, "subs": pairs}))
        stored = dict(body)
        del stored["subs"]
        stored["fanout"] = key
        return stored

    def committed(self, tenant: str, effects: Effects) -> None:
        if effects.documents:
            if len(self._fanouts_written) > FANOUT_LIMIT:     # forget: written again once
                self._fanouts_written.clear()
            self._fanouts_written.update(
                (tenant, doc_id) for kind, doc_id, _ in effects.documents if kind == FANOUT)
        if effects.temporal_entities:
            if len(self._recorded) > RECORDED_LIMIT:     # bounded memory: forget, re-check once
                self._recorded.clear()
            self._recorded.update((tenant, e.entity_id) for e in effects.temporal_entities)
        if effects.outbox and self.deliver is not None:
            self.deliver(effects.outbox)
