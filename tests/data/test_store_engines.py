"""The EntityStore contract, exercised directly (not over HTTP) on both engines.

Every test gets an empty store of the engine under test (``database_url`` is parametrised over
SQLite in memory and a throw-away PostgreSQL database, see ``tests/conftest.py``); a few tests at
the end are about PostgreSQL alone (its regex pushdown, outages and recovery).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cityos.core.problems import AlreadyExists, BadRequestData, ResourceNotFound, ServiceUnavailable
from cityos.core.settings import Settings
from cityos.data.ngsild.geoquery import GeoQuery, parse_geoquery
from cityos.data.ngsild.model import DEFAULT_VOCAB, LOCATION
from cityos.data.ngsild.qlang import expand_q, parse_q
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr, WriteSet
from tests.conftest import _empty_postgres

NOW = "2026-11-25T09:00:00.000000Z"
T = "https://example.org/types/"
A, B, C = T + "A", T + "B", T + "C"
TEMP = DEFAULT_VOCAB + "temperature"
NAME = DEFAULT_VOCAB + "name"


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """An opened, empty store of the engine under test.

    SQLite runs on a file here: two in-memory stores opened one after the other in a process
    can end up sharing one database (its name comes from ``id(store)``, which Python reuses).
    """
    if database_url == "sqlite://":
        database_url = f"sqlite:///{tmp_path / 'store.db'}"
    s = open_entity_store(Settings.load(database_url=database_url))
    await s.open()
    if s.engine == "postgresql":
        await _empty_postgres(database_url)
    try:
        yield s
    finally:
        await s.close()


# -- helpers ------------------------------------------------------------------------------------

def prop(value: Any, **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": value, "createdAt": NOW, "modifiedAt": NOW, **extra}]


def geo(lon: float, lat: float) -> list[dict[str, Any]]:
    return [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]},
             "createdAt": NOW, "modifiedAt": NOW}]


def entity(entity_id: str, *types: str, scope: list[str] | None = None,
           **attrs: list[dict[str, Any]]) -> dict[str, Any]:
    e: dict[str, Any] = {"id": entity_id, "type": list(types or [A]), "createdAt": NOW,
                         "modifiedAt": NOW,
                         "attrs": {LOCATION if k == "location" else DEFAULT_VOCAB + k: v
                                   for k, v in attrs.items()}}
    if scope is not None:
        e["scope"] = scope
    return e


def urn(n: int | str) -> str:
    return f"urn:ngsi-ld:Thing:{n}"


async def create(store: Any, tenant: str, *entities: dict[str, Any]) -> None:
    """Create entities the way the create actions do: AlreadyExists when an id is taken."""
    def fn(current: dict[str, Any]) -> WriteSet:
        for e in entities:
            if current[e["id"]] is not None:
                raise AlreadyExists(f"entity {e['id']} already exists")
        return WriteSet(upserts=list(entities), result=[e["id"] for e in entities])

    await store.write(tenant, [e["id"] for e in entities], fn)


def plan(tenant: str = "t", **kw: Any) -> QueryPlan:
    return QueryPlan(tenant=tenant, **kw)


def types(*alternatives: frozenset[str] | str) -> TypeExpr:
    return TypeExpr(tuple(a if isinstance(a, frozenset) else frozenset({a}) for a in alternatives))


def ids_of(entities: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entities]


def geoquery(georel: str, geometry: str, coordinates: Any) -> GeoQuery:
    query = parse_geoquery(georel, geometry, coordinates, None)
    assert query is not None
    return dataclasses.replace(query, geoproperty=LOCATION)


# -- writes -------------------------------------------------------------------------------------

async def test_create_get_replace_delete(store: Any) -> None:
    e = entity(urn(1), A, temperature=prop(12.5, unitCode="CEL"), name=prop("一番"))
    await create(store, "t", e)
    assert await store.get("t", urn(1)) == e
    assert await store.get("t", urn(2)) is None

    def replace(current: dict[str, Any]) -> WriteSet:
        old = current[urn(1)]
        assert old == e
        new = {**old, "type": [B], "attrs": {NAME: prop("二番")}}
        return WriteSet(upserts=[new], result="replaced")

    assert await store.write("t", [urn(1)], replace) == "replaced"
    got = await store.get("t", urn(1))
    assert got["type"] == [B] and got["attrs"] == {NAME: prop("二番")}

    def delete(current: dict[str, Any]) -> WriteSet:
        if current[urn(1)] is None:
            raise ResourceNotFound("gone")
        return WriteSet(deletes=[urn(1)])

    await store.write("t", [urn(1)], delete)
    assert await store.get("t", urn(1)) is None
    with pytest.raises(ResourceNotFound):
        await store.write("t", [urn(1)], delete)
    assert (await store.query(plan(count=True)))[1] == 0


async def test_json_round_trip(store: Any) -> None:
    value: dict[str, Any] = {
        "int": 2**53 + 1, "neg": -7, "float": 0.1, "tiny": 1e-7, "big": 1.5e300, "t": True,
        "n": None, "s": "é\"\\\n\t☃🏙", "list": [1, [2, {"x": []}]], "empty": {}}
    e = entity(urn(1), json=[{"type": "JsonProperty", "json": value, "createdAt": NOW,
                              "modifiedAt": NOW}])
    await create(store, "t", e)
    got = await store.get("t", urn(1))
    assert got == e
    assert type(got["attrs"][DEFAULT_VOCAB + "json"][0]["json"]["float"]) is float


async def test_duplicate_create_is_already_exists(store: Any) -> None:
    await create(store, "t", entity(urn(1)))
    with pytest.raises(AlreadyExists):
        await create(store, "t", entity(urn(1), B))
    assert (await store.get("t", urn(1)))["type"] == [A]


async def test_failing_fn_writes_nothing(store: Any) -> None:
    await create(store, "t", entity(urn(0), temperature=prop(1)))
    calls = 0

    def fn(current: dict[str, Any]) -> WriteSet:
        nonlocal calls
        calls += 1
        if current.get(urn(0)):
            current[urn(0)]["attrs"][TEMP] = prop(99)     # mutating the state given is harmless
        raise BadRequestData("no")

    with pytest.raises(BadRequestData):
        await store.write("t", [urn(0), urn(1), urn(2)], fn)
    assert calls == 1
    assert (await store.get("t", urn(0)))["attrs"][TEMP] == prop(1)
    assert await store.get("t", urn(1)) is None
    assert not await store.tenant_exists("other")
    with pytest.raises(BadRequestData):
        await store.write("other", [urn(1)], fn)
    assert not await store.tenant_exists("other")


async def test_batch_write_of_100(store: Any) -> None:
    batch = [entity(urn(i), A if i % 2 else B, temperature=prop(i), location=geo(135 + i / 1000, 34))
             for i in range(100)]
    result = await store.write("t", [e["id"] for e in batch],
                               lambda current: WriteSet(upserts=batch, result=len(current)))
    assert result == 100
    page, total = await store.query(plan(limit=1000, count=True))
    assert total == 100 and ids_of(page) == ids_of(batch)       # insertion order
    # upsert them all again (updates), plus one delete, in one write
    again = [{**e, "attrs": {TEMP: prop(-1)}} for e in batch[1:]]
    await store.write("t", [e["id"] for e in batch],
                      lambda current: WriteSet(upserts=again, deletes=[urn(0)]))
    page, total = await store.query(plan(limit=1000, count=True))
    assert total == 99 and ids_of(page) == ids_of(batch[1:])   # updates keep their place
    assert all(e["attrs"] == {TEMP: prop(-1)} for e in page)
    # the geo rows went with the old versions
    box = geoquery("within", "Polygon", [[[134, 33], [136, 33], [136, 35], [134, 35], [134, 33]]])
    assert (await store.query(plan(geo=box, count=True)))[1] == 0


# -- queries ------------------------------------------------------------------------------------

async def _load_mixed(store: Any, n: int = 30) -> list[dict[str, Any]]:
    """n entities: even ones of type A, odd ones B, every third also C; temperature i."""
    out = []
    for i in range(n):
        t = [A] if i % 2 == 0 else [B]
        if i % 3 == 0:
            t.append(C)
        out.append(entity(urn(f"{i:03d}"), *t, temperature=prop(i)))
    for start in range(0, n, 7):       # several writes, so seq order != id order would show
        await create(store, "t", *out[start:start + 7])
    return out


@pytest.mark.parametrize("count", [False, True])
async def test_query_by_type_pages_in_insertion_order(store: Any, count: bool) -> None:
    everything = await _load_mixed(store)
    a = [e for e in everything if A in e["type"]]
    page, total = await store.query(plan(types=types(A), limit=4, offset=0, count=count))
    assert ids_of(page) == ids_of(a[:4]) and total == (len(a) if count else None)
    page, total = await store.query(plan(types=types(A), limit=4, offset=12, count=count))
    assert ids_of(page) == ids_of(a[12:16])
    page, total = await store.query(plan(types=types(A), limit=0, offset=0, count=True))
    assert page == [] and total == len(a)
    page, _ = await store.query(plan(types=types(A), limit=10, offset=100))
    assert page == []


async def test_query_multi_typed_and_or(store: Any) -> None:
    everything = await _load_mixed(store)

    def expect(pred: Any) -> list[str]:
        return [e["id"] for e in everything if pred(set(e["type"]))]

    for expr, pred in [
        (types(C), lambda t: C in t),
        (types(A, C), lambda t: A in t or C in t),                         # A,C
        (types(frozenset({A, C})), lambda t: {A, C} <= t),                 # A;C
        (types(frozenset({B, C}), A), lambda t: {B, C} <= t or A in t),
        (types(T + "none"), lambda t: False),
    ]:
        page, total = await store.query(plan(types=expr, limit=100, count=True))
        assert ids_of(page) == expect(pred) and total == len(page), expr


async def test_query_ids_pattern_attrs_q_scope(store: Any) -> None:
    everything = await _load_mixed(store)
    await create(store, "t", entity(urn("x-1"), C, name=prop("n"), scope=["/Japan/Kobe"]),
                 entity(urn("x-2"), C, scope=["/Japan/Osaka/Kita"]))
    wanted = [urn("005"), urn("002"), urn("nope"), urn("011")]
    page, total = await store.query(plan(ids=tuple(wanted), limit=10, count=True))
    assert ids_of(page) == [urn("002"), urn("005"), urn("011")] and total == 3
    page, total = await store.query(plan(ids=tuple(wanted), types=types(B), limit=10, count=True))
    assert ids_of(page) == [urn("005"), urn("011")] and total == 2

    for pattern, expected in [
        (r"Thing:01\d$", [urn(f"{i:03d}") for i in range(10, 20)]),
        (r"^urn:ngsi-ld:Thing:x-", [urn("x-1"), urn("x-2")]),
        (r"(?i)THING:X-2", [urn("x-2")]),                        # RE2 flag syntax
        (r"\bx-1\b", [urn("x-1")]),                              # \b differs in PostgreSQL
        # a POSIX class is a class in RE2 (patterns are RE2 since cityos/core/patterns.py)
        (r"[[:digit:]]", [urn(f"{i:03d}") for i in range(30)] + [urn("x-1"), urn("x-2")]),
    ]:
        page, total = await store.query(plan(id_pattern=pattern, limit=100, count=True))
        assert ids_of(page) == expected and total == len(expected), pattern
    page, total = await store.query(plan(id_pattern=r"Thing:0[0-2]", types=types(A), limit=3,
                                         offset=2, count=True))
    assert ids_of(page) == [urn("004"), urn("006"), urn("008")] and total == 15

    page, total = await store.query(plan(attrs=frozenset({NAME, DEFAULT_VOCAB + "x"}), limit=10,
                                         count=True))
    assert ids_of(page) == [urn("x-1")] and total == 1
    q = expand_q(parse_q("temperature>24"), lambda term: DEFAULT_VOCAB + term)
    page, total = await store.query(plan(q=q, types=types(A), limit=2, count=True))
    assert ids_of(page) == [urn("026"), urn("028")] and total == 2
    page, total = await store.query(plan(scope="/Japan/#", limit=10, count=True))
    assert ids_of(page) == [urn("x-1"), urn("x-2")] and total == 2
    page, total = await store.query(plan(scope="/Japan/+", limit=10, count=True))
    assert ids_of(page) == [urn("x-1")] and total == 1
    assert len(everything) == 30


async def test_query_geo(store: Any) -> None:
    # a 5 x 5 grid of points 0.01 degrees apart around Kobe, plus one entity without location
    grid = [entity(urn(f"g{i}{j}"), A, location=geo(135.1 + i * 0.01, 34.6 + j * 0.01))
            for i in range(5) for j in range(5)]
    await create(store, "t", *grid, entity(urn("nowhere"), A))
    await create(store, "t", entity(urn("other-attr"), A,
                                    place=[{"type": "GeoProperty", "createdAt": NOW,
                                            "modifiedAt": NOW,
                                            "value": {"type": "Point", "coordinates": [135.1, 34.6]}}]))
    within = geoquery("within", "Polygon", [[[135.105, 34.605], [135.125, 34.605],
                                             [135.125, 34.625], [135.105, 34.625],
                                             [135.105, 34.605]]])
    page, total = await store.query(plan(geo=within, limit=100, count=True))
    expected = [urn(f"g{i}{j}") for i in (1, 2) for j in (1, 2)]
    assert ids_of(page) == expected and total == 4
    page, total = await store.query(plan(geo=within, limit=1, offset=1, count=True))
    assert ids_of(page) == expected[1:2] and total == 4
    near = geoquery("near;maxDistance==1200", "Point", [135.1, 34.6])
    page, total = await store.query(plan(geo=near, limit=100, count=True))
    assert ids_of(page) == [urn("g00"), urn("g01"), urn("g10")] and total == 3
    far = geoquery("near;minDistance==5000", "Point", [135.1, 34.6])      # no index box
    page, total = await store.query(plan(geo=far, limit=100, count=True))
    assert ids_of(page) == [urn("g34"), urn("g44")] and total == 2
    disjoint = geoquery("disjoint", "Point", [135.1, 34.6])
    page, total = await store.query(plan(geo=disjoint, limit=100, count=True))
    assert total == 24 and urn("g00") not in ids_of(page)
    # moving an entity moves its index entry
    moved = {**grid[0], "attrs": {LOCATION: geo(135.115, 34.615)}}
    await store.write("t", [urn("g00")], lambda current: WriteSet(upserts=[moved]))
    page, total = await store.query(plan(geo=within, limit=100, count=True))
    assert ids_of(page) == [urn("g00"), *expected] and total == 5


async def test_delete_matching(store: Any) -> None:
    everything = await _load_mixed(store)
    assert await store.delete_matching(plan(types=types(C))) == 10
    assert await store.delete_matching(plan(types=types(C))) == 0
    assert await store.delete_matching(plan(id_pattern=r"Thing:00\d", types=types(A))) == 3
    q = expand_q(parse_q("temperature<20"), lambda term: DEFAULT_VOCAB + term)
    assert await store.delete_matching(plan(q=q)) == 10      # 1 5 7 10 11 13 14 16 17 19
    page, total = await store.query(plan(limit=100, count=True))
    left = [e["id"] for e in everything if C not in e["type"] and e["attrs"][TEMP][0]["value"] >= 20]
    assert ids_of(page) == left and total == len(left) == 7


# -- tenants, discovery, contexts ---------------------------------------------------------------

async def test_tenant_isolation(store: Any) -> None:
    assert await store.tenants() == [] and not await store.tenant_exists("t1")
    await create(store, "t1", entity(urn(1), A, name=prop("one")))
    await create(store, "t2", entity(urn(1), B, name=prop("two")))
    assert (await store.get("t1", urn(1)))["attrs"][NAME] == prop("one")
    assert (await store.get("t2", urn(1)))["attrs"][NAME] == prop("two")
    assert await store.tenant_exists("t1") and await store.tenant_exists("t2")
    assert sorted(await store.tenants()) == ["t1", "t2"]
    assert ids_of((await store.query(plan("t1", types=types(B), limit=10)))[0]) == []
    assert (await store.query(plan("t2", types=types(B), limit=10, count=True)))[1] == 1
    assert await store.delete_matching(plan("t1")) == 1
    assert await store.get("t2", urn(1)) is not None
    assert [i.type for i in await store.type_info("t2")] == [B]
    assert await store.type_info("t1") == []


async def test_type_info(store: Any) -> None:
    await create(store, "t",
                 entity(urn(1), A, C, temperature=prop(1), location=geo(135, 34)),
                 entity(urn(2), A, name=[{"type": "LanguageProperty", "languageMap": {"ja": "x"},
                                          "createdAt": NOW, "modifiedAt": NOW}]),
                 entity(urn(3), B, owner=[{"type": "Relationship", "object": urn(1),
                                           "createdAt": NOW, "modifiedAt": NOW}]))
    infos = {i.type: i for i in await store.type_info("t")}
    assert {t: i.count for t, i in infos.items()} == {A: 2, B: 1, C: 1}
    assert infos[A].attributes == {TEMP: {"Property"}, LOCATION: {"GeoProperty"},
                                   NAME: {"LanguageProperty"}}
    assert infos[B].attributes == {DEFAULT_VOCAB + "owner": {"Relationship"}}
    assert infos[C].attributes == {TEMP: {"Property"}, LOCATION: {"GeoProperty"}}


async def test_contexts_crud(store: Any) -> None:
    doc = {"@context": {"temperature": "https://example.org/temperature", "name": "schema:name"}}
    url = "http://cityos.test/ngsi-ld/v1/jsonldContexts/c1"
    await store.put_context("t", "c1", url, "hosted", doc, "2026-01-01T00:00:00Z")
    await store.put_context("t", "c0", url + "0", "hosted", {"@context": {}}, "2026-01-02T00:00:00Z")
    assert await store.get_context("t", "c1") == {"id": "c1", "url": url, "kind": "hosted",
                                                  "document": doc,
                                                  "createdAt": "2026-01-01T00:00:00Z"}
    assert [c["id"] for c in await store.list_contexts("t")] == ["c1", "c0"]
    assert await store.list_contexts("other") == []
    assert await store.context_by_url(url) == doc
    assert await store.context_by_url("http://nowhere") is None
    await store.put_context("t", "c1", url, "cached", {"@context": {"x": "y"}}, "2026-01-03T00:00:00Z")
    assert (await store.get_context("t", "c1"))["kind"] == "cached"
    assert [c["id"] for c in await store.list_contexts("t")] == ["c0", "c1"]
    assert await store.delete_context("t", "c1") is True
    assert await store.delete_context("t", "c1") is False
    assert await store.get_context("t", "c1") is None


async def test_documents_are_put_several_at_once(store: Any) -> None:
    await store.put_document("counters", "kobe", "a", {"n": 0})
    await store.put_documents("counters", [
        ("kobe", "a", {"n": 1}), ("kobe", "b", {"n": 2}), ("osaka", "a", {"n": 3}),
        ("kobe", "b", {"n": 4})])            # the same id twice: the last one wins
    assert await store.get_document("counters", "kobe", "a") == {"n": 1}
    assert await store.get_document("counters", "kobe", "b") == {"n": 4}
    assert await store.get_document("counters", "osaka", "a") == {"n": 3}
    listed = await store.list_documents("counters")
    assert [(d["_tenant"], d["n"]) for d in listed] == [("kobe", 1), ("kobe", 4), ("osaka", 3)]
    await store.put_documents("counters", [])
    assert len(await store.list_documents("counters")) == 3


# -- concurrency --------------------------------------------------------------------------------

async def test_concurrent_appends_are_not_lost(store: Any) -> None:
    await create(store, "t", entity(urn(1), A))

    async def append(i: int) -> None:
        def fn(current: dict[str, Any]) -> WriteSet:
            e = current[urn(1)]
            e["attrs"][DEFAULT_VOCAB + f"a{i}"] = prop(i)
            return WriteSet(upserts=[e])

        await store.write("t", [urn(1)], fn)

    await asyncio.gather(*(append(i) for i in range(20)))
    got = await store.get("t", urn(1))
    assert sorted(got["attrs"]) == sorted(DEFAULT_VOCAB + f"a{i}" for i in range(20))


async def test_concurrent_creates_of_one_id(store: Any) -> None:
    results = await asyncio.gather(*(create(store, "t", entity(urn(1), A, n=prop(i)))
                                     for i in range(10)), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if r is not None)
    assert (await store.query(plan(count=True)))[1] == 1


async def test_concurrent_upserts_of_new_ids_merge(store: Any) -> None:
    """Writers upserting the same new ids at once: all succeed and none loses another's data,
    as with SQLite's single writer (the second sees the first's entities as existing).  300 ids
    take PostgreSQL's whole-tenant lock instead of one lock per id."""
    ids = [urn(i) for i in range(300)]

    async def upsert(tag: str) -> None:
        def fn(current: dict[str, Any]) -> WriteSet:
            out = []
            for i in ids:
                e = current[i] or entity(i, A)
                e["attrs"][DEFAULT_VOCAB + tag] = prop(tag)
                out.append(e)
            return WriteSet(upserts=out)

        await store.write("t", list(reversed(ids)) if tag == "b" else ids, fn)

    await asyncio.gather(*(upsert(tag) for tag in "abcd"),
                         *(create(store, "t", entity(urn(f"small-{i}"))) for i in range(5)))
    page, total = await store.query(plan(limit=1000, count=True))
    assert total == 305
    assert all(set(e["attrs"]) == {DEFAULT_VOCAB + t for t in "abcd"} for e in page
               if "small" not in e["id"])


# -- PostgreSQL only ----------------------------------------------------------------------------

def test_pg_safe_regex() -> None:
    from cityos.data.ngsild.store.postgres_sql import pg_safe_regex

    for ok in [r"^urn:ngsi-ld:Vehicle:", r"A\d+$", r"a.b*c+d?", r"(x|y){2,3}", r"[a-z0-9_-]+",
               r"[^:]+\.json", r"\w\s\S\W\D"]:
        assert pg_safe_regex(ok), ok
    for bad in [r"(?i)x", r"\bword\b", r"(a)\1", r"[[:alpha:]]", r"[\d]", r"x{,3}", r"a{",
                r"***:x", r"\A", r"\Z", r"a}", "", r"\x41", r"(?P<n>x)"]:
        assert not pg_safe_regex(bad), bad


@pytest.fixture
def pg_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return database_url


async def test_pg_invalid_regex_falls_back_to_python(store: Any, pg_only: str) -> None:
    from cityos.data.ngsild.store import postgres_sql

    await create(store, "t", entity(urn("a1")), entity(urn("b2")))
    original = postgres_sql.pg_safe_regex
    postgres_sql.pg_safe_regex = lambda pattern: True     # push even what PostgreSQL rejects
    try:
        page, total = await store.query(plan(id_pattern=r"(?P<n>a)\d{1}$", limit=10, count=True))
        assert ids_of(page) == [urn("a1")] and total == 1
        assert await store.delete_matching(plan(id_pattern=r"(?P<x>b)2")) == 1
    finally:
        postgres_sql.pg_safe_regex = original


async def test_pg_nul_character_is_bad_request(store: Any, pg_only: str) -> None:
    with pytest.raises(BadRequestData):
        await create(store, "t", entity(urn(1), name=prop("a\u0000b")))
    assert await store.get("t", urn(1)) is None


async def test_pg_schema_and_postgis(store: Any, pg_only: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_only)
    try:
        postgis = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
        has_geom = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'entity_geo' "
            "AND column_name = 'geom'")
    finally:
        await conn.close()
    assert store.postgis == bool(postgis) == bool(has_geom)


async def test_pg_concurrent_first_opens(pg_only: str) -> None:
    """Several processes starting at once on an empty schema: the DDL runs once, all open."""
    import asyncpg

    schema = f"cityos_ddl_{int(time.time() * 1000) % 10**9}"
    admin = await asyncpg.connect(pg_only)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        stores: list[Any] = [open_entity_store(Settings.load(
            database_url=f"{pg_only}?search_path={schema},public")) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            assert len({s.postgis for s in stores}) == 1
            await create(stores[0], "t", entity(urn(1), location=geo(135, 34)))
            assert (await stores[3].get("t", urn(1)))["id"] == urn(1)
            tables = {r[0] for r in await admin.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)}
            assert {"entities", "entity_geo", "tenants", "jsonld_contexts"} <= tables
        finally:
            for s in stores:
                await s.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_pg_without_postgis_uses_the_box_index(pg_only: str) -> None:
    """PostGIS out of reach (here: not on the search path): the built-in box GiST index serves."""
    import asyncpg

    schema = f"cityos_nogis_{int(time.time() * 1000) % 10**9}"
    admin = await asyncpg.connect(pg_only)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        s: Any = open_entity_store(Settings.load(database_url=f"{pg_only}?search_path={schema}"))
        await s.open()
        try:
            assert s.postgis is False
            await create(s, "t", *(entity(urn(i), location=geo(135 + i / 100, 34)) for i in range(5)))
            box = geoquery("within", "Polygon", [[[135.005, 33.9], [135.025, 33.9], [135.025, 34.1],
                                                  [135.005, 34.1], [135.005, 33.9]]])
            page, total = await s.query(plan(geo=box, limit=10, count=True))
            assert ids_of(page) == [urn(1), urn(2)] and total == 2
        finally:
            await s.close()
        indexes = {r[0] for r in await admin.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}
        assert "entity_geo_box" in indexes and "entity_geo_geom" not in indexes
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_pg_down_is_service_unavailable_quickly() -> None:
    import asyncpg

    from cityos.data.ngsild.store.postgres import PostgresEntityStore

    store = PostgresEntityStore("postgresql://postgres@127.0.0.1:1/nothing")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await store.open()
    with pytest.raises(ServiceUnavailable):
        await store.get("t", urn(1))        # not open
    # opened while PostgreSQL was up, then unreachable: every call is a quick 503
    lazy = PostgresEntityStore("postgresql://postgres@127.0.0.1:1/nothing", min_size=0)
    lazy._pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/nothing", min_size=0)
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await lazy.write("t", [urn(1)], lambda current: WriteSet(upserts=[entity(urn(1))]))
        assert info.value.status == 503
        with pytest.raises(ServiceUnavailable):
            await lazy.query(plan())
    finally:
        await lazy.close()
    assert time.monotonic() - started < 6


async def test_pg_recovers_from_lost_connections(store: Any, pg_only: str) -> None:
    import asyncpg

    await create(store, "t", entity(urn(1)))
    pool = store._pool
    # every pooled connection's backend is killed (as a server restart would), one by one
    pids = []
    async with pool.acquire() as c1, pool.acquire() as c2:
        pids = [c1.get_server_pid(), c2.get_server_pid()]
    admin = await asyncpg.connect(pg_only)
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.1)
    assert (await store.get("t", urn(1)))["id"] == urn(1)        # retried on a fresh connection
    await create(store, "t", entity(urn(2)))
    assert (await store.query(plan(count=True)))[1] == 2
