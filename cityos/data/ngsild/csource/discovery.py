"""Distributed discovery: ``/types`` and ``/attributes`` include what context sources hold.

NGSI-LD (clauses 4.3.6, 5.7.5 - 5.7.10) lets a registration serve the discovery operations
``retrieveEntityTypes``, ``retrieveEntityTypeDetails``, ``retrieveEntityTypeInfo``,
``retrieveAttrTypes``, ``retrieveAttrTypeDetails`` and ``retrieveAttrTypeInfo`` (all in the groups
``federationOps`` and ``redirectionOps``).  For each registration serving the operation asked,
two things are added to the local answer:

* what the registration's ``information`` names (entity types, ``propertyNames``,
  ``relationshipNames``): known without asking anybody, and still known when the source is down;
* what the source answers to the same discovery request (sent through the shared
  :class:`~cityos.data.ngsild.csource.forward.Forwarder`: timeout, ``Via``, tenant, SSRF guard,
  ``NGSILD-Warning``), kept only where the registration covers it, so discovery lists what an
  entity query would actually fetch.

Counts (``entityCount``, ``attributeCount``) are the sums over the local store and the sources;
an entity held in two places is counted twice (discovery answers do not name entities).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from cityos.data.ngsild.csource.forward import Reply, SourceQuestion
from cityos.data.ngsild.csource.index import index_of
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.store.base import TypeInfo
from cityos.data.ngsild.terms import TermMap


@dataclass
class AttrFacts:
    """What is known about one attribute: entities holding it, its kinds, its entity types."""

    count: int = 0
    kinds: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not an array of strings")
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class Discovery(SourceQuestion):
    """The registrations that may answer one discovery request, and what they answered."""

    def _serving(self, operation: str, types: set[str] | None = None,
                 attrs: set[str] | None = None) -> list[Registration]:
        # a request that already passed through us is answered locally (Via loop, clause 6.3.18)
        if self.loop:
            return []
        return [r for r in self.regs if operation in r.allowed and r.covers(None, types, attrs)]

    async def _ask(self, regs: list[Registration], path: str, details: bool | set[str]
                   ) -> list[Reply]:
        """Send the request to ``regs``; ``details``: with ``details=true`` (to all, or to the
        registrations whose ids are given)."""
        def params(reg: Registration) -> list[tuple[str, str]] | None:
            wanted = details if isinstance(details, bool) else reg.id in details
            return [("details", "true")] if wanted else None

        replies = await self.forwarder.send_all([(r, "GET", path, params(r), None) for r in regs])
        self.replies.extend(replies)
        return [r for r in replies if r.ok]

    def _invalid(self, reply: Reply) -> None:
        reply.warning = self.forwarder._warning(111, reply.reg,
                                                "the answer is not a valid discovery result")

    # -- entity types -------------------------------------------------------------------------

    async def entity_types(self, tm: TermMap, details: bool) -> dict[str, TypeInfo]:
        """GET /types (``details``: with attribute names): type IRI -> what the sources hold."""
        regs = self._serving("retrieveEntityTypeDetails" if details else "retrieveEntityTypes")
        out: dict[str, TypeInfo] = {}
        for reg in regs:
            _add_registered_types(out, reg, None)
        for reply in await self._ask(regs, "/types", details):
            try:
                if details:
                    if not isinstance(reply.body, list):
                        raise ValueError("not an array")
                    for item in reply.body:
                        iri = tm.expand(str(item["typeName"]))
                        names = _strings(item.get("attributeNames", []))
                        attrs: dict[str, set[str]] = {tm.expand(a): set() for a in names}
                        _add_type(out, reply.reg, TypeInfo(iri, 0, attrs))
                else:
                    for name in _strings(reply.body["typeList"]):
                        _add_type(out, reply.reg, TypeInfo(tm.expand(name), 0, {}))
            except (KeyError, TypeError, ValueError, AttributeError):
                self._invalid(reply)
        return out

    async def entity_type(self, tm: TermMap, iri: str) -> TypeInfo | None:
        """GET /types/{type}: what the sources hold of one type, or ``None`` if nothing."""
        regs = self._serving("retrieveEntityTypeInfo", types={iri})
        out: dict[str, TypeInfo] = {}
        for reg in regs:
            _add_registered_types(out, reg, iri)
        for reply in await self._ask(regs, f"/types/{tm.compact(iri)}", False):
            body = reply.body
            try:
                if not isinstance(body, dict) or tm.expand(str(body["typeName"])) != iri:
                    raise ValueError("another type")
                attrs: dict[str, set[str]] = {}
                for detail in body.get("attributeDetails", []):
                    kinds = _strings(detail.get("attributeTypes", []))
                    attrs[tm.expand(str(detail["attributeName"]))] = set(kinds)
                _add_type(out, reply.reg, TypeInfo(iri, _count(body.get("entityCount")), attrs))
            except (KeyError, TypeError, ValueError, AttributeError):
                self._invalid(reply)
        return out.get(iri)

    # -- attributes ---------------------------------------------------------------------------

    async def attributes(self, tm: TermMap, details: bool) -> dict[str, AttrFacts]:
        """GET /attributes (``details``: with counts, kinds, types): attribute IRI -> facts."""
        regs = self._serving("retrieveAttrTypeDetails" if details else "retrieveAttrTypes")
        out: dict[str, AttrFacts] = {}
        for reg in regs:
            _add_registered_attrs(out, reg, None)
        # a plain AttributeList does not tell which entity types hold an attribute: from a
        # source registered for some types only, ask for the details, which do
        detailed = {r.id for r in regs if details or all(i.entities for i in r.information)}
        for reply in await self._ask(regs, "/attributes", detailed):
            try:
                if reply.reg.id in detailed:
                    if not isinstance(reply.body, list):
                        raise ValueError("not an array")
                    for item in reply.body:
                        self._add_attr_item(out, reply.reg, tm, item)
                else:
                    for name in _strings(reply.body["attributeList"]):
                        _add_attr(out, reply.reg, tm.expand(name), AttrFacts())
            except (KeyError, TypeError, ValueError, AttributeError):
                self._invalid(reply)
        return out

    async def attribute(self, tm: TermMap, iri: str) -> AttrFacts | None:
        """GET /attributes/{attr}: what the sources hold of one attribute, or ``None``."""
        regs = self._serving("retrieveAttrTypeInfo", attrs={iri})
        out: dict[str, AttrFacts] = {}
        for reg in regs:
            _add_registered_attrs(out, reg, iri)
        for reply in await self._ask(regs, f"/attributes/{tm.compact(iri)}", False):
            try:
                if tm.expand(str(reply.body["attributeName"])) != iri:
                    raise ValueError("another attribute")
                self._add_attr_item(out, reply.reg, tm, reply.body)
            except (KeyError, TypeError, ValueError, AttributeError):
                self._invalid(reply)
        return out.get(iri)

    @staticmethod
    def _add_attr_item(out: dict[str, AttrFacts], reg: Registration, tm: TermMap,
                       item: Any) -> None:
        iri = tm.expand(str(item["attributeName"]))
        named = {tm.expand(t) for t in _strings(item.get("typeNames", []))}
        types = {t for t in named if reg.covers(None, {t}, {iri})}
        if named and not types:
            return          # held by entity types the registration does not cover
        facts = AttrFacts(_count(item.get("attributeCount")),
                          set(_strings(item.get("attributeTypes", []))), types)
        _add_attr(out, reg, iri, facts)


def _add_type(out: dict[str, TypeInfo], reg: Registration, info: TypeInfo) -> None:
    """Merge a source's type into ``out`` when the registration covers it."""
    if not reg.covers(None, {info.type}, None):
        return
    mine = out.setdefault(info.type, TypeInfo(info.type, 0, {}))
    mine.count += info.count
    for attr, kinds in info.attributes.items():
        if reg.covers(None, {info.type}, {attr}):
            mine.attributes.setdefault(attr, set()).update(kinds)


def _add_attr(out: dict[str, AttrFacts], reg: Registration, iri: str, facts: AttrFacts) -> None:
    """Merge a source's attribute into ``out`` when the registration covers it."""
    if not reg.covers(None, None, {iri}):
        return
    mine = out.setdefault(iri, AttrFacts())
    mine.count += facts.count
    mine.kinds |= facts.kinds
    mine.types |= facts.types


def _registered(reg: Registration) -> Iterable[tuple[tuple[str, ...], str, str]]:
    """(entity types, attribute IRI, kind) for every attribute the registration names."""
    for info in reg.information:
        types = tuple(t for e in info.entities for t in e.types)
        for name in info.properties:
            yield types, name, "Property"
        for name in info.relationships:
            yield types, name, "Relationship"


def _add_registered_types(out: dict[str, TypeInfo], reg: Registration, only: str | None) -> None:
    """The entity types (and their attribute names) the registration's ``information`` names."""
    for info in reg.information:
        for entity in info.entities:
            for iri in entity.types:
                if only is None or iri == only:
                    out.setdefault(iri, TypeInfo(iri, 0, {}))
    for types, attr, kind in _registered(reg):
        for iri in types:
            if iri in out:
                out[iri].attributes.setdefault(attr, set()).add(kind)


def _add_registered_attrs(out: dict[str, AttrFacts], reg: Registration, only: str | None) -> None:
    """The attributes the registration's ``information`` names, with their kinds and types."""
    for types, attr, kind in _registered(reg):
        if only is None or attr == only:
            facts = out.setdefault(attr, AttrFacts())
            facts.kinds.add(kind)
            facts.types.update(types)


async def discovery_for(request: Request, tenant: str) -> Discovery | None:
    """The request's distributed discovery, or ``None`` when it is local only (no registration
    in the tenant, or ``local=true``); one dictionary lookup in the usual case."""
    regs = await index_of(request.app).for_tenant(tenant)
    if not regs or request.query_params.get("local") == "true":
        return None
    return Discovery(request, regs, tenant)
