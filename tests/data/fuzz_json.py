"""The arbitrary-JSON strategy every fuzz test of the APIs starts from (no tests here)."""

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
