"""``python -m bench.sweep``: how long the hourly fan-out set sweep holds the store.

The sweep (``cityos/data/ngsild/fanout_sweep.py``) deletes, in one statement, the fan-out sets
that no outbox row names.  On SQLite that statement runs on the single writer, so every write
waits for it.  This stores ``--sets`` distinct sets (one per entity written, each firing ten
subscriptions), finishes the outbox rows of half of them, as if they were delivered, and times
the sweep that then deletes that half while the other half's rows (a receiver that is down)
keep theirs.

    python -m bench.sweep --engine both --sets 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.servers import postgres_database, sqlite_database
from cityos.core.settings import Settings
from cityos.data.ngsild.events import BrokerEvents
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.base import FANOUT, Change, OutboxRow, WriteSet

BATCH = 200


class OneSetPerEntity:
    """Fires ten subscriptions whose ids depend on the entity: every change its own set."""

    def match(self, tenant: str, change: Change, kinds: dict[str, str]) -> Any:
        n = change.entity_id.rsplit(":", 1)[1]
        return tuple((f"urn:ngsi-ld:Subscription:{n}-{i}", "attributeUpdated") for i in range(10))


def _entity(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Sensor:{n}", "type": ["https://example.org/Sensor"],
            "createdAt": "2026-11-27T00:00:00.000000Z", "modifiedAt": "2026-11-27T00:00:00.000000Z",
            "attrs": {"https://example.org/v": [{"type": "Property", "value": n}]}}


async def measure(url: str, sets: int) -> dict[str, float]:
    store: Any = open_entity_store(Settings.load(database_url=url))
    await store.open()
    rows: list[OutboxRow] = []
    store.observer = BrokerEvents(history=False, matcher=OneSetPerEntity(), deliver=rows.extend)
    try:
        for start in range(0, sets, BATCH):
            docs = [_entity(n) for n in range(start, min(start + BATCH, sets))]
            await store.write("", [d["id"] for d in docs],
                              lambda current, docs=docs: WriteSet(upserts=docs))
        await store.outbox_done([r.id for r in rows[::2]])      # half delivered
        _, mark = await store.sweep_fanout_sets(None)
        began = time.perf_counter()
        deleted, _ = await store.sweep_fanout_sets(mark)
        took = time.perf_counter() - began
        left = len(await store.list_documents(FANOUT))
    finally:
        await store.close()
    return {"sets": sets, "deleted": deleted, "kept": left, "sweep_ms": round(took * 1000, 1),
            "outbox_rows_left": len(rows) - len(rows[::2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sets", type=int, default=20_000)
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    for engine in engines:
        database = sqlite_database() if engine == "sqlite" else postgres_database()
        with database as (url, _workdir):
            result = asyncio.run(measure(url, args.sets))
        print(engine, result)


if __name__ == "__main__":
    main()
