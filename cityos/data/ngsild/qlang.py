"""The NGSI-LD query language (``q``, ETSI GS CIM 009 clause 4.9): expansion and evaluation.

Parsing lives in :mod:`cityos.data.ngsild.qlang_parse` (re-exported here).  A parsed tree holds the
names as written; :func:`expand_q` turns attribute and sub-attribute names into IRIs so that
:func:`q_matches` can evaluate the tree against the internal, expanded entity form of
:mod:`cityos.data.ngsild.model`.

Evaluation rules (clause 4.9):

* a term on an attribute matches when ANY instance of the attribute matches (multi-attribute with
  ``datasetId``); a missing target element never matches, except under ``!attr``;
* ``==`` matches when the target (or any element of an array target) equals the value, any value
  of a list, or lies in the inclusive range; ``!=`` is its negation on an existing target, so a
  type mismatch counts as unequal (the spec says so);
* ``>``, ``>=``, ``<``, ``<=`` need the same type on both sides: numbers numerically, strings by
  code point, dates/times/date-times as instants (a date-time with a ``+09:00`` offset equals the
  same instant in ``Z``); a mismatch never matches;
* ``~=``/``!~=`` search string targets only (RE2 syntax, linear time); other types never match;
* Relationships and ListRelationships only take ``==``/``!=`` on their object(s);
  LanguageProperty compares any language's string, or one language with ``attr[ja]``;
  VocabProperty compares its vocab IRI(s), also accepting a compact term that the IRI ends with
  (``/term`` or ``#term``); ListProperty compares the elements of ``valueList``; JsonProperty and
  compound Property values are walked with the trailing path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any

from cityos.core.patterns import UserPattern, stored_user_pattern
from cityos.data.ngsild.model import (
    JSONPROPERTY,
    LANGUAGEPROPERTY,
    LISTPROPERTY,
    LISTRELATIONSHIP,
    RELATIONSHIP,
    VOCABPROPERTY,
)
from cityos.data.ngsild.qlang_parse import (
    META_MEMBERS,
    And,
    AttrPath,
    Comparison,
    Exists,
    Literal,
    Not,
    Or,
    QNode,
    QValue,
    Range,
    ValueList,
    parse_date,
    parse_datetime,
    parse_q,
    parse_time,
)

__all__ = [
    "And", "AttrPath", "Comparison", "Exists", "Literal", "Not", "Or", "QNode", "QValue",
    "Range", "ValueList", "attribute_iris", "expand_q", "parse_q", "q_matches",
]

_MISSING: Any = object()
# how a target's strings compare for equality: "plain", "iri" (a vocab or objectType IRI that a
# compact term may name by its last segment) or "rel" (a Relationship object: only == and !=)
_PLAIN, _IRI, _REL = "plain", "iri", "rel"


# --------------------------------------------------------------------------------- expansion

def expand_path(path: AttrPath, expand: Callable[[str], str]) -> AttrPath:
    """``path`` with its attribute and sub-attribute names expanded (meta members kept)."""
    sub = tuple(name if name in META_MEMBERS and i == len(path.sub) - 1 else expand(name)
                for i, name in enumerate(path.sub))
    return replace(path, attr=expand(path.attr), sub=sub)


def expand_q(node: QNode, expand: Callable[[str], str]) -> QNode:
    """A copy of ``node`` whose attribute paths hold expanded IRIs (trailing paths untouched)."""
    if isinstance(node, Comparison):
        return replace(node, path=expand_path(node.path, expand))
    if isinstance(node, Exists):
        return Exists(expand_path(node.path, expand))
    if isinstance(node, Not):
        return Not(Exists(expand_path(node.node.path, expand)))
    if isinstance(node, And):
        return And(tuple(expand_q(item, expand) for item in node.items))
    if isinstance(node, Or):
        return Or(tuple(expand_q(item, expand) for item in node.items))
    raise TypeError(f"not a q node: {node!r}")


def attribute_iris(node: QNode) -> set[str]:
    """The top-level attribute names (IRIs, once expanded) that ``node`` refers to."""
    if isinstance(node, (Comparison, Exists)):
        return {node.path.attr}
    if isinstance(node, Not):
        return {node.node.path.attr}
    if isinstance(node, (And, Or)):
        out: set[str] = set()
        for item in node.items:
            out |= attribute_iris(item)
        return out
    return set()


# -------------------------------------------------------------------------------- evaluation

def q_matches(node: QNode, entity: dict[str, Any]) -> bool:
    """Whether the entity (internal form, expanded) satisfies the expanded query ``node``."""
    if isinstance(node, And):
        return all(q_matches(item, entity) for item in node.items)
    if isinstance(node, Or):
        return any(q_matches(item, entity) for item in node.items)
    if isinstance(node, Exists):
        return any(True for _ in _targets(entity, node.path))
    if isinstance(node, Not):
        return not q_matches(node.node, entity)
    if isinstance(node, Comparison):
        return any(_term_matches(node.op, node.value, target, mode)
                   for target, mode in _targets(entity, node.path))
    return False


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _instances(holder: Any) -> list[dict[str, Any]]:
    return [inst for inst in _as_list(holder) if isinstance(inst, dict)]


def _targets(entity: dict[str, Any], path: AttrPath) -> Iterator[tuple[Any, str]]:
    """(target value, comparison mode) for each instance in which the path resolves."""
    attrs = entity.get("attrs")
    if not isinstance(attrs, dict):
        return
    meta = path.meta
    names = path.sub[:-1] if meta else path.sub
    level = _instances(attrs.get(path.attr))
    for name in names:
        level = [inst for parent in level if isinstance(parent.get("sub"), dict)
                 for inst in _instances(parent["sub"].get(name))]
    for inst in level:
        if meta is not None:
            if meta in inst:
                yield inst[meta], (_IRI if meta == "objectType" else _PLAIN)
            continue
        target = _instance_target(inst, path.trailing)
        if target is not _MISSING:
            yield target


def _instance_target(inst: dict[str, Any], trailing: tuple[str, ...]) -> Any:
    kind = inst.get("type", "Property")
    if kind == RELATIONSHIP:
        return _MISSING if trailing or "object" not in inst else (inst["object"], _REL)
    if kind == LISTRELATIONSHIP:
        if trailing or "objectList" not in inst:
            return _MISSING
        objects = [o.get("object") if isinstance(o, dict) else o
                   for o in _as_list(inst["objectList"])]
        return objects, _REL
    if kind == LANGUAGEPROPERTY:
        lang_map = inst.get("languageMap")
        if not isinstance(lang_map, dict) or len(trailing) > 1:
            return _MISSING
        if trailing and trailing[0] != "*":
            return (lang_map[trailing[0]], _PLAIN) if trailing[0] in lang_map else _MISSING
        strings = [s for v in lang_map.values() for s in _as_list(v)]
        return strings, _PLAIN
    if kind == VOCABPROPERTY:
        if trailing or "vocab" not in inst:
            return _MISSING
        return inst["vocab"], _IRI
    if kind == LISTPROPERTY:
        key = "valueList"
    elif kind == JSONPROPERTY:
        key = "json"
    else:
        key = "value"
    if key not in inst:
        return _MISSING
    value = _walk(inst[key], trailing)
    return _MISSING if value is _MISSING else (_unwrap(value), _PLAIN)


def _walk(value: Any, trailing: tuple[str, ...]) -> Any:
    for key in trailing:
        value = _unwrap(value)
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def _unwrap(value: Any) -> Any:
    """The plain value of a JSON-LD value object (``{"@type": "DateTime", "@value": ...}``)."""
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    return value


def _term_matches(op: str, value: QValue, target: Any, mode: str) -> bool:
    elements = [_unwrap(e) for e in target] if isinstance(target, list) else [target]
    if mode == _REL and op not in ("==", "!="):
        return False
    if op in ("~=", "!~="):
        strings = [e for e in elements if isinstance(e, str)]
        if not strings or not isinstance(value, Literal) or not isinstance(value.value, str):
            return False
        regex = _regex(value.value)
        hit = any(regex.search(s) is not None for s in strings)
        return hit if op == "~=" else not hit
    if op == "==":
        return any(_equals(e, value, mode) for e in elements)
    if op == "!=":
        return not any(_equals(e, value, mode) for e in elements)
    if not isinstance(value, Literal):
        return False
    for element in elements:
        order = _compare(element, value)
        if order is not None and (
                (op == ">" and order > 0) or (op == ">=" and order >= 0)
                or (op == "<" and order < 0) or (op == "<=" and order <= 0)):
            return True
    return False


def _equals(element: Any, value: QValue, mode: str) -> bool:
    if isinstance(value, Range):
        low, high = _compare(element, value.low), _compare(element, value.high)
        return low is not None and high is not None and low >= 0 and high <= 0
    if isinstance(value, ValueList):
        return any(_equals(element, item, mode) for item in value.items)
    if (mode == _IRI and isinstance(element, str) and isinstance(value.value, str)
            and value.kind in ("string", "uri") and value.value
            and element.endswith(("/" + value.value, "#" + value.value))):
        return True
    return _compare(element, value) == 0


def _sign(a: Any, b: Any) -> int | None:
    if a < b:
        return -1
    if a > b:
        return 1
    return 0 if a == b else None  # NaN


def _compare(element: Any, lit: Literal) -> int | None:
    """-1, 0 or 1 comparing the target element with the literal, ``None`` if incomparable."""
    kind, want = lit.kind, lit.value
    if kind == "number":
        if isinstance(element, bool) or not isinstance(element, (int, float)):
            return None
        return _sign(element, want)
    if kind == "boolean":
        return (0 if element is want else 1) if isinstance(element, bool) else None
    if not isinstance(element, str):
        return None
    if kind in ("string", "uri", "pattern"):
        return _sign(element, want)
    if kind == "datetime":
        instant = _instant(element)
        return None if instant is None else _sign(instant, want)
    if kind == "date" and isinstance(want, date):
        day = _date(element)
        if day is not None:
            return _sign(day, want)
        instant = _instant(element)
        if instant is None:
            return None
        return _sign(instant, datetime.combine(want, time(0), tzinfo=UTC))
    if kind == "time":
        seconds = _time(element)
        return None if seconds is None else _sign(seconds, want)
    return None


@lru_cache(maxsize=4096)
def _instant(text: str) -> datetime | None:
    """A date-time target as an instant; a bare date counts as its midnight UTC."""
    instant = parse_datetime(text)
    if instant is None:
        day = parse_date(text)
        if day is not None:
            instant = datetime.combine(day, time(0), tzinfo=UTC)
    return instant


@lru_cache(maxsize=4096)
def _date(text: str) -> date | None:
    return parse_date(text)


@lru_cache(maxsize=1024)
def _time(text: str) -> float | None:
    return parse_time(text)


def _regex(pattern: str) -> UserPattern:
    # RE2 (compiled once, cached): a client's pattern must not backtrack for minutes
    return stored_user_pattern(pattern)
