"""The OpenAPI 3.1 document of the NGSI-LD API (SI-CS-1), built from the app's own routes.

:func:`build_openapi` walks :data:`cityos.data.ngsild.ROUTES` (plus ``/health``) and describes each
route under its Starlette ``name`` as ``operationId``; the description of every operation lives in
:data:`OPERATIONS`, written by hand from the route functions.  A route without an entry there is left
out of the document, and ``tests/gateway`` fails until it is described.

Schemas are in :mod:`~cityos.gateway.openapi_schemas`, shared parameters and error responses in
:mod:`~cityos.gateway.openapi_params`, Japanese examples in :mod:`~cityos.gateway.openapi_examples`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Route

from cityos import __version__
from cityos.core.settings import Settings
from cityos.gateway import openapi_examples as ex
from cityos.gateway.openapi_params import PATH_PARAMETERS, headers, parameters, problem_ref, responses
from cityos.gateway.openapi_schemas import component_schemas, ref

Schema = dict[str, Any]

JSON, JSON_LD, GEO_JSON, MERGE_PATCH = ("application/json", "application/ld+json",
                                        "application/geo+json", "application/merge-patch+json")
_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class Operation:
    """The hand-written part of one operation; path, method and operationId come from the route."""

    tag: str
    summary: str
    description: str
    params: tuple[str, ...] = ()
    body: Schema | None = None
    responses: dict[str, Schema] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------

def _with_context(value: Any) -> Any:
    if isinstance(value, dict):
        return value if "@context" in value else {**value, "@context": ex.CORE_CONTEXT}
    if isinstance(value, list):
        return [_with_context(v) if isinstance(v, dict) else v for v in value]
    return value


def _body(schema: Schema, examples: dict[str, Schema], *, media: Iterable[str] = (JSON, JSON_LD),
          description: str = "") -> Schema:
    """A required request body in the given media types; JSON-LD examples gain ``@context``."""
    content: dict[str, Schema] = {}
    for media_type in media:
        if media_type == JSON_LD:
            content[media_type] = {
                "schema": schema,
                "examples": {k: {**v, "value": _with_context(v["value"])} for k, v in examples.items()},
            }
        else:
            content[media_type] = {"schema": schema, "examples": examples}
    body: Schema = {"required": True, "content": content}
    if description:
        body["description"] = description
    return body


def _json_ld(schema: Schema, examples: dict[str, Schema], *, geo: Schema | None = None,
             geo_examples: dict[str, Schema] | None = None, paged: bool = False,
             description: str = "OK") -> Schema:
    """A 200 in application/json (+ Link header), application/ld+json and maybe geo+json."""
    link: Schema = {"Link": {"$ref": "#/components/headers/Link"}}
    if paged:
        link["NGSILD-Results-Count"] = {"$ref": "#/components/headers/NGSILD-Results-Count"}
    content: dict[str, Schema] = {
        JSON: {"schema": schema, "examples": examples},
        JSON_LD: {"schema": schema,
                  "examples": {k: {**v, "value": _with_context(v["value"])} for k, v in examples.items()}},
    }
    if geo is not None:
        content[GEO_JSON] = {"schema": geo, "examples": geo_examples or {}}
    return {"description": description, "headers": link, "content": content}


def _no_content(description: str) -> Schema:
    return {"description": description}


def _created(description: str, content: Schema | None = None) -> Schema:
    out: Schema = {"description": description,
                   "headers": {"Location": {"$ref": "#/components/headers/Location"}}}
    if content is not None:
        out["content"] = content
    return out


def _json(schema: Schema, examples: dict[str, Schema], description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema, "examples": examples}}}


def _batch_207() -> Schema:
    return _json(ref("BatchOperationResult"),
                 {"partial": ex.example(ex.BATCH_RESULT, "東遊園地 created, こうべ小学校 existed")},
                 "Some entries failed: the ids that succeeded and an error per failed entry")


def _update_207() -> Schema:
    return _json(ref("UpdateResult"),
                 {"partial": ex.example(ex.UPDATE_RESULT, "options=noOverwrite: occupancy kept")},
                 "Some attributes were not changed")


_E = ex.example
_ENTITY_BODY = {"normalized": _E(ex.SITE_NORMALIZED, "指定緊急避難場所 東遊園地 (normalized)"),
                "concise": _E(ex.SITE_CONCISE, "指定避難所 こうべ小学校 (concise)")}
_ENTITY_OUT = {"normalized": _E(ex.SITE_RETURNED, "normalized (observedAt returned in UTC)"),
               "keyValues": _E(ex.SITE_KEY_VALUES, "options=keyValues")}
_GEO_QUERY = "attrs=name,capacity,occupancy&lang=ja"
_FEATURES = {"features": _E(ex.FEATURES, f"Accept: application/geo+json; {_GEO_QUERY}")}
_ENTITY_OUT_SCHEMA: Schema = {"anyOf": [ref("Entity"), ref("EntityConcise"), ref("EntityKeyValues")]}
_QUERY_PARAMS = ("id", "idPattern", "type", "attrs", "pick", "omit", "q", "georel", "geometry",
                 "coordinates", "geoproperty", "geometryProperty", "scopeQ", "local", "limit", "offset",
                 "count", "options", "format", "lang", "datasetId", "join", "joinLevel", "containedBy")
_READ = ("NGSILD-Tenant", "Link")
_WRITE_ERRORS = ("400", "413", "415", "503")
_REPLACE_BODY = {k: v for k, v in ex.SITE_NORMALIZED.items() if k != "id"}

# ---------------------------------------------------------------------------------------------
# the operations, by operationId (= Starlette route name)
# ---------------------------------------------------------------------------------------------

OPERATIONS: dict[str, Operation] = {
    "health": Operation(
        "System", "Liveness / 稼働確認",
        "Always 200 while the process serves requests; names the storage engine in use.",
        responses={"200": _json(ref("Health"), {"ok": _E({"status": "ok", "version": __version__,
                                                           "engine": "sqlite"}, "SQLite")}, "Alive")}),
    # --- entities ------------------------------------------------------------------------------
    "createEntity": Operation(
        "Entities", "Create an entity / エンティティ作成",
        "Creates one entity (normalized or concise). Attribute and type names are expanded with the "
        "@context (`Link` header for `application/json`, `@context` member for "
        "`application/ld+json`). `observedAt` may carry any offset such as `+09:00`; it is stored in "
        "UTC. The whole body is validated before anything is written.",
        _READ, _body(ref("EntityInput"), _ENTITY_BODY),
        {"201": _created("Created; `Location` is `/ngsi-ld/v1/entities/{id}`")},
        ("400", "409", "413", "415", "503")),
    "queryEntity": Operation(
        "Entities", "Query entities / エンティティ検索",
        "Entities matching every given filter: `id`, `idPattern`, `type`, `attrs`, `q`, a geo-query "
        "(`georel` + `geometry` + `coordinates`), `scopeQ`; at least one of them (or `local=true`) is "
        "needed. Results are paged with `limit`/`offset` (`Link: rel=next`), counted with "
        "`count=true`, and shaped by `options`/`format`, `attrs`/`pick`/`omit`, `lang` and "
        "`datasetId`. `join=flat|inline` (with `joinLevel`) adds the linked entities; paging and "
        "the count concern the matching entities only. `Accept: application/geo+json` returns a "
        "FeatureCollection.",
        _READ + _QUERY_PARAMS, None,
        {"200": _json_ld({"type": "array", "items": _ENTITY_OUT_SCHEMA}, {
            k: {**v, "value": [v["value"]]} for k, v in _ENTITY_OUT.items()},
            geo=ref("FeatureCollection"), geo_examples=_FEATURES, paged=True,
            description="The matching entities (one page)")},
        ("400", "403", "404", "406", "503")),
    "deleteEntities": Operation(
        "Entities", "Delete entities by query / 条件指定で一括削除",
        "Deletes every entity matching the filters (the same as GET /entities: at least one filter, "
        "or `local=true` to delete all entities of the tenant). Irreversible.",
        (*_READ, "id", "idPattern", "type", "attrs", "q", "georel", "geometry", "coordinates",
         "geoproperty", "scopeQ", "local"), None,
        {"204": _no_content("Deleted (also when nothing matched)")},
        ("400", "403", "404", "503")),
    "retrieveEntity": Operation(
        "Entities", "Retrieve an entity / エンティティ取得",
        "One entity, shaped like a query result (`options`, `format`, `attrs`, `pick`, `omit`, "
        "`lang`, `datasetId`; `Accept: application/geo+json` gives a Feature). 404 also when the "
        "entity has none of the attributes `attrs` names. With `join=inline` its relationships "
        "carry the linked entities; with `join=flat` the answer is an array, the entity first, "
        "then its linked entities (just the entity when none was found; a FeatureCollection for "
        "GeoJSON).",
        (*_READ, "typeOfEntity", "attrs", "pick", "omit", "options", "format", "lang", "datasetId",
         "geometryProperty", "join", "joinLevel", "containedBy"), None,
        {"200": _json_ld({"anyOf": [*_ENTITY_OUT_SCHEMA["anyOf"],
                                    {"type": "array", "items": _ENTITY_OUT_SCHEMA}]},
                         _ENTITY_OUT, geo={"anyOf": [ref("Feature"), ref("FeatureCollection")]},
                         geo_examples={"feature": _E(ex.FEATURES["features"][0], _GEO_QUERY)},
                         description="The entity")},
        ("400", "404", "406", "503")),
    "replaceEntity": Operation(
        "Entities", "Replace an entity / エンティティ置換",
        "The entity becomes exactly the body (its attributes; `id` and `type` may be left out, an "
        "`id` must equal the URL's).",
        _READ, _body(ref("EntityFragment"), {"normalized": _E(_REPLACE_BODY, "東遊園地")}),
        {"204": _no_content("Replaced")}, ("400", "404", "413", "415", "503")),
    "mergeEntity": Operation(
        "Entities", "Merge-patch an entity / エンティティのマージ更新",
        "JSON merge-patch semantics (clause 5.6.17): given attributes are merged member by member, "
        "`\"urn:ngsi-ld:null\"` deletes an attribute, other attributes are kept. Also accepts "
        "`application/merge-patch+json`.",
        _READ, _body(ref("MergePatchEntity"), {"patch": _E(ex.MERGE_PATCH, "満員になった / full")},
                     media=(JSON, JSON_LD, MERGE_PATCH)),
        {"204": _no_content("Merged")}, ("400", "404", "413", "415", "503")),
    "deleteEntity": Operation(
        "Entities", "Delete an entity / エンティティ削除", "Deletes the entity and all its attributes.",
        ("NGSILD-Tenant",), None, {"204": _no_content("Deleted")}, ("400", "404", "503")),
    # --- attributes ----------------------------------------------------------------------------
    "appendAttrs": Operation(
        "Attributes", "Append attributes / 属性追加",
        "Adds the attributes of the body, overwriting existing ones unless `options=noOverwrite`; "
        "with `noOverwrite` the kept ones are reported in a 207.",
        (*_READ, "optionsNoOverwrite"),
        _body(ref("EntityFragment"), {"append": _E(ex.APPEND, "避難者数と案内")}),
        {"204": _no_content("All attributes appended"), "207": _update_207()},
        ("400", "404", "413", "415", "503")),
    "updateAttrs": Operation(
        "Attributes", "Update attributes / 属性更新",
        "Changes the attributes of the body that exist; the others are reported in a 207.",
        _READ, _body(ref("EntityFragment"), {"update": _E(ex.APPEND, "避難者数と案内")}),
        {"204": _no_content("All attributes updated"), "207": _update_207()},
        ("400", "404", "413", "415", "503")),
    "partialAttrUpdate": Operation(
        "Attributes", "Partially update an attribute / 属性の部分更新",
        "Merges the given members (value, metadata, sub-attributes) into the attribute; the type "
        "may be left out. `datasetId` in the body selects the instance.",
        _READ, _body({"type": "object", "description": "Members of one attribute, type optional."},
                     {"partial": _E(ex.PARTIAL_ATTRIBUTE, "避難者数の更新")}),
        {"204": _no_content("Updated")}, ("400", "404", "413", "415", "503")),
    "replaceAttrs": Operation(
        "Attributes", "Replace an attribute / 属性置換",
        "The attribute (or the instance with the body's `datasetId`) becomes the body.",
        _READ, _body({"anyOf": [ref("ConciseAttribute"),
                                {"type": "array", "items": ref("NormalizedAttribute")}]},
                     {"attribute": _E(ex.ATTRIBUTE, "避難者数")}),
        {"204": _no_content("Replaced")}, ("400", "404", "413", "415", "503")),
    "deleteAttrs": Operation(
        "Attributes", "Delete an attribute / 属性削除",
        "Deletes the default instance, the one with `datasetId`, or all of them with `deleteAll=true`.",
        (*_READ, "attrDatasetId", "deleteAll"), None, {"204": _no_content("Deleted")},
        ("400", "404", "503")),
    # --- batch ---------------------------------------------------------------------------------
    "batchEntityCreation": Operation(
        "Batch operations", "Batch create / 一括作成",
        "Creates each entity of the array; entries fail one by one (207). With "
        "`application/ld+json` every entry carries its own `@context`.",
        _READ, _body(ref("EntityBatch"), {"sites": _E([ex.SITE_NORMALIZED, ex.SITE_CONCISE],
                                                      "避難場所 2 件")}),
        {"201": _json(ref("EntityIdList"), {"ids": _E([ex.SITE_ID, ex.SCHOOL_ID], "both created")},
                      "All created: their ids"), "207": _batch_207()}, _WRITE_ERRORS),
    "batchEntityUpsert": Operation(
        "Batch operations", "Batch upsert / 一括作成・更新",
        "Creates missing entities and replaces (`options=replace`, default) or updates "
        "(`options=update`) existing ones.",
        (*_READ, "optionsUpsert"),
        _body(ref("EntityBatch"), {"sites": _E([ex.SITE_NORMALIZED, ex.SITE_CONCISE], "避難場所 2 件")}),
        {"201": _json(ref("EntityIdList"), {"created": _E([ex.SCHOOL_ID], "one was new")},
                      "Some were created: the new ids"),
         "204": _no_content("All existed and were replaced / updated"), "207": _batch_207()},
        _WRITE_ERRORS),
    "batchEntityUpdate": Operation(
        "Batch operations", "Batch update / 一括属性更新",
        "Appends the attributes of each fragment to its existing entity (`options=noOverwrite` keeps "
        "existing attributes); missing entities fail in a 207.",
        (*_READ, "optionsNoOverwrite"), _body(ref("FragmentBatch"), {
            "update": _E([{"id": ex.SITE_ID, **ex.APPEND}], "東遊園地の避難者数")}),
        {"204": _no_content("All updated"), "207": _batch_207()}, _WRITE_ERRORS),
    "batchEntityMerge": Operation(
        "Batch operations", "Batch merge / 一括マージ更新",
        "Merge-patches each entity (as PATCH /entities/{id}); missing entities fail in a 207.",
        _READ, _body(ref("FragmentBatch"), {"merge": _E([{"id": ex.SITE_ID, **ex.MERGE_PATCH}], "満員")}),
        {"204": _no_content("All merged"), "207": _batch_207()}, _WRITE_ERRORS),
    "batchEntityDelete": Operation(
        "Batch operations", "Batch delete / 一括削除",
        "Deletes the entities whose ids the body lists; missing ones fail in a 207.",
        ("NGSILD-Tenant",), _body(ref("EntityIdBatch"), {"ids": _E([ex.SITE_ID, ex.SCHOOL_ID], "2 件")},
                                  media=(JSON,)),
        {"204": _no_content("All deleted"), "207": _batch_207()}, _WRITE_ERRORS),
    "queryBatch": Operation(
        "Batch operations", "Query with a body / 検索 (POST)",
        "GET /entities with the filters in a `Query` body (handy for long polygons). Paging and "
        "representation stay URL parameters; `join`, `joinLevel` and `containedBy` may be given "
        "in the body or in the URL (the URL wins).",
        (*_READ, "limit", "offset", "count", "options", "format", "lang", "join", "joinLevel",
         "containedBy"),
        _body(ref("Query"), {"near": _E(ex.QUERY, "三ノ宮駅から 1.5 km 以内の開設中の避難場所")}),
        {"200": _json_ld({"type": "array", "items": _ENTITY_OUT_SCHEMA},
                         {"normalized": _E([ex.SITE_RETURNED], "normalized")},
                         geo=ref("FeatureCollection"), geo_examples=_FEATURES, paged=True,
                         description="The matching entities (one page)")},
        ("400", "403", "404", "406", "413", "415", "503")),
    # --- discovery -----------------------------------------------------------------------------
    "retrieveEntityTypes": Operation(
        "Discovery", "List entity types / エンティティタイプ一覧",
        "The entity types of the tenant as an EntityTypeList, or with `details=true` one EntityType "
        "(with its attribute names) per type.",
        (*_READ, "details"), None,
        {"200": _json_ld({"oneOf": [ref("EntityTypeList"), {"type": "array", "items": ref("EntityType")}]},
                         {"list": _E(ex.TYPE_LIST, "EntityTypeList"),
                          "details": _E([{"id": ex.TYPE_INFO["id"], "type": "EntityType",
                                          "typeName": "EvacuationSite",
                                          "attributeNames": ["capacity", "location", "name"]}],
                                        "details=true")})},
        ("400", "404", "406", "503")),
    "retrieveEntityTypeInfo": Operation(
        "Discovery", "Entity type details / エンティティタイプ詳細",
        "How many entities have the type and which attributes (with their attribute types) they have.",
        _READ, None, {"200": _json_ld(ref("EntityTypeInfo"), {"info": _E(ex.TYPE_INFO, "EvacuationSite")})},
        ("400", "404", "406", "503")),
    "retrieveAttrTypes": Operation(
        "Discovery", "List attributes / 属性一覧",
        "The attribute names used by the tenant's entities as an AttributeList, or with "
        "`details=true` one Attribute per name.",
        (*_READ, "details"), None,
        {"200": _json_ld({"oneOf": [ref("AttributeList"), {"type": "array", "items": ref("Attribute")}]},
                         {"list": _E(ex.ATTRIBUTE_LIST, "AttributeList")})},
        ("400", "404", "406", "503")),
    "retrieveAttrTypeInfo": Operation(
        "Discovery", "Attribute details / 属性詳細",
        "The attribute types, entity types and entity count of one attribute.",
        _READ, None, {"200": _json_ld(ref("Attribute"), {"info": _E(ex.ATTRIBUTE_INFO, "occupancy")})},
        ("400", "404", "406", "503")),
    # --- @context ------------------------------------------------------------------------------
    "addContext": Operation(
        "@context", "Host a @context / @context の登録",
        "Stores the `@context` of the body (which must resolve) and serves it at the path given in "
        "`Location` (`/ngsi-ld/v1/jsonldContexts/{localId}`); the broker resolves that URL, whatever "
        "host name it is reached by, without any network access.",
        ("NGSILD-Tenant",), _body(ref("ContextDocument"), {"kobe": _E(ex.HOSTED_CONTEXT, "神戸市の語彙")},
                                  media=(JSON, JSON_LD)),
        {"201": _created("Hosted; `Location` is the context's path")}, ("400", "413", "415", "503")),
    "listContexts": Operation(
        "@context", "List @contexts / @context 一覧",
        "Hosted contexts of the tenant, the core context and the cached remote ones: their URLs, or "
        "with `details=true` their records.",
        ("NGSILD-Tenant", "contextDetails", "kind"), None,
        {"200": _json({"oneOf": [{"type": "array", "items": {"type": "string", "format": "uri"}},
                                 {"type": "array", "items": ref("ContextRecord")}]},
                      {"urls": _E([ex.CORE_CONTEXT], "URLs")}, "The contexts")},
        ("400", "406", "503")),
    "serveContext": Operation(
        "@context", "Serve a @context / @context の取得",
        "The context document (`core` = the NGSI-LD core context shipped with CityOS), as "
        "`application/json` or, when `Accept` asks for it, `application/ld+json`; with "
        "`details=true` its record instead.",
        ("NGSILD-Tenant", "contextDetails"), None,
        {"200": {"description": "The document, or its record",
                 "content": {media: {"schema": {"oneOf": [ref("ContextDocument"), ref("ContextRecord")]},
                                     "examples": {"kobe": _E(ex.HOSTED_CONTEXT, "神戸市の語彙")}}
                             for media in (JSON, JSON_LD)}}},
        ("400", "404", "406", "503")),
    "deleteContext": Operation(
        "@context", "Delete a @context / @context の削除",
        "Deletes a hosted context, or forgets a cached remote one (`reload=true`: it is fetched again "
        "on next use). The core context cannot be deleted.",
        ("NGSILD-Tenant", "reload"), None, {"204": _no_content("Deleted")}, ("400", "404", "503")),
}

TAGS = [
    {"name": "Entities", "description": "エンティティ: create, query, retrieve, replace, merge, delete"},
    {"name": "Attributes", "description": "属性: append, update, replace, delete attributes of one entity"},
    {"name": "Batch operations", "description": "一括操作: /entityOperations (many entities per request)"},
    {"name": "Discovery", "description": "型・属性の発見: which entity types and attributes exist"},
    {"name": "@context", "description": "JSON-LD @context の管理: host, list, serve, delete"},
    {"name": "Subscriptions",
     "description": "サブスクリプション: notify HTTP or MQTT endpoints of changes"},
    {"name": "Temporal", "description": "時系列: the history of every attribute, aggregations"},
    {"name": "Context sources",
     "description": "分散データ: register other systems and cities; requests are forwarded to them"},
    {"name": "IoT agent",
     "description": "IoTエージェント: FIWARE-compatible provisioning and device measures"},
    {"name": "Devices", "description": "デバイス管理: devices and their state"},
    {"name": "System", "description": "運用: health"},
]


def _description(settings: Settings) -> str:
    return (
        "CityOS の NGSI-LD コンテキストブローカー API (ETSI GS CIM 009). 都市のデータ — 避難場所、"
        "気象、交通 — をエンティティとして登録・検索します。\n\n"
        "The NGSI-LD context broker of CityOS (ETSI GS CIM 009), described from its code.\n\n"
        "* **Requests** — bodies are `application/json` (the @context in a `Link` header) or "
        "`application/ld+json` (`@context` in the body); anything else is 415. `PATCH "
        "/entities/{id}` also takes `application/merge-patch+json`.\n"
        "* **Responses** — chosen by `Accept`: `application/json` (the @context in a `Link` "
        "header), `application/ld+json`, and for entities `application/geo+json`; otherwise 406.\n"
        "* **Tenants** — the `NGSILD-Tenant` header selects one; absent = the default tenant.\n"
        "* **Times** — `observedAt` may be given with any offset (`+09:00`); the broker answers in "
        "UTC (`Z`).\n"
        "* **Errors** — ProblemDetails with an NGSI-LD error `type` URI, sent as `application/json` "
        "(clause 5.5.3). Any operation may also answer 500 InternalError (logged, "
        "`application/problem+json`) and 405 for a method the path does not have.\n"
        f"* **Limits of this server** — page size {settings.default_page_size} by default, at most "
        f"{settings.max_page_size}; at most {settings.max_batch_size} entities per batch; bodies up "
        f"to {settings.max_body_bytes} bytes (else 413)."
    )


def _openapi_path(path: str) -> str:
    return _PATH_PARAM.sub(r"{\1}", path)


def _operation(op_id: str, op: Operation) -> Schema:
    out: Schema = {"operationId": op_id, "tags": [op.tag], "summary": op.summary,
                   "description": op.description}
    if op.params:
        out["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in op.params]
    if op.body is not None:
        out["requestBody"] = op.body
    out["responses"] = {**op.responses, **{status: problem_ref(status) for status in op.errors}}
    return out


def _path_parameters(path: str) -> list[Schema]:
    return [{"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
            for name in _PATH_PARAM.findall(path)]


def _extra_paths() -> dict[str, Schema]:
    """Path items written by other modules (subscriptions, temporal), keyed by OpenAPI path."""
    from cityos.gateway.openapi_subscriptions import subscription_paths

    paths: dict[str, Schema] = dict(subscription_paths())
    from cityos.gateway.openapi_csource import csource_paths

    paths.update(csource_paths())
    from cityos.gateway.openapi_iot import iot_paths

    paths.update(iot_paths())
    from cityos.gateway.openapi_ngsiv2 import ngsiv2_paths

    paths.update(ngsiv2_paths())
    from cityos.gateway.openapi_systems import systems_paths

    paths.update(systems_paths())
    try:
        from cityos.gateway.openapi_temporal import temporal_paths
    except ImportError:   # the temporal API is optional
        return paths
    paths.update(temporal_paths())
    return paths


def _operation_ids(paths: dict[str, Schema]) -> set[str]:
    return {op["operationId"] for item in paths.values() for op in item.values()
            if isinstance(op, dict) and "operationId" in op}


def documented_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str, str]]:
    """(OpenAPI path, method, operationId) of every route this module can describe."""
    out: list[tuple[str, str, str]] = [("/health", "get", "health")]
    known = OPERATIONS.keys() | _operation_ids(_extra_paths())
    for route in routes:
        if not isinstance(route, Route) or route.name not in known:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((route.path, method.lower(), route.name))
    return out


def build_openapi(settings: Settings, server_url: str | None = None,
                  routes: Iterable[BaseRoute] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` (default: the NGSI-LD routes) plus ``/health``."""
    if routes is None:
        from cityos.data.ngsild import ROUTES

        routes = ROUTES
    paths: dict[str, Schema] = {}
    extra = _extra_paths()
    for path, method, op_id in documented_routes(routes):
        if op_id not in OPERATIONS:
            continue          # described in ``extra``
        item = paths.setdefault(_openapi_path(path), {})
        if "parameters" not in item and _PATH_PARAM.search(path):
            item["parameters"] = _path_parameters(path)
        item[method] = _operation(op_id, OPERATIONS[op_id])
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "CityOS NGSI-LD API", "version": __version__,
                 "summary": "都市OS CityOS の NGSI-LD コンテキストブローカー / NGSI-LD context broker",
                 "description": _description(settings),
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "externalDocs": {"description": "ETSI GS CIM 009 (NGSI-LD API)",
                         "url": "https://www.etsi.org/committee/cim"},
        "tags": TAGS,
        "paths": {**paths, **extra},
        "components": {"schemas": component_schemas(settings), "parameters": parameters(settings),
                       "headers": headers(), "responses": responses(settings)},
    }
    try:
        from cityos.gateway.openapi_temporal import temporal_parameters
    except ImportError:   # the temporal API is optional
        pass
    else:
        doc["components"]["parameters"].update(temporal_parameters())
    if server_url:
        doc["servers"] = [{"url": server_url, "description": "This CityOS server / このサーバー"}]
    return doc
