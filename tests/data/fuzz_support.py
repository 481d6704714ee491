"""What the NGSI-LD fuzz tests share (no tests here): arbitrary JSON, and the check that an
answer is a success or a precise NGSI-LD problem."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(*, text: int, keys: int, width: int, leaves: int) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, huge integers, floats and strings up to ``text``
    characters, nested in arrays and objects of up to ``width`` members (object keys up to
    ``keys`` characters), ``leaves`` scalars at most."""
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                       st.floats(allow_nan=False), st.text(max_size=text))
    return st.recursive(scalar, lambda inner: st.one_of(
        st.lists(inner, max_size=width), st.dictionaries(st.text(max_size=keys), inner,
                                                         max_size=width)), max_leaves=leaves)


def check_ngsild_answer(response: Any) -> None:
    """Success, or an NGSI-LD problem (RFC 7807) whose status is a 4xx and matches the body."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/")
        body = response.json()
        assert body["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/"), body
        assert body["status"] == response.status_code
