"""Reusable parameters, headers and responses of the NGSI-LD OpenAPI document.

Every parameter here is one the broker's code reads (``queryparams``, the route functions and
``negotiation``); limits come from :class:`~cityos.core.settings.Settings`, so the document states the
maximum page size and batch size this server actually enforces.
"""

from __future__ import annotations

from typing import Any

from cityos.core.settings import Settings
from cityos.gateway import openapi_examples as ex
from cityos.gateway.openapi_schemas import GEOMETRY_TYPES, GEORELS, ref

Schema = dict[str, Any]

_CSV = "A comma-separated list"
MAX_JOIN_LEVEL = 10  # mirrors cityos.data.ngsild.join.MAX_JOIN_LEVEL (checked by test_api_join)
INLINE_COPIES = 20  # mirrors cityos.data.ngsild.join.INLINE_COPIES
_BOOL: Schema = {"type": "boolean", "default": False}


def _query(name: str, description: str, schema: Schema, **more: Any) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema, **more}


def _csv_options(values: list[str]) -> Schema:
    return {"type": "array", "items": {"enum": values}, "uniqueItems": True}


def parameters(settings: Settings) -> dict[str, Schema]:
    """``components.parameters``; the key is what operations reference."""
    representation = ["keyValues", "simplified", "concise", "normalized", "sysAttrs"]
    return {
        # --- headers -------------------------------------------------------------------------
        "NGSILD-Tenant": {
            "name": "NGSILD-Tenant", "in": "header", "required": False,
            "description": "The tenant (e.g. one municipality in a shared deployment). Letters, digits, "
                           "`_`, `-`, `.`; up to 64. Absent = the default tenant. A write creates the "
                           "tenant; a read of a tenant that never stored anything is 404 "
                           "NonexistentTenant.",
            "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_\-.]{1,64}$"},
        },
        "Link": {
            "name": "Link", "in": "header", "required": False,
            "description": "The JSON-LD @context of the request, as "
                           '`<https://example.org/context.jsonld>; '
                           'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`. '
                           "Absent = the NGSI-LD core context only. Must not be sent with an "
                           "`application/ld+json` body (the body carries "
                           "`@context`). A remote context is fetched once and cached; if it cannot be "
                           "fetched the answer is 503 LdContextNotAvailable.",
            "schema": {"type": "string"},
        },
        # --- entity selection (GET/DELETE /entities) -------------------------------------------
        "id": _query("id", f"{_CSV} of entity ids (absolute URIs).",
                     {"type": "string"}),
        "idPattern": _query("idPattern", "A regular expression (RE2 syntax: no look-arounds or "
                            "back references; up to 256 characters) searched in the entity id, "
                            "e.g. `^urn:ngsi-ld:EvacuationSite:kobe-`.",
                            {"type": "string", "maxLength": 256}),
        "type": _query("type", "A type expression (clause 4.17): `A,B` or `A|B` = any of, `A;B` = "
                       "all of, one level of parentheses, e.g. `EvacuationSite`.", {"type": "string"}),
        "typeOfEntity": _query("type", f"{_CSV} of entity types; 404 unless the entity has one of "
                               "them.", {"type": "string"}),
        "attrs": _query("attrs", f"{_CSV} of attribute names. In a query only entities having at "
                        "least one of them match; the response keeps only these attributes.",
                        {"type": "string"}),
        "pick": _query("pick", f"{_CSV} of members to keep (attribute names, and `id`/`type`). "
                       "Not with `attrs` or `omit`.", {"type": "string"}),
        "omit": _query("omit", f"{_CSV} of members to drop (attribute names, and `id`/`type`). "
                       "Not with `pick`.", {"type": "string"}),
        "q": _query("q", "An NGSI-LD query (clause 4.9): `;` = and, `|` = or, `==` `!=` `<` `<=` `>` "
                    "`>=` `~=` (regex), `..` ranges, `attr[ja]` for a language, `attr.sub` for "
                    'sub-attributes, e.g. `occupancy<5000;openingStatus=="open"`.', {"type": "string"}),
        "georel": _query("georel", f"Geo-relationship: one of {', '.join(GEORELS)}. `near` needs "
                         "`;maxDistance==<metres>` and/or `;minDistance==<metres>`, e.g. "
                         "`near;maxDistance==1500`. Needs `geometry` and `coordinates`.",
                         {"type": "string"}),
        "geometry": _query("geometry", "The geometry type of `coordinates` (`near` takes Point).",
                           {"enum": list(GEOMETRY_TYPES)}),
        "coordinates": _query("coordinates", "The coordinates of the query geometry as a JSON "
                              "array, lon/lat, e.g. `[135.1955,34.6946]` (三ノ宮駅).", {"type": "string"}),
        # no schema defaults: Swagger UI would send them, and geoproperty alone is a 400
        "geoproperty": _query("geoproperty", "The GeoProperty the geo-query tests (`location` when "
                              "absent). Only together with `georel`.", {"type": "string"}),
        "geometryProperty": _query("geometryProperty", "With `Accept: application/geo+json`: the "
                                   "GeoProperty that becomes each Feature's `geometry` (`location` "
                                   "when absent).", {"type": "string"}),
        "scopeQ": _query("scopeQ", f"{_CSV} of scopes; `/Japan/Hyogo/#` matches the scope and all "
                         "below it, `/Japan/+` one level below.", {"type": "string"}),
        "local": _query("local", "`true` lists every entity of the tenant when no other filter is "
                        "given (otherwise a query needs id, idPattern, type, attrs, q, a geo-query or "
                        "scopeQ).", _BOOL),
        # --- paging ------------------------------------------------------------------------------
        "limit": _query("limit", f"Page size. Default {settings.default_page_size}, maximum "
                        f"{settings.max_page_size} (larger: 403 TooManyResults with `maxLimit`). "
                        "`limit=0` only with `count=true`.",
                        {"type": "integer", "minimum": 0, "maximum": settings.max_page_size,
                         "default": settings.default_page_size}),
        "offset": _query("offset", "How many matching entities to skip.",
                         {"type": "integer", "minimum": 0, "default": 0}),
        "count": _query("count", "`true` returns the number of matches in `NGSILD-Results-Count`.", _BOOL),
        # --- representation ----------------------------------------------------------------------
        "options": _query("options", "`keyValues`/`simplified`, `concise` or `normalized` (default) "
                          "choose the representation (at most one); `sysAttrs` adds `createdAt` and "
                          "`modifiedAt`.", _csv_options(representation), style="form", explode=False),
        "format": _query("format", "The representation (overrides `options`).",
                         {"enum": ["normalized", "concise", "simplified", "keyValues"]}),
        "lang": _query("lang", "Preferred languages for LanguageProperties, e.g. `ja`, `en,ja` or `*`; "
                       "each is returned as a Property with the chosen `lang`.",
                       {"type": "string", "pattern": r"^[A-Za-z0-9\-*,;.= ]{1,100}$"}),
        "datasetId": _query("datasetId", "Only the attribute instance with this `datasetId` (a URI); "
                            "`@none` = the default instance.", {"type": "string"}),
        # --- linked entity retrieval (clause 4.5.23) ----------------------------------------------
        "join": _query("join", "Linked entity retrieval. `flat`: the entities, then the entities "
                       "their Relationships and ListRelationships point to, each once (a retrieve "
                       "answers an array when a linked entity was found). `inline`: each "
                       "Relationship carries its target in `entity` (a ListRelationship in "
                       "`entityList`; with keyValues the target replaces the reference). `@none` "
                       "(default): no join. Linked entities have the same representation "
                       "(`options`, `format`, `lang`); `pick`/`omit` project them with braces, e.g. "
                       "`pick=id,refParkingSite{id,name}`. Only shown relationships are followed; "
                       "an `objectType` restricts the target's type; missing targets are skipped. "
                       f"At most {settings.max_page_size} (the maximum page size) new linked "
                       "entities are fetched per level, and an inline answer embeds at most "
                       f"{INLINE_COPIES * settings.max_page_size} entities; further references stay "
                       "unresolved.",
                       {"enum": ["flat", "inline", "@none"]}),
        "joinLevel": _query("joinLevel", "How many relationship hops `join` follows (default 1, at "
                            f"most {MAX_JOIN_LEVEL}). An entity met at a shallower depth is not "
                            "expanded again, so cycles end. Only together with `join`.",
                            {"type": "integer", "minimum": 1, "maximum": MAX_JOIN_LEVEL}),
        "containedBy": _query("containedBy", f"{_CSV} of entity ids the caller already has: "
                              "`join` neither fetches nor returns them. Only together with `join`.",
                              {"type": "string"}),
        # --- operation options -----------------------------------------------------------------
        "optionsNoOverwrite": _query("options", "`noOverwrite`: keep attributes that already exist "
                                     "(reported in a 207).", _csv_options(["noOverwrite"]),
                                     style="form", explode=False),
        "optionsUpsert": _query("options", "`replace` (default): an existing entity is replaced; "
                                "`update`: its attributes are appended/overwritten.",
                                _csv_options(["replace", "update"]), style="form", explode=False),
        "deleteAll": _query("deleteAll", "`true` deletes every instance of the attribute.", _BOOL),
        "attrDatasetId": _query("datasetId", "Delete only the instance with this `datasetId`.",
                                {"type": "string", "format": "uri"}),
        "details": _query("details", "`true` returns full descriptions instead of a list of names.",
                          _BOOL),
        "contextDetails": _query("details", "`true` returns the record (URL, localId, kind, "
                                 "createdAt) instead of the URL / the document.", _BOOL),
        "kind": _query("kind", "Only contexts of this kind.",
                       {"enum": ["Hosted", "Cached", "ImplicitlyCreated"]}),
        "reload": _query("reload", "`true`: fetch a cached remote context again now instead of "
                         "forgetting it (cached contexts only; 503 if it cannot be fetched).", _BOOL),
    }


PATH_PARAMETERS: dict[str, Schema] = {
    "entity_id": {"description": "The entity id (an absolute URI).", "schema": {"type": "string"},
                  "example": ex.SITE_ID},
    "attr": {"description": "The attribute name (compacted with the @context).",
             "schema": {"type": "string"}, "example": "occupancy"},
    "type": {"description": "The entity type name (compacted with the @context).",
             "schema": {"type": "string"}, "example": "EvacuationSite"},
    "ctx_id": {"description": "The `localId` of a hosted context (`core` is the core context), its "
                             "URL, or the URL of a cached remote context (URL-encoded).",
               "schema": {"type": "string"}, "example": "core"},
}


def headers() -> dict[str, Schema]:
    """``components.headers``: response headers."""
    return {
        "Location": {"description": "The URL of the created resource.", "schema": {"type": "string"}},
        "Link": {"description": "With `application/json` / `application/geo+json`: the @context of the "
                               'body (`rel="http://www.w3.org/ns/json-ld#context"`), plus `rel="next"` / '
                               '`rel="prev"` page links when there are more results.',
                 "schema": {"type": "string"}},
        "NGSILD-Results-Count": {"description": "The number of matches, with `count=true`.",
                                 "schema": {"type": "integer", "minimum": 0}},
    }


# status -> (component name, description, example problem name, title, detail)
_PROBLEMS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "400": ("BadRequest", "Invalid request or bad request data", [
        ("BadRequestData", "Bad request data", "entity id must be an absolute URI, got 'kobe-1'"),
        ("InvalidRequest", "Invalid request", "the body is not valid JSON: unexpected character")]),
    "403": ("TooManyResults", "Too many results: `limit` above the maximum page size", [
        ("TooManyResults", "Too many results", "limit 5000 exceeds the maximum page size 1000")]),
    "404": ("NotFound", "The entity, attribute, type, context or tenant does not exist", [
        ("ResourceNotFound", "Resource not found", f"entity {ex.SITE_ID} does not exist"),
        ("NonexistentTenant", "Nonexistent tenant", "tenant 'kobe' does not exist")]),
    "406": ("NotAcceptable", "No media type of `Accept` can be served", [
        ("NotAcceptable", "Not acceptable", "none of the media types in Accept: 'text/csv' can be "
                                            "served; use one of application/json, application/ld+json")]),
    "409": ("AlreadyExists", "An entity with this id already exists", [
        ("AlreadyExists", "Already exists", f"entity {ex.SITE_ID} already exists")]),
    "413": ("PayloadTooLarge", "The body is larger than the server's maximum", [
        ("PayloadTooLarge", "Payload too large", "the body is larger than 8388608 bytes")]),
    "415": ("UnsupportedMediaType", "`Content-Type` is not one the operation accepts", [
        ("UnsupportedMediaType", "Unsupported media type",
         "Content-Type 'text/plain' is not supported; use application/json or application/ld+json")]),
    "422": ("OperationNotSupported", "The operation is not supported", [
        ("OperationNotSupported", "Operation not supported", "this operation is not supported")]),
    "500": ("InternalError", "An unexpected error (logged on the server)", [
        ("InternalError", "Internal error", "an unexpected error occurred; it has been logged")]),
    "501": ("NoMultiTenantSupport", "Multi-tenancy is not supported", [
        ("NoMultiTenantSupport", "No multi-tenant support", "this deployment has a single tenant")]),
    "503": ("ServiceUnavailable", "Storage is down, or a remote @context cannot be fetched", [
        ("LdContextNotAvailable", "@context not available",
         "@context https://example.org/ctx.jsonld could not be fetched: ConnectTimeout"),
        ("ServiceUnavailable", "Service unavailable", "the SQLite store is not open")]),
}


def problem_ref(status: str) -> Schema:
    """A ``$ref`` to the shared response for an error status."""
    return {"$ref": f"#/components/responses/{_PROBLEMS[status][0]}"}


def responses(settings: Settings) -> dict[str, Schema]:
    """``components.responses``: one per error status.

    NGSI-LD routes send ProblemDetails as ``application/json`` (clause 5.5.3); only the app-wide
    last-resort handler of unexpected errors (500) answers ``application/problem+json``.
    """
    out: dict[str, Schema] = {}
    for status, (name, description, samples) in _PROBLEMS.items():
        examples: dict[str, Schema] = {}
        for problem_name, title, detail in samples:
            extra: dict[str, Any] = {}
            if problem_name == "TooManyResults":
                detail = (f"limit {settings.max_page_size + 1} exceeds the maximum page size "
                          f"{settings.max_page_size}")
                extra = {"maxLimit": settings.max_page_size}
            if problem_name == "PayloadTooLarge":
                detail = f"the body is larger than {settings.max_body_bytes} bytes"
            examples[problem_name] = ex.example(
                ex.problem(problem_name, int(status), title, detail, **extra), problem_name)
        media = "application/problem+json" if status == "500" else "application/json"
        out[name] = {"description": description,
                     "content": {media: {"schema": ref("ProblemDetails"), "examples": examples}}}
    return out
