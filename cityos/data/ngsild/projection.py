"""The ``pick`` / ``omit`` projection language with nested projections for linked entities.

``pick=id,locatedAt{id,name,isInCountry{id,description}}`` keeps ``id`` and ``locatedAt`` of the
entities themselves and, when linked entities are retrieved (``join``, clause 4.5.23), only ``id``
and ``name`` of the entity ``locatedAt`` points to, and only ``id`` and ``description`` of the entity
that one's ``isInCountry`` points to (clause 4.21, as exercised by the ETSI test suite, 018_20,
018_21, 019_20).  ``omit=type,locatedAt{name}`` drops ``type`` and, of the linked entity, ``name``.
A linked entity reached through an attribute without braces is not projected.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.payload import check_name

MAX_DEPTH = 8
_SPECIAL = frozenset({"id", "type"})


@dataclass(frozen=True)
class Projection:
    """One level of a projection: plain member names, and nested projections by attribute name."""

    names: tuple[str, ...] = ()                       # members without braces
    nested: tuple[tuple[str, Projection], ...] = ()   # ``name{...}`` members

    def members(self, kind: str) -> tuple[str, ...]:
        """What ``pick`` keeps or ``omit`` drops at this level.

        ``pick=id,locatedAt{name}`` keeps ``locatedAt``; ``omit=type,locatedAt{name}`` keeps it too
        and drops ``name`` of the linked entity only (ETSI test suite 018_20, 018_21).
        """
        if kind == "omit":
            return self.names
        return self.names + tuple(n for n, _ in self.nested if n not in self.names)

    def child(self, name: str) -> Projection | None:
        """The projection of the entities that attribute ``name`` (compacted) links to."""
        for key, projection in self.nested:
            if key == name:
                return projection
        return None


def parse_projection(text: str | None, parameter: str = "pick") -> Projection:
    """Parse ``a,b{c,d{e}}``; names are checked, braces must balance (``BadRequestData``)."""
    if text is None or not text.strip():
        return Projection()
    projection, end = _parse_list(text, 0, 0, parameter)
    if end != len(text):
        raise BadRequestData(f"{parameter}: unexpected {text[end]!r} at position {end}")
    return projection


def _parse_list(text: str, pos: int, depth: int, parameter: str) -> tuple[Projection, int]:
    if depth > MAX_DEPTH:
        raise BadRequestData(f"{parameter} nests braces more than {MAX_DEPTH} levels deep")
    names: list[str] = []
    nested: list[tuple[str, Projection]] = []
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",{}":
            pos += 1
        name = text[start:pos].strip()
        inner: Projection | None = None
        if pos < len(text) and text[pos] == "{":
            if not name:
                raise BadRequestData(f"{parameter}: '{{' must follow an attribute name")
            inner, pos = _parse_list(text, pos + 1, depth + 1, parameter)
            if pos >= len(text) or text[pos] != "}":
                raise BadRequestData(f"{parameter}: unbalanced braces in {text[:80]!r}")
            pos += 1
        if name:
            if name not in _SPECIAL:
                check_name(name)
            if inner is not None:
                nested.append((name, inner))
            elif name not in names:
                names.append(name)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if depth == 0 and pos < len(text) and text[pos] == "}":
            raise BadRequestData(f"{parameter}: unbalanced braces in {text[:80]!r}")
        return Projection(tuple(names), tuple(nested)), pos
