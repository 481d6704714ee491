"""``/v2/entities/{id}/attrs/{attr}`` and ``/v2/entities/{id}/attrs/{attr}/value``."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsiv2 import writes
from cityos.data.ngsiv2.errors import ATTRIBUTE_NOT_FOUND, V2Error, bad_request, not_found, v2_route
from cityos.data.ngsiv2.http import (
    JSON,
    TEXT,
    broker_of,
    json_ok,
    list_param,
    no_content,
    parse_json,
    read_raw,
)
from cityos.data.ngsiv2.mapping import entity_id, expand_type, tenant_of, write_path
from cityos.data.ngsiv2.names import face_terms
from cityos.data.ngsiv2.parse import check_attr_name, parse_attribute, to_instance
from cityos.data.ngsiv2.render import attribute_type_value, chosen_instance, render_attribute
from cityos.data.ngsiv2.routes_entities import load_entity

BASE = "/v2/entities/{entityId}/attrs/{attrName}"
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")


async def _attribute(request: Request) -> tuple[Any, Any]:
    tm = face_terms(request)
    entity = await load_entity(request)
    name = check_attr_name(request.path_params["attrName"], tm)
    instance = chosen_instance(entity["attrs"].get(tm.expand(name), []))
    if instance is None:
        raise not_found(ATTRIBUTE_NOT_FOUND)
    return tm, instance


async def get_attribute(request: Request) -> Response:
    """GET .../attrs/{attr}: ``{"type", "value", "metadata"}``."""
    tm, instance = await _attribute(request)
    return json_ok(render_attribute(instance, tm, list_param(request, "metadata")))


async def get_value(request: Request) -> Response:
    """GET .../attrs/{attr}/value, negotiated as Orion does: an object or array as JSON (with
    the first of application/json or text/plain the Accept header allows), a string, number,
    boolean or null as text/plain (strings in double quotes)."""
    tm, instance = await _attribute(request)
    value = attribute_type_value(instance, tm)[1]
    accepted = _accepted(request.headers.get("accept") or "*/*")
    payload = orjson.dumps(value)
    if isinstance(value, (dict, list)):
        if not accepted:
            raise V2Error(406, "NotAcceptable", "accepted MIME types: application/json, text/plain")
        return Response(payload, media_type=accepted[0])
    if TEXT not in accepted:
        raise V2Error(406, "NotAcceptable", "accepted MIME types: text/plain")
    return Response(payload, media_type=TEXT)


def _accepted(header: str) -> list[str]:
    """Of application/json and text/plain, those the Accept header allows, in its order."""
    out: list[str] = []
    for item in header.split(","):
        media = item.split(";")[0].strip().lower()
        expands = {"*/*": [JSON, TEXT], "application/*": [JSON], "text/*": [TEXT],
                   JSON: [JSON], TEXT: [TEXT]}.get(media, [])
        out.extend(m for m in expands if m not in out)
    return out


def _text_value(text: str) -> Any:
    """A text/plain value as Orion reads it: "quoted" string, true/false, null, else a number."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return stripped[1:-1]
    if stripped in ("true", "false", "null") or _NUMBER.match(stripped):
        return orjson.loads(stripped)
    raise bad_request("a text/plain value must be a number, true, false, null or a \"quoted\" "
                      "string")


async def _write(request: Request, change: Any) -> None:
    broker = broker_of(request)
    tm = face_terms(request)
    ld_id = entity_id(request.path_params["entityId"])
    wanted = request.query_params.get("type")
    type_iri = expand_type(tm, wanted) if wanted is not None else None
    name = check_attr_name(request.path_params["attrName"], tm)
    iri = tm.expand(name)

    def on_entity(entity: Entity) -> None:
        current = chosen_instance(entity["attrs"].get(iri, []))
        if current is None:
            raise not_found(ATTRIBUTE_NOT_FOUND)
        change(entity, iri, name, current, tm)

    await writes.write_entity(broker, tenant_of(request), ld_id, type_iri, write_path(request),
                              on_entity)


async def put_attribute(request: Request) -> Response:
    """PUT .../attrs/{attr}: the attribute (which must exist) becomes the body."""
    broker = broker_of(request)
    body, _ = await read_raw(request, broker)
    raw = parse_json(body)
    now = utc_now()
    tm = face_terms(request)
    new = parse_attribute(check_attr_name(request.path_params["attrName"], tm), raw, tm, now,
                          key_values=False)

    def change(entity: Entity, iri: str, name: str, current: Any, tm: Any) -> None:
        writes.put_attribute(entity, iri, new, now, override_metadata=True)

    await _write(request, change)
    return no_content()


async def delete_attribute(request: Request) -> Response:
    """DELETE .../attrs/{attr}."""
    now = utc_now()

    def change(entity: Entity, iri: str, name: str, current: Any, tm: Any) -> None:
        writes.apply_delete_attrs(entity, [iri], now, tm.compact)

    await _write(request, change)
    return no_content()


async def put_value(request: Request) -> Response:
    """PUT .../attrs/{attr}/value: JSON (any value) or text/plain; the attribute keeps its type."""
    broker = broker_of(request)
    body, media = await read_raw(request, broker, (JSON, TEXT))
    if media == JSON:
        value = parse_json(body)
    else:
        try:
            value = _text_value(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise bad_request("a text/plain value must be UTF-8") from None
    now = utc_now()

    def change(entity: Entity, iri: str, name: str, current: Any, tm: Any) -> None:
        v2type = attribute_type_value(current, tm)[0]
        new = to_instance(name, v2type, value, now, f"attribute {name}")
        for member in ("sub", "unitCode", "observedAt"):
            if member in current:
                new[member] = current[member]
        writes.put_attribute(entity, iri, new, now, override_metadata=True)

    await _write(request, change)
    return no_content()


ROUTES = [
    v2_route(BASE, get_attribute, methods=["GET"], name="v2GetAttributeData"),
    v2_route(BASE, put_attribute, methods=["PUT"], name="v2UpdateAttributeData"),
    v2_route(BASE, delete_attribute, methods=["DELETE"], name="v2RemoveSingleAttribute"),
    v2_route(f"{BASE}/value", get_value, methods=["GET"], name="v2GetAttributeValue"),
    v2_route(f"{BASE}/value", put_value, methods=["PUT"], name="v2UpdateAttributeValue"),
]
