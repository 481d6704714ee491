"""Context source registration actions: create, read, update, delete (clause 5.9, 5.10).

Each validates the whole input first, enforces the conflict rules of clause 5.9.2.4, then writes
one generic document; the in-memory index (index.py) is updated at once so the next entity
request on this node already sees the change.
"""

from __future__ import annotations

import copy
from typing import Any

from cityos.core.problems import AlreadyExists, BadRequestData, ResourceNotFound
from cityos.data.ngsild.csource.csub_notify import registration_changed
from cityos.data.ngsild.csource.errors import Conflict
from cityos.data.ngsild.csource.forward import endpoint_policy
from cityos.data.ngsild.csource.index import RegistrationIndex
from cityos.data.ngsild.csource.model import KIND, TYPE, Registration, parse_members, parse_registration
from cityos.data.ngsild.csource.operations import check_operations
from cityos.data.ngsild.payload import check_uri, utc_now
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr
from cityos.data.ngsild.terms import TermMap


async def create_registration(index: RegistrationIndex, tenant: str, body: Any,
                              tm: TermMap) -> str:
    """POST /csourceRegistrations: the new registration's id."""
    doc = parse_registration(body, tm)
    reg = Registration.from_doc(doc, tenant)
    _check_endpoint(index, reg)
    await check_conflicts(index, reg)
    if not await index.store.put_document(KIND, tenant, reg.id, doc, create=True):
        raise AlreadyExists(f"registration {reg.id} already exists")
    index.put(reg)
    await registration_changed(index, index.resolver, tenant, None, reg)
    return reg.id


async def get_registration(index: RegistrationIndex, tenant: str, reg_id: str) -> Registration:
    """One registration; ResourceNotFound when there is none."""
    check_uri(reg_id, "registration id")
    doc = await stored_document(index, KIND, tenant, reg_id, "registration")
    reg = Registration.from_doc(doc, tenant)
    known = index.get(tenant, reg_id)
    if known is not None:
        reg.status = known.status
    return reg


async def stored_document(index: RegistrationIndex, kind: str, tenant: str, doc_id: str,
                          what: str) -> dict[str, Any]:
    """The stored document ``doc_id`` of ``kind`` (a registration or a csource subscription),
    without the store's ``_tenant`` member; ResourceNotFound naming ``what`` when there is none."""
    doc: dict[str, Any] | None = await index.store.get_document(kind, tenant, doc_id)
    if doc is None:
        raise ResourceNotFound(f"{what} {doc_id} does not exist")
    doc.pop("_tenant", None)
    return doc


async def list_registrations(index: RegistrationIndex, tenant: str) -> list[Registration]:
    """Every registration of the tenant (expired ones included: they are still resources)."""
    out: list[Registration] = []
    for doc in await index.store.list_documents(KIND, tenant):
        doc.pop("_tenant", None)
        reg = Registration.from_doc(doc, tenant)
        known = index.get(tenant, reg.id)
        if known is not None:
            reg.status = known.status
        out.append(reg)
    return out


async def update_registration(index: RegistrationIndex, tenant: str, reg_id: str, body: Any,
                              tm: TermMap) -> None:
    """PATCH /csourceRegistrations/{id}: the given members replace the stored ones."""
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the body must be a non-empty JSON object of registration members")
    if "id" in body and body["id"] != reg_id:
        raise BadRequestData("the body's id differs from the registration id")
    if "type" in body and body["type"] != TYPE:
        raise BadRequestData(f"type must be {TYPE!r}")
    current = await get_registration(index, tenant, reg_id)
    changes = parse_members(body, tm, partial=True)
    doc = copy.deepcopy(current.doc)
    extra = changes.pop("extra", None)
    if extra:
        doc.setdefault("extra", {}).update(extra)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)      # expiresAt: null removes the expiry
        else:
            doc[key] = value
    doc["operations"] = check_operations(doc.get("operations"), doc.get("mode", "inclusive"))
    doc["modifiedAt"] = utc_now()
    reg = Registration.from_doc(doc, tenant)
    _check_endpoint(index, reg)
    if {"information", "mode"} & set(changes):
        await check_conflicts(index, reg)
    await index.store.put_document(KIND, tenant, reg_id, doc)
    index.put(reg)
    await registration_changed(index, index.resolver, tenant, current, reg)


async def delete_registration(index: RegistrationIndex, tenant: str, reg_id: str) -> None:
    """DELETE /csourceRegistrations/{id}."""
    before = await get_registration(index, tenant, reg_id)
    if not await index.store.delete_document(KIND, tenant, reg_id):
        raise ResourceNotFound(f"registration {reg_id} does not exist")
    index.drop(tenant, reg_id)
    await registration_changed(index, index.resolver, tenant, before, None)


def _check_endpoint(index: RegistrationIndex, reg: Registration) -> None:
    """The SSRF policy of notifications also guards forwarding targets (400 when refused)."""
    endpoint_policy(index.settings).check(reg.endpoint)


async def check_conflicts(index: RegistrationIndex, reg: Registration) -> None:
    """409 Conflict for an exclusive or redirect registration over existing data (5.9.2.4).

    exclusive: an existing entity with a registered id holds one of the registered attributes
    (any attribute when none are named), or another exclusive registration already claims the
    same entity and attribute.  redirect: any existing entity matches the registration.
    """
    if reg.mode not in ("exclusive", "redirect"):
        return
    store, tenant = index.store, reg.tenant
    for info in reg.information:
        for entity_info in info.entities or []:
            if reg.mode == "exclusive" and entity_info.id is not None:
                entity = await store.get(tenant, entity_info.id)
                if entity is not None and (not info.attrs or info.attrs & set(entity["attrs"])):
                    raise Conflict(f"entity {entity_info.id} already holds attributes that the "
                                   "exclusive registration claims")
            if reg.mode == "redirect":
                plan = QueryPlan(tenant=tenant,
                                 types=TypeExpr(tuple(frozenset({t})
                                                      for t in entity_info.types)),
                                 ids=(entity_info.id,) if entity_info.id else None,
                                 id_pattern=entity_info.id_pattern, limit=1)
                found, _ = await store.query(plan)
                if found:
                    raise Conflict(f"entity {found[0]['id']} exists locally, so it cannot be "
                                   "redirected to a context source")
    if reg.mode == "exclusive":
        for other in await list_registrations(index, tenant):
            if other.id != reg.id and other.mode == "exclusive" and _overlap(reg, other):
                raise Conflict(f"registration {other.id} already claims these attributes "
                               "exclusively")


def _overlap(a: Registration, b: Registration) -> bool:
    for info in a.information:
        for entity_info in info.entities:
            if entity_info.id is not None and b.covers(entity_info.id, set(entity_info.types),
                                                       info.attrs or None):
                return True
    return False
