"""User-supplied idPattern is matched by RE2 (linear time) and refused when RE2 cannot run it.

Before the shared helper (cityos/core/patterns.py), ``(a+)+$`` against a long id of ``a`` ending
in ``!`` backtracked exponentially and blocked the event loop; look-arounds were accepted.
"""

from __future__ import annotations

import httpx
import pytest

from cityos.core.patterns import (
    MAX_PATTERN_CHARS,
    MAX_SUBJECT_CHARS,
    UserPatternError,
    compile_user_pattern,
    user_pattern_search,
)

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EVIL_ID = "urn:ngsi-ld:T:" + "a" * 40 + "!"


def test_evil_pattern_is_linear_and_refusals_are_precise() -> None:
    assert compile_user_pattern("(a+)+$", "idPattern").search("a" * 5000 + "!") is None
    assert user_pattern_search("^urn:.*:T:a+$", "urn:ngsi-ld:T:aaa")
    with pytest.raises(UserPatternError, match="idPattern is not a supported"):
        compile_user_pattern("(?=a)a", "idPattern")
    with pytest.raises(UserPatternError, match="back references"):
        compile_user_pattern(r"(a)\1", "idPattern")
    with pytest.raises(UserPatternError, match="longer than"):
        compile_user_pattern("a" * (MAX_PATTERN_CHARS + 1), "idPattern")
    assert not user_pattern_search("a", "a" * (MAX_SUBJECT_CHARS + 1))
    assert not user_pattern_search("(?=a)", "a")     # a stored pattern RE2 refuses never matches


async def test_get_entities_with_catastrophic_id_pattern(client: httpx.AsyncClient) -> None:
    for entity_id in (EVIL_ID, "urn:ngsi-ld:T:aaa"):
        r = await client.post(f"{BASE}/entities", json={"id": entity_id, "type": "T"})
        assert r.status_code == 201, r.text
    got = await client.get(f"{BASE}/entities", params={"idPattern": "(a+)+$", "type": "T"})
    assert got.status_code == 200
    assert [e["id"] for e in got.json()] == ["urn:ngsi-ld:T:aaa"]
    # the Python filter path too (q forces it on both engines)
    got = await client.get(f"{BASE}/entities", params={"idPattern": "(a+)+$",
                                                       "q": 'name!="x"', "type": "T"})
    assert got.status_code == 200


async def test_id_pattern_re2_cannot_run_is_bad_request_data(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{BASE}/entities", params={"idPattern": "(?!x).*", "type": "T"})
    assert r.status_code == 400
    assert r.json()["type"] == ERR + "BadRequestData"
    assert "look-arounds" in r.json()["detail"]
    body = {"type": "Query", "entities": [{"idPattern": r"(\w)\1", "type": "T"}]}
    r = await client.post(f"{BASE}/entityOperations/query", json=body)
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    assert "entities[0].idPattern" in r.json()["detail"] or "idPattern" in r.json()["detail"]


async def test_selector_with_catastrophic_pattern(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json={"id": EVIL_ID, "type": "T"})) \
        .status_code == 201
    body = {"type": "Query", "entities": [{"idPattern": "(a+)+$", "type": "T"},
                                          {"id": "urn:ngsi-ld:T:none", "type": "T"}]}
    r = await client.post(f"{BASE}/entityOperations/query", json=body)
    assert r.status_code == 200 and r.json() == []


async def test_q_pattern_operator_runs_on_re2(client: httpx.AsyncClient) -> None:
    """``q=name~=(a+)+$`` against a long run of ``a`` ending in ``!``: linear, not backtracking."""
    for n, name in enumerate(("a" * 40 + "!", "aaa")):
        r = await client.post(f"{BASE}/entities", json={
            "id": f"urn:ngsi-ld:T:{n}", "type": "T", "name": {"type": "Property", "value": name}})
        assert r.status_code == 201
    r = await client.get(f"{BASE}/entities", params={"type": "T", "q": "name~=(a+)+$"})
    assert r.status_code == 200
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:T:1"]
    refused = await client.get(f"{BASE}/entities", params={"type": "T", "q": "name~=(?=a)a"})
    assert refused.status_code == 400
    assert refused.json()["type"] == ERR + "BadRequestData"


def test_subscription_matcher_compiles_id_patterns_with_re2() -> None:
    from cityos.core.patterns import UserPattern
    from cityos.data.ngsild.store.base import Selector
    from cityos.data.ngsild.subscriptions.index import Compiled
    from cityos.data.ngsild.subscriptions.model import Endpoint, Subscription

    sub = Subscription(id="urn:s:1", tenant="", endpoint=Endpoint("http://example.org/n"),
                       selectors=(Selector(id_pattern="(a+)+$"),))
    compiled = Compiled.of(sub)
    assert compiled.selectors is not None
    assert isinstance(compiled.selectors[0].pattern, UserPattern)
    evil = {"id": "urn:ngsi-ld:T:" + "a" * 40 + "!", "type": ["T"], "attrs": {}}
    assert not compiled.selects(evil)
    assert compiled.selects({"id": "urn:ngsi-ld:T:aaa", "type": ["T"], "attrs": {}})
