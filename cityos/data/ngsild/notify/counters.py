"""Keeping delivery counters (timesSent, lastSuccess ...) across restarts.

Counters change with every notification, far too often to write each change; they are
informative (the at-least-once promise rests on the outbox, not on them), so the dispatcher marks
subscriptions whose counters changed and this module writes those every couple of seconds as
``subscription-counters`` documents (same tenant and id as the subscription), and reads them back
at start-up.  A crash loses at most the last interval of counting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from cityos.data.ngsild.subscriptions.model import Counters, Subscription

log = logging.getLogger(__name__)

KIND = "subscription-counters"
FLUSH_CHUNK = 500          # subscriptions whose counters go in one write
Key = tuple[str, str]                      # (tenant, subscription id)


class Registry(Protocol):
    """What the notifier needs from the subscription registry."""

    def get(self, tenant: str, sub_id: str) -> Subscription | None: ...
    def all(self) -> Any: ...
    def counters(self, tenant: str, sub_id: str) -> Counters: ...
    def status(self, sub: Subscription) -> str: ...


def to_document(sub_id: str, counters: Counters) -> dict[str, Any]:
    """The stored form of ``counters``."""
    return {"id": sub_id, "timesSent": counters.times_sent, "timesFailed": counters.times_failed,
            "lastNotification": counters.last_notification, "lastSuccess": counters.last_success,
            "lastFailure": counters.last_failure,
            "consecutiveFailures": counters.consecutive_failures,
            "lastSuccessCode": counters.last_success_code,
            "lastFailureReason": counters.last_failure_reason}


def apply_document(counters: Counters, doc: dict[str, Any]) -> None:
    """Load a stored document into ``counters`` (unknown or missing members are left alone)."""
    counters.times_sent = int(doc.get("timesSent") or 0)
    counters.times_failed = int(doc.get("timesFailed") or 0)
    counters.last_notification = doc.get("lastNotification")
    counters.last_success = doc.get("lastSuccess")
    counters.last_failure = doc.get("lastFailure")
    counters.consecutive_failures = int(doc.get("consecutiveFailures") or 0)
    code = doc.get("lastSuccessCode")
    counters.last_success_code = code if isinstance(code, int) else None
    reason = doc.get("lastFailureReason")
    counters.last_failure_reason = reason if isinstance(reason, str) else None


class CounterStore:
    """Writes changed counters in batches and loads them at start-up."""

    def __init__(self, store: Any, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.dirty: set[Key] = set()

    async def load(self) -> int:
        """Copy stored counters into the registry; returns how many subscriptions got some."""
        loaded = 0
        for doc in await self.store.list_documents(KIND):
            tenant, sub_id = doc.get("_tenant", ""), doc.get("id")
            if not isinstance(sub_id, str) or self.registry.get(tenant, sub_id) is None:
                continue
            apply_document(self.registry.counters(tenant, sub_id), doc)
            loaded += 1
        return loaded

    async def flush(self) -> None:
        """Write every changed counter; a failed write is tried again at the next flush.

        One write per ``FLUSH_CHUNK`` subscriptions: on PostgreSQL each write is a commit of its
        own, and 100 busy subscriptions flushed one by one every 2 s added 50 commits a second.
        """
        keys, self.dirty = self.dirty, set()
        # removed meanwhile: their documents are deleted there
        docs = [(tenant, sub_id, to_document(sub_id, self.registry.counters(tenant, sub_id)))
                for tenant, sub_id in sorted(keys) if self.registry.get(tenant, sub_id) is not None]
        for start in range(0, len(docs), FLUSH_CHUNK):
            try:
                await self.store.put_documents(KIND, docs[start:start + FLUSH_CHUNK])
            except Exception:
                log.warning("could not save notification counters", exc_info=True)
                self.dirty.update((tenant, sub_id) for tenant, sub_id, _ in docs[start:])
                return

    async def forget(self, tenant: str, sub_id: str) -> None:
        """Delete the counters of a removed subscription."""
        self.dirty.discard((tenant, sub_id))
        try:
            await self.store.delete_document(KIND, tenant, sub_id)
        except Exception:
            log.warning("could not delete notification counters of %s", sub_id, exc_info=True)


async def flush_every(counters: Any, interval: float) -> None:
    """Write changed counters (``counters.flush()``) every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        await counters.flush()
