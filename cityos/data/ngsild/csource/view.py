"""Registrations rendered for readers: compacted against the reader's ``@context``, and what a
read of registrations or csource subscriptions asks for (:func:`read_options`)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.negotiation import choose_accept, request_context, response_context_url
from cityos.data.ngsild.queryparams import split_list
from cityos.data.ngsild.terms import TermMap

_ORDER = ("registrationName", "description", "endpoint", "mode", "operations",
          "contextSourceInfo", "observationInterval", "managementInterval", "location",
          "observationSpace", "operationSpace", "expiresAt", "tenant", "scope", "management",
          "refreshRate")
_STATUS = ("status", "timesSent", "timesFailed", "lastSuccess", "lastFailure")
# contextSourceInfo keys whose values are credentials: readers and csource notifications see
# only REDACTED; the stored value is still sent to the source when a request is forwarded.
_CREDENTIAL_KEY = re.compile(r"authorization|token|key|secret|passw(or)?d|cookie", re.IGNORECASE)
REDACTED = "********"


def redacted_source_info(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``contextSourceInfo`` with the values of credential-like keys replaced by REDACTED."""
    return [{**kv, "value": REDACTED} if _CREDENTIAL_KEY.search(str(kv.get("key", ""))) else kv
            for kv in items]


async def read_options(request: Request, what: str) -> tuple[TermMap, str, str, bool]:
    """How a read of registrations or csource subscriptions (``what``) is to be rendered:
    (term map of the request's ``@context``, context URL to answer with, media type, sysAttrs).

    ``sysAttrs`` is the only ``options`` value these reads know; any other is a 400.
    """
    accept = choose_accept(request)
    context, url = request_context(request)
    tm: TermMap = await request.app.state.broker.resolver.term_map(context)
    options = split_list(request.query_params.get("options"))
    if any(o != "sysAttrs" for o in options):
        raise BadRequestData(f"the only option of a {what} read is sysAttrs")
    return tm, response_context_url(url), accept, "sysAttrs" in options


def render_registration(reg: Registration, tm: TermMap, *, sys_attrs: bool = False
                        ) -> dict[str, Any]:
    """The registration as an NGSI-LD ContextSourceRegistration object."""
    doc = reg.doc
    out: dict[str, Any] = {"id": reg.id, "type": doc["type"]}
    out["information"] = [_info(info, tm) for info in doc["information"]]
    for key in _ORDER:
        if key in doc:
            out[key] = doc[key]
    if isinstance(out.get("contextSourceInfo"), list):
        out["contextSourceInfo"] = redacted_source_info(out["contextSourceInfo"])
    for iri, value in (doc.get("extra") or {}).items():
        out[tm.compact(iri)] = value
    for key in _STATUS:
        if key in reg.status:
            out[key] = reg.status[key]
    if sys_attrs:
        out["createdAt"] = doc["createdAt"]
        out["modifiedAt"] = doc["modifiedAt"]
    return out


def _info(info: dict[str, Any], tm: TermMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "entities" in info:
        out["entities"] = [_entity(e, tm) for e in info["entities"]]
    for key in ("propertyNames", "relationshipNames"):
        if key in info:
            out[key] = [tm.compact(name) for name in info[key]]
    return out


def _entity(entity: dict[str, Any], tm: TermMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "id" in entity:
        out["id"] = entity["id"]
    if "idPattern" in entity:
        out["idPattern"] = entity["idPattern"]
    types = [tm.compact(t) for t in entity["types"]]
    out["type"] = types[0] if len(types) == 1 else types
    return out
