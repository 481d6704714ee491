"""``/v2`` (the entry point), ``/version`` (Orion's shape) and ``/v2/types``."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos import __version__
from cityos.data.ngsild import TermMap
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr
from cityos.data.ngsiv2.errors import not_found, v2_route
from cityos.data.ngsiv2.http import broker_of, json_ok, options_of
from cityos.data.ngsiv2.mapping import expand_type, tenant_of
from cityos.data.ngsiv2.names import face_terms
from cityos.data.ngsiv2.query import page
from cityos.data.ngsiv2.render import attribute_type_value, chosen_instance

# the Orion release whose NGSI v2 behaviour this face follows; FIWARE tools read this number
ORION_COMPATIBLE = "3.10.1"
# how many entities of a type are read to list its attributes' v2 types
TYPE_SCAN = 1000
_STARTED = time.time()


async def entry_point(request: Request) -> Response:
    """GET /v2: the API's resources."""
    return json_ok({"entities_url": "/v2/entities", "types_url": "/v2/types",
                    "subscriptions_url": "/v2/subscriptions",
                    "registrations_url": "/v2/registrations"})


def _uptime() -> str:
    seconds = int(time.time() - _STARTED)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} d, {hours} h, {minutes} m, {secs} s"


async def version(request: Request) -> Response:
    """GET /version in Orion's shape, so FIWARE tools accept the server."""
    return json_ok({"orion": {
        "version": ORION_COMPATIBLE, "uptime": _uptime(), "git_hash": "cityos",
        "compile_time": "n/a", "compiled_by": "cityos", "compiled_in": "python",
        "release_date": "n/a", "machine": "n/a", "doc": "/docs",
        "libversions": {"cityos": __version__}}, "cityos": {"version": __version__}})


async def _attr_types(request: Request, tm: TermMap, type_iri: str) -> dict[str, Any]:
    broker = broker_of(request)
    plan = QueryPlan(tenant=tenant_of(request), types=TypeExpr((frozenset({type_iri}),)),
                     limit=TYPE_SCAN)
    entities, _ = await broker.store.query(plan)
    seen: dict[str, list[str]] = {}
    for entity in entities:
        for iri, instances in entity["attrs"].items():
            instance = chosen_instance(instances)
            if instance is None:
                continue
            kinds = seen.setdefault(tm.compact(iri), [])
            kind = attribute_type_value(instance, tm)[0]
            if kind not in kinds:
                kinds.append(kind)
    return {name: {"types": kinds} for name, kinds in seen.items()}


async def list_types(request: Request) -> Response:
    """GET /v2/types (``options=count,values``, ``limit``, ``offset``)."""
    broker = broker_of(request)
    tm = face_terms(request)
    options = options_of(request, ("count", "values", "noAttrDetail"))
    limit, offset = page(request.query_params)
    infos = sorted(await broker.store.type_info(tenant_of(request)), key=lambda i: i.type)
    chosen = infos[offset:offset + limit]
    body: list[Any]
    if "values" in options:
        body = [tm.compact(info.type) for info in chosen]
    else:
        body = [{"type": tm.compact(info.type), "attrs": await _attr_types(request, tm, info.type),
                 "count": info.count} for info in chosen]
    headers = {"Fiware-Total-Count": str(len(infos))} if "count" in options else None
    return json_ok(body, headers=headers)


async def retrieve_type(request: Request) -> Response:
    """GET /v2/types/{type}: its attributes (with their v2 types) and entity count."""
    broker = broker_of(request)
    tm = face_terms(request)
    type_iri = expand_type(tm, request.path_params["entityType"])
    for info in await broker.store.type_info(tenant_of(request)):
        if info.type == type_iri:
            return json_ok({"attrs": await _attr_types(request, tm, type_iri),
                            "count": info.count})
    raise not_found("Entity type not found")


ROUTES = [
    v2_route("/v2", entry_point, methods=["GET"], name="v2RetrieveApiResources"),
    v2_route("/version", version, methods=["GET"], name="v2Version"),
    v2_route("/v2/types", list_types, methods=["GET"], name="v2ListEntityTypes"),
    v2_route("/v2/types/{entityType}", retrieve_type, methods=["GET"], name="v2RetrieveEntityType"),
]
