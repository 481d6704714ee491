"""The NGSI v2 Simple Query Language (``q`` and ``mq``), translated to the broker's query tree.

``q=temperature>20;color==red,blue;name~=^Ka;!broken;address.city==Kobe`` becomes the same tree
the NGSI-LD ``q`` parser builds (:mod:`cityos.data.ngsild.qlang`), with names expanded through the
core context, so v2 queries run on the broker's evaluator and its SQL push-down unchanged.

Statements are separated by ``;`` (AND).  A binary statement is ``path op value`` with ``op`` one of
``==`` (or ``:``), ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~=``; ``==``/``!=`` take a list ``a,b`` or
a range ``a..b``.  Values are numbers, ``true``/``false``, ISO 8601 date-times or strings; single
quotes force a string and protect ``,`` ``.`` ``;`` inside it (``'light,green'``).  Unary statements
test existence: ``attr`` and ``!attr``.  In ``q`` the path's tokens after the first walk into the
attribute's structured value; in ``mq`` the second token names a metadata item and the rest walk
into its value.  A token holding a dot is quoted: ``'a.b'.c``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cityos.core.patterns import UserPatternError, compile_user_pattern
from cityos.data.ngsild import TermMap
from cityos.data.ngsild.qlang import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Literal,
    Not,
    QNode,
    QValue,
    Range,
    ValueList,
    q_matches,
)
from cityos.data.ngsild.qlang_parse import META_MEMBERS, parse_datetime
from cityos.data.ngsiv2.errors import bad_request
from cityos.data.ngsiv2.mapping import V2_PREFIX, to_ld_id

_OPERATORS = ("==", "!=", ">=", "<=", "~=", ">", "<", ":")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_V2_ID = re.compile(r"^[A-Za-z0-9_\-.@!$*+~]{1,256}$")
MAX_STATEMENTS = 64


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` where it is not inside single quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        if text[i] == "'":
            quoted = not quoted
        if not quoted and text.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(text[i])
        i += 1
    if quoted:
        raise bad_request(f"unbalanced single quotes in query {text[:80]!r}")
    parts.append("".join(current))
    return parts


def _find_operator(statement: str) -> tuple[int, str] | None:
    quoted = False
    for i, ch in enumerate(statement):
        if ch == "'":
            quoted = not quoted
        if quoted:
            continue
        for op in _OPERATORS:
            if statement.startswith(op, i) and i > 0:
                return i, op
    return None


def _tokens(path: str) -> list[str]:
    tokens = [t[1:-1] if len(t) >= 2 and t[0] == t[-1] == "'" else t
              for t in split_outside_quotes(path.strip(), ".")]
    if not all(tokens):
        raise bad_request(f"empty name in query path {path[:80]!r}")
    return tokens


def _path(path: str, expand: Callable[[str], str], metadata: bool) -> AttrPath:
    tokens = _tokens(path)
    attr = expand(tokens[0])
    if not metadata:
        return AttrPath(attr=attr, trailing=tuple(tokens[1:]))
    if len(tokens) < 2:
        raise bad_request(f"a metadata query needs attribute.metadata, got {path[:80]!r}")
    meta = tokens[1] if tokens[1] in META_MEMBERS else expand(tokens[1])
    return AttrPath(attr=attr, sub=(meta,), trailing=tuple(tokens[2:]))


def literal(text: str) -> Literal:
    """One value of a statement: quoted string, number, boolean, date-time or string."""
    raw = text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return Literal("string", raw[1:-1], raw)
    if not raw:
        raise bad_request("empty right-hand side in query")
    if _NUMBER.match(raw):
        number = float(raw)
        return Literal("number", int(number) if number.is_integer() and "." not in raw else number,
                       raw)
    if raw in ("true", "false"):
        return Literal("boolean", raw == "true", raw)
    if _DATETIME.match(raw):
        moment = parse_datetime(raw)
        if moment is not None:
            return Literal("datetime", moment, raw)
    return Literal("string", raw, raw)


def _with_id_form(lit: Literal) -> QValue:
    """An unquoted string that may name an entity also matches its NGSI-LD id (Relationships)."""
    if lit.kind == "string" and isinstance(lit.value, str) and not lit.raw.startswith("'") \
            and _V2_ID.match(lit.value) and not lit.value.startswith(V2_PREFIX):
        ld = to_ld_id(lit.value)
        if ld != lit.value:
            return ValueList((lit, Literal("string", ld, ld)))
    return lit


def _value(op: str, text: str) -> QValue:
    if op == "~=":
        pattern = text.strip()
        if len(pattern) >= 2 and pattern[0] == pattern[-1] == "'":
            pattern = pattern[1:-1]
        try:
            compile_user_pattern(pattern, "the regular expression")   # RE2: linear-time matching
        except UserPatternError as exc:
            raise bad_request(f"invalid regular expression {pattern[:80]!r}: {exc}") from None
        return Literal("pattern", pattern, pattern)
    if op in ("==", "!="):
        bounds = split_outside_quotes(text, "..")
        if len(bounds) == 2:
            low, high = literal(bounds[0]), literal(bounds[1])
            if low.kind != high.kind or low.kind not in ("number", "string", "datetime"):
                raise bad_request("a range needs two numbers, strings or dates of the same kind")
            return Range(low, high)
        items = split_outside_quotes(text, ",")
        if len(items) > 1:
            values: list[Literal] = []
            for item in items:
                one = _with_id_form(literal(item))
                values.extend(one.items if isinstance(one, ValueList) else [one])  # type: ignore[list-item]
            return ValueList(tuple(values))
        return _with_id_form(literal(text))
    return literal(text)


def parse_v2_query(text: str, tm: TermMap, *, metadata: bool = False) -> QNode:
    """``q`` (or, with ``metadata``, ``mq``) as an expanded query tree (400 when malformed)."""
    node, builtins = parse_v2_filters(text, tm, metadata=metadata)
    if builtins:
        raise bad_request("dateCreated and dateModified cannot be used here")
    if node is None:
        raise bad_request("empty query expression")
    return node


def parse_v2_filters(text: str, tm: TermMap, *,
                     metadata: bool = False) -> tuple[QNode | None, list[QNode]]:
    """The query tree for the store, and the statements on the builtin attributes
    ``dateCreated``/``dateModified`` (their path names the builtin; see :func:`builtin_matches`)."""
    statements = [s for s in split_outside_quotes(text, ";") if s.strip()]
    if not statements:
        raise bad_request("empty query expression")
    if len(statements) > MAX_STATEMENTS:
        raise bad_request("too many statements in query expression")
    nodes: list[QNode] = []
    builtins: list[QNode] = []
    for statement in statements:
        statement = statement.strip()
        found = _find_operator(statement)
        name = (statement if found is None else statement[:found[0]]).strip().lstrip("!")
        builtin = not metadata and name in BUILTINS
        target = builtins if builtin else nodes
        names = (lambda n: n) if builtin else tm.expand
        if found is None:
            negate = statement.startswith("!")
            exists = Exists(_path(statement[1:] if negate else statement, names, metadata))
            target.append(Not(exists) if negate else exists)
            continue
        at, op = found
        path = _path(statement[:at], names, metadata)
        value = _value(op, statement[at + len(op):])
        target.append(Comparison(path, "==" if op == ":" else op, value))
    node = None if not nodes else nodes[0] if len(nodes) == 1 else And(tuple(nodes))
    return node, builtins


BUILTINS = {"dateCreated": "createdAt", "dateModified": "modifiedAt"}


def builtin_matches(nodes: list[QNode], entity: dict[str, Any]) -> bool:
    """Whether ``entity``'s creation / modification times satisfy the builtin statements."""
    view = {"attrs": {name: [{"type": "Property", "value": entity.get(member)}]
                      for name, member in BUILTINS.items()}}
    return all(q_matches(node, view) for node in nodes)


def combine(*nodes: Any) -> QNode | None:
    """AND of the given trees (``None`` items ignored)."""
    present = [n for n in nodes if n is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else And(tuple(present))
