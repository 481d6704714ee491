"""An attribute value index that lets engines narrow ``q`` queries before the exact Python filter.

Each top-level attribute instance contributes rows ``(attr IRI, kind, num, txt)``:

====  ==========================================================  =====================
kind  from                                                        columns
====  ==========================================================  =====================
n     a Property whose value (or array element) is a number        num
b     a Property whose value (or array element) is a boolean       num (0 / 1)
s     a Property whose value (or array element) is a string        txt
r     a Relationship object (each one of a list)                   txt
l     a LanguageProperty string (each language)                    txt
x     anything else (objects, GeoJSON, vocab, JSON, ...)           — ("cannot judge")
====  ==========================================================  =====================

:func:`pushdown` turns a ``q`` tree into conditions over those rows whose answer is always a
**superset** of the exact answer: ``x`` rows always pass, and every construct whose Python
semantics the index cannot mirror (date-time comparisons, patterns, ``!=``, negation, paths into
sub-attributes or compound values) is simply not pushed down.  ``QueryPlan.python_filter`` stays
the authority (ADR 0005).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.qlang import And, Comparison, Exists, Literal, Or, QNode, Range, ValueList

IndexRow = tuple[str, str, float | None, str | None]  # attr, kind, num, txt

_ORDER_OPS = {">": ">", "<": "<", ">=": ">=", "<=": "<="}
# strings the q evaluator may compare as instants: never pushed down as plain text
_TIMELIKE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{2}:\d{2}")


def index_rows(entity: Entity) -> list[IndexRow]:
    """Every index row of an entity (top-level attributes, all instances)."""
    rows: list[IndexRow] = []
    for attr, instances in entity["attrs"].items():
        for instance in instances:
            rows.extend(_instance_rows(attr, instance))
    return rows


def _instance_rows(attr: str, instance: dict[str, Any]) -> Iterator[IndexRow]:
    kind = instance.get("type")
    if kind == "Property":
        value = instance.get("value")
        values = value if isinstance(value, list) else [value]
        for item in values:
            yield _scalar_row(attr, item)
    elif kind == "Relationship":
        targets = instance.get("object")
        for target in targets if isinstance(targets, list) else [targets]:
            yield (attr, "r", None, target) if isinstance(target, str) else (attr, "x", None, None)
    elif kind == "LanguageProperty":
        for text in (instance.get("languageMap") or {}).values():
            for item in text if isinstance(text, list) else [text]:
                yield (attr, "l", None, item) if isinstance(item, str) else (attr, "x", None, None)
    else:
        yield attr, "x", None, None


def _scalar_row(attr: str, value: Any) -> IndexRow:
    if isinstance(value, bool):
        return attr, "b", float(value), None
    if isinstance(value, (int, float)) and abs(value) < 1e300:
        return attr, "n", float(value), None
    if isinstance(value, str):
        return attr, "s", None, value
    return attr, "x", None, None


@dataclass(frozen=True)
class Cond:
    """Rows of ``attr`` satisfying ``sql`` (written over columns kind, num, txt) pass."""

    attr: str
    sql: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Both:
    """Entities passing every part."""

    parts: tuple[Pushdown, ...]


@dataclass(frozen=True)
class Either:
    """Entities passing any part."""

    parts: tuple[Pushdown, ...]


Pushdown = Cond | Both | Either


def pushdown(node: QNode) -> Pushdown | None:
    """A superset condition for an expanded ``q`` tree, or ``None`` when nothing can be pushed."""
    if isinstance(node, And):
        parts = tuple(p for p in (pushdown(item) for item in node.items) if p is not None)
        return parts[0] if len(parts) == 1 else (Both(parts) if parts else None)
    if isinstance(node, Or):
        pushed: list[Pushdown] = []
        for item in node.items:
            part = pushdown(item)
            if part is None:
                return None  # one branch the index cannot judge: the union would drop matches
            pushed.append(part)
        return Either(tuple(pushed))
    if isinstance(node, Exists):
        if node.path.sub or node.path.trailing:
            return None
        return Cond(node.path.attr, "1 = 1", ())
    if isinstance(node, Comparison):
        if node.path.sub or node.path.trailing:
            return None
        return _comparison(node)
    return None  # Not(...) and anything new: keep the exact filter only


def _comparison(node: Comparison) -> Cond | None:
    attr, op, value = node.path.attr, node.op, node.value
    if isinstance(value, Range):
        if op == "==" and value.low.kind == "number" and value.high.kind == "number":
            return Cond(attr, "kind IN ('n', 'b') AND num BETWEEN ? AND ?",
                        (float(value.low.value), float(value.high.value)))  # type: ignore[arg-type]
        return None
    if isinstance(value, ValueList):
        if op != "==" or not value.items:
            return None
        kinds = {item.kind for item in value.items}
        if kinds == {"number"}:
            marks = ",".join("?" * len(value.items))
            return Cond(attr, f"kind IN ('n', 'b') AND num IN ({marks})",
                        tuple(float(i.value) for i in value.items))  # type: ignore[arg-type]
        if kinds <= {"string", "uri"} and not any(_TIMELIKE.match(str(i.value)) for i in value.items):
            marks = ",".join("?" * len(value.items))
            return Cond(attr, f"kind IN ('s', 'r', 'l') AND txt IN ({marks})",
                        tuple(str(i.value) for i in value.items))
        return None
    assert isinstance(value, Literal)
    if value.kind == "number":
        if op == "==":
            return Cond(attr, "kind IN ('n', 'b') AND num = ?", (float(value.value),))  # type: ignore[arg-type]
        if op in _ORDER_OPS:
            return Cond(attr, f"kind IN ('n', 'b') AND num {_ORDER_OPS[op]} ?",
                        (float(value.value),))  # type: ignore[arg-type]
        return None
    if value.kind == "boolean" and op == "==":
        return Cond(attr, "kind IN ('b', 'n') AND num = ?", (float(bool(value.value)),))
    if value.kind in ("string", "uri") and op == "==" and not _TIMELIKE.match(str(value.value)):
        return Cond(attr, "kind IN ('s', 'r', 'l') AND txt = ?", (str(value.value),))
    return None


def leaf_sql(cond: Cond, tenant: str) -> tuple[str, list[Any]]:
    """SQL for one condition, written so each half can use an index: the value range on
    ``(tenant, attr, num|txt)`` and the "cannot judge" rows on ``(tenant, attr, kind)``."""
    if cond.sql == "1 = 1":
        return "SELECT seq FROM attr_index WHERE tenant = ? AND attr = ?", [tenant, cond.attr]
    return ("SELECT seq FROM attr_index WHERE tenant = ? AND attr = ? AND " + cond.sql +
            " UNION ALL SELECT seq FROM attr_index WHERE tenant = ? AND attr = ? AND kind = 'x'",
            [tenant, cond.attr, *cond.args, tenant, cond.attr])


def selective_seqs(push: Pushdown, run: Callable[[Cond], list[int] | None]) -> set[int] | None:
    """The seqs passing ``push``, computed leaf by leaf, or ``None`` when not selective.

    ``run(cond)`` returns a leaf's seqs, or ``None`` when it matches too many rows to be worth
    collecting.  Any selective part of a conjunction is a valid superset (the smaller the
    better, and several intersect); a disjunction needs every branch to be selective.  Leaves
    are evaluated apart because a compound INTERSECT would compute every branch in full first.
    """
    if isinstance(push, Cond):
        rows = run(push)
        return None if rows is None else set(rows)
    parts = [selective_seqs(part, run) for part in push.parts]
    if isinstance(push, Both):
        chosen = [p for p in parts if p is not None]
        if not chosen:
            return None
        result = min(chosen, key=len)
        for other in chosen:
            result = result & other
        return result
    if any(p is None for p in parts):
        return None
    return set().union(*[p for p in parts if p is not None])


def render_sql(push: Pushdown, tenant: str) -> tuple[str, list[Any]]:
    """SQL selecting the ``seq`` of every entity that passes (SQLite and PostgreSQL syntax)."""
    if isinstance(push, Cond):
        return ("SELECT seq FROM attr_index WHERE tenant = ? AND attr = ? "
                f"AND (({push.sql}) OR kind = 'x')", [tenant, push.attr, *push.args])
    glue = " INTERSECT " if isinstance(push, Both) else " UNION "
    parts = [render_sql(part, tenant) for part in push.parts]
    sql = glue.join(f"SELECT seq FROM ({text}) AS p{i}" for i, (text, _) in enumerate(parts))
    args = [arg for _, part_args in parts for arg in part_args]
    return sql, args
