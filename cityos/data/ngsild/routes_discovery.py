"""Discovery (clause 5.7.5 - 5.7.10): ``/types``, ``/types/{type}``, ``/attributes``,
``/attributes/{attr}``.

The local store answers; when the tenant has context source registrations serving the discovery
operation (and the request is not ``local=true``), what the sources hold is merged in
(csource/discovery.py, docs/federation.md) and failing sources are named in ``NGSILD-Warning``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import ResourceNotFound
from cityos.data.ngsild.csource import AttrFacts, Discovery, discovery_for
from cityos.data.ngsild.negotiation import (
    choose_accept,
    request_context,
    response_context_url,
    tenant_of,
)
from cityos.data.ngsild.payload import check_name
from cityos.data.ngsild.queryparams import flag
from cityos.data.ngsild.responses import ngsild_route, with_context
from cityos.data.ngsild.routes_entities import BASE, broker_of, read_tenant
from cityos.data.ngsild.store.base import QueryPlan, TypeInfo
from cityos.data.ngsild.terms import TermMap


@dataclass
class _Ask:
    """One discovery request: the local type summary and how to answer."""

    infos: list[TypeInfo]
    tm: TermMap
    accept: str
    ctx: str
    details: bool
    discovery: Discovery | None          # None: local only (the usual, fast case)

    @property
    def headers(self) -> dict[str, str]:
        return self.discovery.headers if self.discovery is not None else {}


async def _setup(request: Request) -> _Ask:
    broker = broker_of(request)
    accept = choose_accept(request)
    context, url = request_context(request)
    tm = await broker.resolver.term_map(context)
    tenant = await read_tenant(request, broker)
    details = flag(request.query_params, "details")
    flag(request.query_params, "local")
    infos = await broker.store.type_info(tenant)
    discovery = await discovery_for(request, tenant)
    return _Ask(infos, tm, accept, response_context_url(url), details, discovery)


async def _attribute_count(request: Request, iri: str) -> int:
    """How many entities hold the attribute (``attributeCount``, clause 5.2.28).

    The store's type summary counts entities per type, not per attribute, so this asks the store
    for the number of entities having the attribute (a count-only query: no entity is loaded
    into the response).
    """
    broker = broker_of(request)
    plan = QueryPlan(tenant=tenant_of(request), attrs=frozenset({iri}), limit=0, count=True)
    _, total = await broker.store.query(plan)
    return total or 0


def _list_id(kind: str) -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex}"


def _with_remote(infos: list[TypeInfo], remote: dict[str, TypeInfo]) -> list[TypeInfo]:
    """The local type summary with the sources' types merged in (copies: the store's cache
    is not touched)."""
    if not remote:
        return infos
    merged = {i.type: TypeInfo(i.type, i.count, {a: set(k) for a, k in i.attributes.items()})
              for i in infos}
    for iri, info in remote.items():
        mine = merged.setdefault(iri, TypeInfo(iri, 0, {}))
        mine.count += info.count
        for attr, kinds in info.attributes.items():
            mine.attributes.setdefault(attr, set()).update(kinds)
    return list(merged.values())


async def list_types(request: Request) -> Response:
    """GET /types: an EntityTypeList, or EntityType details."""
    ask = await _setup(request)
    tm, infos = ask.tm, ask.infos
    if ask.discovery is not None:
        infos = _with_remote(infos, await ask.discovery.entity_types(tm, ask.details))
    infos = sorted(infos, key=lambda i: tm.compact(i.type))
    body: Any
    if ask.details:
        body = [{"id": i.type, "type": "EntityType", "typeName": tm.compact(i.type),
                 "attributeNames": sorted(tm.compact(a) for a in i.attributes)} for i in infos]
    else:
        body = {"id": _list_id("EntityTypeList"), "type": "EntityTypeList",
                "typeList": [tm.compact(i.type) for i in infos]}
    return with_context(body, ask.accept, ask.ctx, headers=ask.headers)


async def type_details(request: Request) -> Response:
    """GET /types/{type}: EntityTypeInfo with entity count and attribute details."""
    ask = await _setup(request)
    tm = ask.tm
    name = check_name(request.path_params["type"], "entity type")
    iri = tm.expand(name)
    infos = [i for i in ask.infos if i.type == iri]
    if ask.discovery is not None:
        remote = await ask.discovery.entity_type(tm, iri)
        infos = _with_remote(infos, {iri: remote} if remote is not None else {})
    if not infos:
        raise ResourceNotFound(f"no entity of type {name!r} exists", headers=ask.headers)
    info = infos[0]
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": tm.compact(iri),
            "entityCount": info.count,
            "attributeDetails": [
                {"id": attr, "type": "Attribute", "attributeName": tm.compact(attr),
                 "attributeTypes": sorted(kinds)}
                for attr, kinds in sorted(info.attributes.items(), key=lambda kv: tm.compact(kv[0]))]}
    return with_context(body, ask.accept, ask.ctx, headers=ask.headers)


def _attributes(infos: list[TypeInfo]) -> dict[str, AttrFacts]:
    """attribute IRI -> attribute types seen and entity type IRIs having it (count not set)."""
    out: dict[str, AttrFacts] = {}
    for info in infos:
        for attr, kinds in info.attributes.items():
            facts = out.setdefault(attr, AttrFacts())
            facts.kinds |= kinds
            facts.types.add(info.type)
    return out


async def _counted(request: Request, local: dict[str, AttrFacts], remote: dict[str, AttrFacts],
                   names: list[str]) -> dict[str, AttrFacts]:
    """Attribute facts with ``attributeCount``: the local store's count plus the sources'."""
    out: dict[str, AttrFacts] = {}
    for iri in names:
        mine, theirs = local.get(iri), remote.get(iri)
        count = await _attribute_count(request, iri) if mine is not None else 0
        facts = AttrFacts(count, set(mine.kinds) if mine else set(),
                          set(mine.types) if mine else set())
        if theirs is not None:
            facts.count += theirs.count
            facts.kinds |= theirs.kinds
            facts.types |= theirs.types
        out[iri] = facts
    return out


def _attribute_body(iri: str, facts: AttrFacts, tm: TermMap) -> dict[str, Any]:
    return {"id": iri, "type": "Attribute", "attributeName": tm.compact(iri),
            "attributeCount": facts.count, "attributeTypes": sorted(facts.kinds),
            "typeNames": sorted(tm.compact(t) for t in facts.types)}


async def list_attributes(request: Request) -> Response:
    """GET /attributes: an AttributeList, or Attribute details."""
    ask = await _setup(request)
    tm = ask.tm
    local = _attributes(ask.infos)
    remote: dict[str, AttrFacts] = {}
    if ask.discovery is not None:
        remote = await ask.discovery.attributes(tm, ask.details)
    names = sorted({*local, *remote}, key=tm.compact)
    body: Any
    if ask.details:
        counted = await _counted(request, local, remote, names)
        body = [_attribute_body(a, counted[a], tm) for a in names]
    else:
        body = {"id": _list_id("AttributeList"), "type": "AttributeList",
                "attributeList": [tm.compact(a) for a in names]}
    return with_context(body, ask.accept, ask.ctx, headers=ask.headers)


async def attribute_details(request: Request) -> Response:
    """GET /attributes/{attr}: one Attribute with its types and the entity types that have it."""
    ask = await _setup(request)
    tm = ask.tm
    name = check_name(request.path_params["attr"])
    iri = tm.expand(name)
    local = _attributes(ask.infos)
    remote: dict[str, AttrFacts] = {}
    if ask.discovery is not None:
        found = await ask.discovery.attribute(tm, iri)
        remote = {iri: found} if found is not None else {}
    if iri not in local and iri not in remote:
        raise ResourceNotFound(f"no entity has an attribute {name!r}", headers=ask.headers)
    counted = await _counted(request, local, remote, [iri])
    return with_context(_attribute_body(iri, counted[iri], tm), ask.accept, ask.ctx,
                        headers=ask.headers)


# ``:path``: a type or attribute may be given as its expanded IRI, URL-encoded (ETSI 024_02_02,
# 027_02_02); the server decodes ``%2F`` before routing, so the name may hold slashes
ROUTES = [
    ngsild_route(f"{BASE}/types", list_types, methods=["GET"], name="retrieveEntityTypes"),
    ngsild_route(f"{BASE}/types/{{type:path}}", type_details, methods=["GET"],
                 name="retrieveEntityTypeInfo"),
    ngsild_route(f"{BASE}/attributes", list_attributes, methods=["GET"], name="retrieveAttrTypes"),
    ngsild_route(f"{BASE}/attributes/{{attr:path}}", attribute_details,
                 methods=["GET"], name="retrieveAttrTypeInfo"),
]
