"""The attribute value index may only narrow ``q`` queries, never change their answer.

Random entities with numbers, booleans, strings (Japanese included), lists, relationships,
language maps and objects are stored; random ``q`` expressions are answered through the store
(which uses the index when it is selective) and by brute force with the exact evaluator alone.
The two answers must be identical.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.core.settings import Settings
from cityos.data.ngsild.qlang import expand_q, parse_q, q_matches
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr, WriteSet
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


def _entity(n: int, attributes: dict[str, Any]) -> dict[str, Any]:
    now = "2026-11-25T00:00:00.000000Z"
    return {"id": f"urn:ngsi-ld:Thing:{n}", "type": [T], "createdAt": now, "modifiedAt": now,
            "attrs": {TM.expand(k): [{**v, "createdAt": now, "modifiedAt": now}]
                      for k, v in attributes.items()}}


async def _check(entities: list[dict[str, Any]], q_text: str) -> None:
    store = open_entity_store(Settings.load(database_url="sqlite://"))
    await store.open()
    try:
        await store.write("", [e["id"] for e in entities], lambda _: WriteSet(upserts=entities))
        q = expand_q(parse_q(q_text), TM.expand)
        plan = QueryPlan(tenant="", types=TypeExpr((frozenset({T}),)), q=q, limit=1000, count=True)
        got, total = await store.query(plan)
        expected = [e["id"] for e in entities if q_matches(q, e)]
        assert [e["id"] for e in got] == expected, (q_text, pushdown(q))
        assert total == len(expected)
    finally:
        await store.close()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(population=st.lists(attrs, min_size=1, max_size=25), q_text=queries)
def test_index_never_changes_the_answer(population: list[dict[str, Any]], q_text: str) -> None:
    entities = [_entity(n, a) for n, a in enumerate(population)]
    asyncio.run(_check(entities, q_text))


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
