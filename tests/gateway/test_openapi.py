"""The content of the NGSI-LD OpenAPI document: parameters, errors, schemas and examples are true.

The examples are not only valid against their schemas: they are sent to the broker, which must
accept them and answer exactly what the response examples show.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cityos.core import problems
from cityos.core.settings import Settings
from cityos.data.ngsild import geojson, geoquery, model
from cityos.gateway import openapi_examples as ex
from cityos.gateway import openapi_schemas
from cityos.gateway.openapi_ngsild import build_openapi

NGSILD_SOURCES = Path(model.__file__).parent
DOC = build_openapi(Settings.load(database_url="sqlite://"), "http://cityos.test")
OPERATIONS = [(path, method, op) for path, item in DOC["paths"].items()
              for method, op in item.items() if method != "parameters"]


def test_mirrored_broker_constants_are_up_to_date() -> None:
    assert openapi_schemas.VALUE_KEY == model.VALUE_KEY
    assert openapi_schemas.ATTRIBUTE_TYPES == model.ATTRIBUTE_TYPES
    assert openapi_schemas.GEOMETRY_TYPES == geojson.GEOMETRY_TYPES
    assert openapi_schemas.GEOMETRY_COLLECTION == geojson.GEOMETRY_COLLECTION
    assert openapi_schemas.GEORELS == geoquery.GEORELS


def test_every_query_parameter_the_broker_reads_is_documented() -> None:
    read: set[str] = set()
    for source in NGSILD_SOURCES.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        read |= set(re.findall(r"params\.get\(\s*\"(\w+)\"", text))
        read |= set(re.findall(r"_bool_param\(\s*request,\s*\"(\w+)\"", text))
    read |= {"limit", "offset"}  # read through page_bounds' integer(name, ...)
    documented = {p["name"] for p in DOC["components"]["parameters"].values() if p["in"] == "query"}
    assert read, "no parameter found: has the broker's code moved?"
    assert read - documented == set()


def test_every_ngsild_operation_takes_the_tenant_header() -> None:
    for path, method, op in OPERATIONS:
        if path.startswith("/ngsi-ld/"):
            refs = [p.get("$ref") for p in op.get("parameters", [])]
            assert "#/components/parameters/NGSILD-Tenant" in refs, (method, path)


def test_bodies_and_negotiation_have_their_error_statuses() -> None:
    for path, method, op in OPERATIONS:
        statuses = set(op["responses"])
        if "requestBody" in op:
            assert "400" in statuses, (method, path)
        if not path.startswith("/ngsi-ld/") and path != "/health":
            # the FIWARE-compatible faces (NGSI v2, the IoT agent) keep FIWARE's conventions:
            # UltraLight bodies are text/plain and the IoT agent's 201 carries no Location
            continue
        if "requestBody" in op:
            assert {"413", "415"} <= statuses, (method, path)
            assert set(op["requestBody"]["content"]) <= {
                "application/json", "application/ld+json", "application/merge-patch+json"}
        for status, response in op["responses"].items():
            if status == "200":  # reads negotiate Accept
                assert "406" in statuses or path == "/health", (method, path)
            if status == "201" and method == "post" and "entityOperations" not in path:
                assert "Location" in response["headers"], (method, path)


def test_error_responses_name_every_ngsi_ld_error_type() -> None:
    uris: set[str] = set()
    pending: list[type[problems.Problem]] = [problems.Problem]
    while pending:
        cls = pending.pop()
        uris.add(cls.type_uri)
        pending.extend(cls.__subclasses__())
    enum = DOC["components"]["schemas"]["ProblemDetails"]["properties"]["type"]["enum"]
    assert set(enum) == uris
    assert {problems.NGSI_LD_ERRORS + n for n in ("BadRequestData", "TooManyResults", "NonexistentTenant",
                                                  "LdContextNotAvailable", "NoMultiTenantSupport")} <= uris
    declared = {example["value"]["status"]
                for response in DOC["components"]["responses"].values()
                for content in response["content"].values()
                for example in content["examples"].values()}
    assert {400, 403, 404, 406, 409, 413, 415, 422, 500, 501, 503} <= declared


def _registry() -> Registry:
    resource: Resource = Resource.from_contents(DOC, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:cityos:openapi", resource)
    return registry


def _absolute(schema: Any) -> Any:
    text = json.dumps(schema).replace('"#/components/', '"urn:cityos:openapi#/components/')
    return json.loads(text)


def _examples() -> list[tuple[str, Any, Any]]:
    found: list[tuple[str, Any, Any]] = []
    for path, method, op in OPERATIONS:
        blocks = [("request", op["requestBody"])] if "requestBody" in op else []
        for status, response in op["responses"].items():
            if "$ref" in response:
                response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            blocks.append((status, response))
        for where, block in blocks:
            for media, content in block.get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    found.append((f"{method} {path} {where} {media} {name}", content["schema"],
                                  example["value"]))
    return found


def test_every_example_is_valid_against_its_schema() -> None:
    registry = _registry()
    examples = _examples()
    assert len(examples) > 100
    failures = []
    for where, schema, value in examples:
        errors = list(OAS31Validator(_absolute(schema), registry=registry).iter_errors(value))
        if errors:
            failures.append(f"{where}: {errors[0].message[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("value", [ex.SITE_NORMALIZED, ex.SITE_CONCISE])
def test_entities_validate_as_entity_input(value: dict[str, Any]) -> None:
    schema = _absolute({"$ref": "#/components/schemas/EntityInput"})
    assert not list(OAS31Validator(schema, registry=_registry()).iter_errors(value))


def test_a_bad_entity_fails_the_schema() -> None:
    schema = _absolute({"$ref": "#/components/schemas/Entity"})
    bad = {"id": ex.SITE_ID, "type": "EvacuationSite", "capacity": {"type": "Property"}}
    assert list(OAS31Validator(schema, registry=_registry()).iter_errors(bad))


async def test_the_examples_are_what_the_broker_does(client: httpx.AsyncClient) -> None:
    base = "/ngsi-ld/v1"
    created = await client.post(f"{base}/entities", json=ex.SITE_NORMALIZED)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{base}/entities/{ex.SITE_ID}"
    concise = await client.post(f"{base}/entities", json=ex.SITE_CONCISE)
    assert concise.status_code == 201, concise.text

    entity = await client.get(f"{base}/entities/{ex.SITE_ID}")
    assert entity.json() == ex.SITE_RETURNED  # observedAt +09:00 comes back in UTC
    simplified = await client.get(f"{base}/entities/{ex.SITE_ID}", params={"options": "keyValues"})
    assert simplified.json() == ex.SITE_KEY_VALUES
    features = await client.get(f"{base}/entities", params={
        "type": "EvacuationSite", "attrs": "name,capacity,occupancy", "lang": "ja", "id": ex.SITE_ID},
        headers={"Accept": "application/geo+json"})
    assert features.json() == ex.FEATURES

    query = await client.post(f"{base}/entityOperations/query", json=ex.QUERY)
    assert query.status_code == 200, query.text
    assert [e["id"] for e in query.json()] == [ex.SITE_ID]

    types = (await client.get(f"{base}/types")).json()
    assert types["type"] == "EntityTypeList" and types["typeList"] == ex.TYPE_LIST["typeList"][:1]
    info = (await client.get(f"{base}/types/EvacuationSite")).json()
    assert {k: v for k, v in info.items() if k != "attributeDetails"} == \
        {k: v for k, v in ex.TYPE_INFO.items() if k != "attributeDetails"}
    assert all(a in info["attributeDetails"] for a in ex.TYPE_INFO["attributeDetails"])
    assert (await client.get(f"{base}/attributes/occupancy")).json() == ex.ATTRIBUTE_INFO

    append = await client.post(f"{base}/entities/{ex.SITE_ID}/attrs", json=ex.APPEND,
                               params={"options": "noOverwrite"})
    assert append.status_code == 207 and append.json() == ex.UPDATE_RESULT
    merge = await client.patch(f"{base}/entities/{ex.SITE_ID}", content=json.dumps(ex.MERGE_PATCH),
                               headers={"Content-Type": "application/merge-patch+json"})
    assert merge.status_code == 204, merge.text
    partial = await client.patch(f"{base}/entities/{ex.SITE_ID}/attrs/occupancy",
                                 json=ex.PARTIAL_ATTRIBUTE)
    assert partial.status_code == 204, partial.text
    replace = await client.put(f"{base}/entities/{ex.SITE_ID}/attrs/occupancy", json=ex.ATTRIBUTE)
    assert replace.status_code == 204, replace.text

    batch = await client.post(f"{base}/entityOperations/create",
                              json=[ex.SITE_NORMALIZED, ex.SITE_CONCISE])
    assert batch.status_code == 207
    assert [e["error"]["type"] for e in batch.json()["errors"]] == \
        [ex.BATCH_RESULT["errors"][0]["error"]["type"]] * 2

    hosted = await client.post(f"{base}/jsonldContexts", content=json.dumps(ex.HOSTED_CONTEXT),
                               headers={"Content-Type": "application/ld+json"})
    assert hosted.status_code == 201, hosted.text


async def test_the_limit_error_example_matches_the_broker(client: httpx.AsyncClient,
                                                          settings: Settings) -> None:
    doc = (await client.get("/openapi.json")).json()
    content = doc["components"]["responses"]["TooManyResults"]["content"]
    assert list(content) == ["application/json"]  # NGSI-LD errors are JSON (clause 5.5.3)
    sample = content["application/json"]["examples"]["TooManyResults"]["value"]
    response = await client.get("/ngsi-ld/v1/entities",
                                params={"type": "EvacuationSite", "limit": settings.max_page_size + 1})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == sample
