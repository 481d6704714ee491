"""Discovery (clause 5.7.5 - 5.7.10): ``/types``, ``/types/{type}``, ``/attributes``,
``/attributes/{attr}``."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import ResourceNotFound
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


async def _setup(request: Request) -> tuple[list[TypeInfo], TermMap, str, str, bool]:
    broker = broker_of(request)
    accept = choose_accept(request)
    context, url = request_context(request)
    tm = await broker.resolver.term_map(context)
    tenant = await read_tenant(request, broker)
    details = flag(request.query_params, "details")
    infos = await broker.store.type_info(tenant)
    return infos, tm, accept, response_context_url(url), details


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


async def list_types(request: Request) -> Response:
    """GET /types: an EntityTypeList, or EntityType details."""
    infos, tm, accept, ctx, details = await _setup(request)
    infos.sort(key=lambda i: tm.compact(i.type))
    body: Any
    if details:
        body = [{"id": i.type, "type": "EntityType", "typeName": tm.compact(i.type),
                 "attributeNames": sorted(tm.compact(a) for a in i.attributes)} for i in infos]
    else:
        body = {"id": _list_id("EntityTypeList"), "type": "EntityTypeList",
                "typeList": [tm.compact(i.type) for i in infos]}
    return with_context(body, accept, ctx)


async def type_details(request: Request) -> Response:
    """GET /types/{type}: EntityTypeInfo with entity count and attribute details."""
    infos, tm, accept, ctx, _ = await _setup(request)
    name = check_name(request.path_params["type"], "entity type")
    iri = tm.expand(name)
    info = next((i for i in infos if i.type == iri), None)
    if info is None:
        raise ResourceNotFound(f"no entity of type {name!r} exists")
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": tm.compact(iri),
            "entityCount": info.count,
            "attributeDetails": [
                {"id": attr, "type": "Attribute", "attributeName": tm.compact(attr),
                 "attributeTypes": sorted(kinds)}
                for attr, kinds in sorted(info.attributes.items(), key=lambda kv: tm.compact(kv[0]))]}
    return with_context(body, accept, ctx)


def _attributes(infos: list[TypeInfo]) -> dict[str, tuple[set[str], set[str]]]:
    """attribute IRI -> (attribute types seen, entity type IRIs having it)."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for info in infos:
        for attr, kinds in info.attributes.items():
            kinds_seen, types_seen = out.get(attr, (set(), set()))
            out[attr] = (kinds_seen | kinds, types_seen | {info.type})
    return out


async def list_attributes(request: Request) -> Response:
    """GET /attributes: an AttributeList, or Attribute details."""
    infos, tm, accept, ctx, details = await _setup(request)
    attrs = _attributes(infos)
    names = sorted(attrs, key=tm.compact)
    body: Any
    if details:
        body = [{"id": a, "type": "Attribute", "attributeName": tm.compact(a),
                 "attributeCount": await _attribute_count(request, a),
                 "attributeTypes": sorted(attrs[a][0]),
                 "typeNames": sorted(tm.compact(t) for t in attrs[a][1])} for a in names]
    else:
        body = {"id": _list_id("AttributeList"), "type": "AttributeList",
                "attributeList": [tm.compact(a) for a in names]}
    return with_context(body, accept, ctx)


async def attribute_details(request: Request) -> Response:
    """GET /attributes/{attr}: one Attribute with its types and the entity types that have it."""
    infos, tm, accept, ctx, _ = await _setup(request)
    name = check_name(request.path_params["attr"])
    iri = tm.expand(name)
    attrs = _attributes(infos)
    if iri not in attrs:
        raise ResourceNotFound(f"no entity has an attribute {name!r}")
    kinds, types = attrs[iri]
    body = {"id": iri, "type": "Attribute", "attributeName": tm.compact(iri),
            "attributeCount": await _attribute_count(request, iri),
            "attributeTypes": sorted(kinds),
            "typeNames": sorted(tm.compact(t) for t in types)}
    return with_context(body, accept, ctx)


ROUTES = [
    ngsild_route(f"{BASE}/types", list_types, methods=["GET"], name="retrieveEntityTypes"),
    ngsild_route(f"{BASE}/types/{{type}}", type_details, methods=["GET"], name="retrieveEntityTypeInfo"),
    ngsild_route(f"{BASE}/attributes", list_attributes, methods=["GET"], name="retrieveAttrTypes"),
    ngsild_route(f"{BASE}/attributes/{{attr}}", attribute_details,
                 methods=["GET"], name="retrieveAttrTypeInfo"),
]
