"""The SQLite outbox scan: unclaimed rows only, oldest first, across scan pages and limits."""

from __future__ import annotations

import sqlite3

from cityos.data.ngsild.store.base import Effects, OutboxRow
from cityos.data.ngsild.store.history_schema import SQLITE_SCHEMA
from cityos.data.ngsild.store.sqlite_effects import (
    append_effects,
    delete_outbox_rows,
    list_documents,
    pending_rows,
    put_document,
)


def test_pending_rows_skip_claimed_ones_across_pages() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SQLITE_SCHEMA)
    rows = [OutboxRow(f"row-{n}", "kobe", "notify", {"n": n, "名前": "三宮"}, n) for n in range(2500)]
    append_effects(conn, "kobe", Effects(outbox=rows))
    claimed = {f"row-{n}" for n in range(0, 2500, 2)}        # every other row is being worked on

    first = pending_rows(conn, claimed, 1000)
    assert [r.id for r in first] == [f"row-{n}" for n in range(1, 2000, 2)]
    assert first[0].body == {"n": 1, "名前": "三宮"} and first[0].tenant == "kobe"

    everything = pending_rows(conn, claimed, 10_000)
    assert len(everything) == 1250
    assert all(int(r.id.split("-")[1]) % 2 == 1 for r in everything)
    assert pending_rows(conn, {r.id for r in rows}, 1000) == []


def test_documents_take_their_next_seq_from_an_index() -> None:
    # fan-out sets are written inside update transactions and counters every few seconds; each
    # insert reads max(seq): a whole-table read per document before documents_seq existed
    conn = sqlite3.connect(":memory:")
    conn.executescript(SQLITE_SCHEMA)
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT coalesce(max(seq), 0) + 1 FROM documents"))
    assert "USING COVERING INDEX documents_seq" in plan
    for n in range(3):
        put_document(conn, "fanout", "kobe", f"set-{n}", {"n": n}, create=True)
    put_document(conn, "fanout", "kobe", "set-1", {"n": 10}, create=False)     # kept its seq
    assert [d["n"] for d in list_documents(conn, "fanout", "kobe")] == [0, 10, 2]


def test_finished_rows_are_deleted_in_chunks_and_no_others() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SQLITE_SCHEMA)
    rows = [OutboxRow(f"row-{n}", "kobe", "notify", {"n": n}, n) for n in range(700)]
    append_effects(conn, "kobe", Effects(outbox=rows))
    finished = [f"row-{n}" for n in range(0, 600, 2)]      # 300 ids: chunks of 256, 32, 8, 4
    delete_outbox_rows(conn, finished)
    left = {r.id for r in pending_rows(conn, set(), 10_000)}
    assert left == {f"row-{n}" for n in range(700)} - set(finished)
    delete_outbox_rows(conn, [])
    assert len(pending_rows(conn, set(), 10_000)) == 400
