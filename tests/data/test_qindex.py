"""The attribute value index may only narrow ``q`` queries, never change their answer.

Random entities with numbers, booleans, strings (Japanese included), lists, relationships,
language maps and objects are stored, then some are changed or deleted; random ``q`` expressions
are answered through the store (which uses the index when it is selective) and by brute force
with the exact evaluator alone.  The two answers must be identical, on both engines, whether the
index drives the scan or is found not selective (``SELECTIVE`` is lowered in some examples so
that both paths, and their mix inside ``;`` and ``|``, run on a small population).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.core.settings import Settings
from cityos.data.ngsild.qlang import expand_q, parse_q, q_matches
from cityos.data.ngsild.store import open_entity_store, postgres_sql, sqlite
from cityos.data.ngsild.store.base import EntityStore, QueryPlan, TypeExpr, WriteSet
from cityos.data.ngsild.store.qindex import index_rows, pushdown
from cityos.data.ngsild.terms import core_only

TM = core_only()
T = TM.expand("Thing")
WORDS = ["free", "occupied", "神戸", "urn:ngsi-ld:Site:1", "2026-01-01T00:00:00Z"]
scalar = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(WORDS),
                   st.floats(-3, 3, allow_nan=False).map(lambda f: round(f, 1)))
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.just({"nested": 1}))
instance = st.one_of(
    value.map(lambda v: {"type": "Property", "value": v}),
    st.sampled_from([*WORDS[3:4], "urn:ngsi-ld:Site:2"]).map(
        lambda o: {"type": "Relationship", "object": o}),
    st.sampled_from(WORDS).map(lambda w: {"type": "LanguageProperty", "languageMap": {"ja": w}}),
    # values the index cannot judge (kind "x") that q still compares: they must always pass
    st.sampled_from(WORDS).map(lambda w: {"type": "VocabProperty", "vocab": w}),
    st.lists(scalar, max_size=2).map(lambda v: {"type": "ListProperty", "valueList": v}),
    scalar.map(lambda v: {"type": "JsonProperty", "json": v}),
    scalar.map(lambda v: {"type": "Property", "value": {"@type": "Number", "@value": v}}),
)
attrs = st.dictionaries(st.sampled_from(["a", "b", "c"]), instance, max_size=3)
atoms = st.one_of(
    st.builds(lambda a, op, n: f"{a}{op}{n}", st.sampled_from("abc"),
              st.sampled_from(["==", ">", "<", ">=", "<=", "!="]), st.integers(-3, 3)),
    st.builds(lambda a, w: f'{a}=="{w}"', st.sampled_from("abc"), st.sampled_from(WORDS)),
    st.builds(lambda a, b: f"{a}=={b}", st.sampled_from("abc"), st.sampled_from(["true", "false"])),
    st.builds(lambda a: f"{a}==-1..1", st.sampled_from("abc")),
    st.builds(lambda a: f'{a}=="free","神戸"', st.sampled_from("abc")),
    st.sampled_from(["a", "b", "!c", "c==urn:ngsi-ld:Site:1"]),
)
queries = st.recursive(atoms, lambda inner: st.builds(
    lambda x, op, y: f"({x}{op}{y})", inner, st.sampled_from([";", "|"]), inner), max_leaves=4)
# after the first write: (entity number, new attributes, or None to delete it)
changes = st.lists(st.tuples(st.integers(0, 24), st.one_of(attrs, st.none())), max_size=6)


def _entity(n: int, attributes: dict[str, Any]) -> dict[str, Any]:
    now = "2026-11-25T00:00:00.000000Z"
    return {"id": f"urn:ngsi-ld:Thing:{n}", "type": [T], "createdAt": now, "modifiedAt": now,
            "attrs": _attrs(attributes)}


def _attrs(attributes: dict[str, Any]) -> dict[str, Any]:
    now = "2026-11-25T00:00:00.000000Z"
    return {TM.expand(k): [{**v, "createdAt": now, "modifiedAt": now}]
            for k, v in attributes.items()}


@contextmanager
def _selective(limit: int) -> Iterator[None]:
    """Both engines' threshold under which the index drives the scan, for a while."""
    saved = sqlite.SELECTIVE, postgres_sql.SELECTIVE
    sqlite.SELECTIVE = postgres_sql.SELECTIVE = limit
    try:
        yield
    finally:
        sqlite.SELECTIVE, postgres_sql.SELECTIVE = saved


def _change(edits: dict[str, dict[str, Any] | None]) -> Any:
    """A write function changing attributes in place (as the API does) or deleting entities."""
    def fn(current: dict[str, Any]) -> WriteSet:
        upserts, deletes = [], []
        for entity_id, new in edits.items():
            entity = current[entity_id]
            if entity is None:
                continue
            if new is None:
                deletes.append(entity_id)
            else:
                entity["attrs"] = new
                upserts.append(entity)
        return WriteSet(upserts=upserts, deletes=deletes)
    return fn


async def _check(url: str, entities: list[dict[str, Any]],
                 edits: dict[str, dict[str, Any] | None], q_text: str) -> None:
    store = open_entity_store(Settings.load(database_url=url))
    await store.open()
    tenant = "" if url.startswith("sqlite") else f"qindex-{uuid.uuid4().hex[:12]}"  # fresh
    try:
        await store.write(tenant, [e["id"] for e in entities], lambda _: WriteSet(upserts=entities))
        if edits:
            await store.write(tenant, list(edits), _change(edits))
        final = {e["id"]: e for e in entities}
        for entity_id, new in edits.items():
            if new is None:
                final.pop(entity_id, None)
            elif entity_id in final:
                final[entity_id] = {**final[entity_id], "attrs": new}
        q = expand_q(parse_q(q_text), TM.expand)
        plan = QueryPlan(tenant=tenant, types=TypeExpr((frozenset({T}),)), q=q, limit=1000,
                         count=True)
        got, total = await store.query(plan)
        expected = [i for i, e in final.items() if q_matches(q, e)]
        assert [e["id"] for e in got] == expected, (q_text, pushdown(q))
        assert total == len(expected)
        first, _ = await store.query(QueryPlan(tenant=tenant, types=plan.types, q=q, limit=2))
        assert [e["id"] for e in first] == expected[:2], (q_text, pushdown(q))
    finally:
        await store.close()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(population=st.lists(attrs, min_size=1, max_size=25), edits=changes, q_text=queries,
       selective=st.sampled_from([5000, 5000, 2]))
def test_index_never_changes_the_answer(database_url: str, population: list[dict[str, Any]],
                                        edits: list[tuple[int, dict[str, Any] | None]],
                                        q_text: str, selective: int) -> None:
    entities = [_entity(n, a) for n, a in enumerate(population)]
    changed = {f"urn:ngsi-ld:Thing:{n}": (None if a is None else _attrs(a)) for n, a in edits}
    with _selective(selective):
        asyncio.run(_check(database_url, entities, changed, q_text))


def test_values_the_index_cannot_judge_always_pass(database_url: str) -> None:
    """Kind "x" rows (a ListProperty, a JSON value, a vocab term) pass every index condition."""
    entities = [_entity(0, {"a": {"type": "Property", "value": 2}}),
                _entity(1, {"a": {"type": "ListProperty", "valueList": [1, 5]}}),
                _entity(2, {"a": {"type": "JsonProperty", "json": 1}}),
                _entity(3, {"a": {"type": "VocabProperty", "vocab": "free"}}),
                _entity(4, {"a": {"type": "Property", "value": "free"}})]
    for q_text in ["a==1", "a>=1", "a==0..1", "a==1,9", 'a=="free"', "a==free", "(a==1|b==1)",
                   "(a==5;a==1)"]:
        asyncio.run(_check(database_url, entities, {}, q_text))


# -- a large population ----------------------------------------------------------------------------

N = 20_000
SERIAL = TM.expand("serial")
LEVEL = TM.expand("level")


def _sensor(n: int) -> dict[str, Any]:
    return _entity(n, {"serial": {"type": "Property", "value": f"S-{n:05d}"},
                       "level": {"type": "Property", "value": n % 1000},
                       "status": {"type": "Property", "value": "ok"}})


@pytest.fixture
async def city(database_url: str) -> AsyncIterator[tuple[EntityStore, str]]:
    """A store holding N sensors, and their tenant (a fresh one on PostgreSQL)."""
    store = open_entity_store(Settings.load(database_url=database_url))
    await store.open()
    tenant = "" if store.engine == "sqlite" else f"city-{uuid.uuid4().hex[:12]}"
    try:
        for start in range(0, N, 2000):
            batch = [_sensor(n) for n in range(start, start + 2000)]
            await store.write(tenant, [e["id"] for e in batch],
                              lambda _, batch=batch: WriteSet(upserts=batch))
        yield store, tenant
    finally:
        await store.close()


def _plan(tenant: str, q_text: str, **kw: Any) -> QueryPlan:
    return QueryPlan(tenant=tenant, types=TypeExpr((frozenset({T}),)),
                     q=expand_q(parse_q(q_text), TM.expand), **kw)


@contextmanager
def _probes(engine: str) -> Iterator[list[Any]]:
    """What each query's index probe returned: candidate seqs, or None (not selective)."""
    seen: list[Any] = []
    if engine == "sqlite":
        original = sqlite.SQLiteEntityStore._selective_seqs

        def spy(self: Any, conn: Any, plan: QueryPlan) -> Any:
            found = original(self, conn, plan)
            seen.append(found)
            return found

        sqlite.SQLiteEntityStore._selective_seqs = spy  # type: ignore[method-assign]
        try:
            yield seen
        finally:
            sqlite.SQLiteEntityStore._selective_seqs = original  # type: ignore[method-assign]
        return
    from cityos.data.ngsild.store import postgres

    probe = postgres._selective_seqs

    async def pg_spy(conn: Any, plan: QueryPlan, *args: Any) -> Any:
        found = await probe(conn, plan, *args)
        seen.append(found)
        return found

    postgres._selective_seqs = pg_spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        postgres._selective_seqs = probe


async def test_selective_q_on_a_large_type(city: tuple[EntityStore, str]) -> None:
    store, tenant = city
    with _probes(store.engine) as probes:
        page, total = await store.query(_plan(tenant, 'serial=="S-12345"', count=True))
        assert [e["id"] for e in page] == ["urn:ngsi-ld:Thing:12345"] and total == 1
        page, total = await store.query(_plan(tenant, "level==7;serial==\"S-03007\"", count=True))
        assert [e["id"] for e in page] == ["urn:ngsi-ld:Thing:3007"] and total == 1
        page, total = await store.query(_plan(tenant, "level>=998", limit=3, count=True))
        assert [e["id"] for e in page] == [f"urn:ngsi-ld:Thing:{n}" for n in (998, 999, 1998)]
        assert total == 40
        page, _ = await store.query(_plan(tenant, 'level==5|serial=="S-19999"', limit=100))
        assert [e["id"] for e in page] == [f"urn:ngsi-ld:Thing:{n}" for n in range(5, N, 1000)] \
            + ["urn:ngsi-ld:Thing:19999"]
    assert all(p is not None and len(p) <= 41 for p in probes), probes   # the index drove them

    # not selective: every sensor is "ok", so the type scan runs (and stops early without count)
    with _probes(store.engine) as probes:
        page, total = await store.query(_plan(tenant, 'status=="ok"', limit=2, count=True))
        assert [e["id"] for e in page] == ["urn:ngsi-ld:Thing:0", "urn:ngsi-ld:Thing:1"]
        assert total == N
        # one selective part is enough to narrow an AND
        page, total = await store.query(_plan(tenant, 'status=="ok";serial=="S-00042"', count=True))
        assert [e["id"] for e in page] == ["urn:ngsi-ld:Thing:42"] and total == 1
    assert probes[0] is None and probes[-1] is not None and len(probes[-1]) == 1

    # an updated value is found under its new value only
    target = "urn:ngsi-ld:Thing:12345"

    def rename(current: dict[str, Any]) -> WriteSet:
        entity = current[target]
        entity["attrs"][SERIAL][0]["value"] = "S-NEW"
        entity["attrs"][LEVEL][0]["value"] = 5000
        return WriteSet(upserts=[entity])

    await store.write(tenant, [target], rename)
    assert (await store.query(_plan(tenant, 'serial=="S-12345"', count=True)))[1] == 0
    page, total = await store.query(_plan(tenant, 'serial=="S-NEW"', count=True))
    assert [e["id"] for e in page] == [target] and total == 1
    page, total = await store.query(_plan(tenant, "level>999", count=True))
    assert [e["id"] for e in page] == [target] and total == 1
    assert (await store.query(_plan(tenant, "level==345", count=True)))[1] == N // 1000 - 1

    # deleted entities leave the index (purge by q uses it too)
    assert await store.delete_matching(_plan(tenant, 'serial=="S-NEW"')) == 1
    assert (await store.query(_plan(tenant, "level>999", count=True)))[1] == 0


# -- PostgreSQL only ----------------------------------------------------------------------------

@pytest.fixture
def pg_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return database_url


async def test_pg_index_is_built_for_an_older_database(pg_only: str) -> None:
    """A database from before the attribute value index gets it filled when the store opens."""
    import asyncpg

    schema = f"cityos_qi_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_only)
    await admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{pg_only}?search_path={schema}"     # alone: public holds the other tests' tables
    try:
        store = open_entity_store(Settings.load(database_url=url))
        await store.open()
        entities = [_sensor(n) for n in range(30)]
        await store.write("t", [e["id"] for e in entities], lambda _: WriteSet(upserts=entities))
        await store.close()
        await admin.execute(f"DROP TABLE {schema}.attr_index")     # as before the index existed
        store = open_entity_store(Settings.load(database_url=url))
        await store.open()
        try:
            page, total = await store.query(_plan("t", 'serial=="S-00017"', count=True))
            assert [e["id"] for e in page] == ["urn:ngsi-ld:Thing:17"] and total == 1
        finally:
            await store.close()
        assert await admin.fetchval(f"SELECT count(*) FROM {schema}.attr_index") == 30 * 3
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def test_pg_probe_combines_parts() -> None:
    """One statement reads every condition apart; a part that is not selective still lets an
    AND narrow, and reads known not to be selective are left out."""
    push = pushdown(expand_q(parse_q("(a==1;b==2)|c"), TM.expand))
    assert push is not None
    probe = postgres_sql.selective_probe(push, "t")
    assert [key[2] for key in probe.asked] == [
        "kind IN ('n', 'b') AND num = ?", "kind = 'x'", "kind IN ('n', 'b') AND num = ?",
        "kind = 'x'", "1 = 1"]                     # a, its x rows, b, its x rows, c (all rows)
    assert probe.sql.count("array_agg(") == 5
    big = None                                                     # more than SELECTIVE rows
    assert probe.seqs([[1, 2], [3], big, [], [9]]) == {1, 2, 3, 9}
    assert probe.seqs([big, [], big, [], [9]]) is None             # the AND cannot narrow
    assert probe.seqs([[1], [], [1], [], big]) is None             # one OR branch cannot
    lean = postgres_sql.selective_probe(push, "t", {probe.asked[2]})
    assert lean.asked == [probe.asked[i] for i in (0, 1, 4)]
    assert lean.seqs([[1, 2], [3], [9]]) == {1, 2, 3, 9}
    # an OR branch known not to be selective: nothing is worth reading
    assert postgres_sql.selective_probe(push, "t", {probe.asked[4]}).asked == []


def test_rows_of_each_kind() -> None:
    entity = _entity(1, {"a": {"type": "Property", "value": [1, "x", True, {"o": 1}]},
                         "b": {"type": "Relationship", "object": "urn:x:1"},
                         "c": {"type": "LanguageProperty", "languageMap": {"ja": "神戸", "en": "Kobe"}}})
    kinds = sorted(kind for _attr, kind, _num, _txt in index_rows(entity))
    assert kinds == ["b", "l", "l", "n", "r", "s", "x"]


def test_unpushable_constructs_are_left_to_the_exact_filter() -> None:
    for text in ["a!=1", "a~=fr.*", "a.observedAt>2026-01-01T00:00:00Z", "a[k]==1", "!a",
                 "a>2026-01-01T00:00:00Z", "(a==1|a~=x)"]:
        assert pushdown(expand_q(parse_q(text), TM.expand)) is None, text
    assert pushdown(expand_q(parse_q("a==1;a~=x"), TM.expand)) is not None
