"""External-system actions: register, list, show, delete, and pull one now.

Routes, the CLI and the scheduler all call these.  A pull writes through the importers'
:class:`BrokerSink` (the broker's batch-upsert action) into the system's tenant, then records the
outcome on the system's document.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from cityos.assets.systems.fetch import Fetcher, PullError
from cityos.assets.systems.model import DOCUMENT_KIND, public, validate
from cityos.assets.systems.pullers import PULLERS
from cityos.core.problems import AlreadyExists, ResourceNotFound
from cityos.data.ngsild import Broker
from cityos.data.ngsild.notify import EndpointPolicy
from cityos.ingest.importers import BrokerSink, run_import

log = logging.getLogger("cityos.systems")


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def policy_of(broker: Broker) -> EndpointPolicy:
    """The SSRF policy of this broker's settings (shared with notifications)."""
    return EndpointPolicy.from_settings(broker.settings)


async def register_system(broker: Broker, tenant: str, body: Any) -> dict[str, Any]:
    """Store a new system (``AlreadyExists`` when the id is taken); due for a pull at once."""
    system = validate(body, policy_of(broker))
    now = time.time()
    system.update({"createdAt": iso(now), "status": "never", "lastRunAt": None,
                   "lastError": None, "counts": None, "runs": 0, "nextRunAt": iso(now),
                   "_next": now})
    created = await broker.store.put_document(DOCUMENT_KIND, tenant, system["id"], system,
                                              create=True)
    if not created:
        raise AlreadyExists(f"an external system with id {system['id']!r} exists already")
    return public(system)


async def list_systems(broker: Broker, tenant: str) -> list[dict[str, Any]]:
    """Every system of ``tenant``, oldest first."""
    return [public(d) for d in await broker.store.list_documents(DOCUMENT_KIND, tenant)]


async def get_system(broker: Broker, tenant: str, system_id: str) -> dict[str, Any]:
    """One stored system document; ``ResourceNotFound`` when there is none."""
    document = await broker.store.get_document(DOCUMENT_KIND, tenant, system_id)
    if document is None:
        raise ResourceNotFound(f"no external system {system_id!r}")
    return document


async def delete_system(broker: Broker, tenant: str, system_id: str) -> None:
    """Forget a system (the entities it wrote stay)."""
    if not await broker.store.delete_document(DOCUMENT_KIND, tenant, system_id):
        raise ResourceNotFound(f"no external system {system_id!r}")


async def run_system(broker: Broker, tenant: str, system_id: str,
                     fetcher: Fetcher | None = None) -> dict[str, Any]:
    """Pull one system now and record the outcome; the updated system is returned.

    A failed pull is not an error of this call: it is recorded as ``status: error`` with the
    reason in ``lastError`` (and retried at the next interval).
    """
    system = await get_system(broker, tenant, system_id)
    own = fetcher is None
    fetcher = fetcher or Fetcher(policy_of(broker))
    started = time.time()
    try:
        prepared = await PULLERS[system["kind"]](system, fetcher)
        report = await run_import(prepared, BrokerSink(broker, tenant),
                                  broker.settings.max_batch_size)
        system["counts"] = {"pulled": report.rows, "imported": report.imported,
                            "created": report.created, "rejected": len(report.rejected)}
        system["status"] = "partial" if report.rejected else "ok"
        system["lastError"] = ("; ".join(f"item {r.row}: {r.reason}" for r in report.rejected[:5])
                               or None)
    except PullError as exc:
        system["status"], system["lastError"] = "error", str(exc)[:500]
        system["counts"] = {"pulled": 0, "imported": 0, "created": 0, "rejected": 0}
    except Exception as exc:  # a bug or a store outage must not kill the scheduler
        log.exception("pull of external system %s failed", system_id)
        system["status"], system["lastError"] = "error", f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if own:
            await fetcher.close()
    system["lastRunAt"] = iso(started)
    system["runs"] = int(system.get("runs") or 0) + 1
    system["_next"] = started + float(system["interval"])
    system["nextRunAt"] = iso(system["_next"])
    # the system may have been deleted meanwhile: do not bring it back
    if await broker.store.get_document(DOCUMENT_KIND, tenant, system_id) is not None:
        await broker.store.put_document(DOCUMENT_KIND, tenant, system_id, system)
    return public(system)
