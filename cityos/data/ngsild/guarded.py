"""The guarded entity store: every entity read and write of a request passes the caller's access.

It wraps the engine (``broker.store``), so the NGSI-LD, temporal and NGSI v2 faces, batch
operations, imports and provisioning are all narrowed in one place (ADR 0013).  With no
:class:`~cityos.core.access.Access` in the context (internal callers, insecure mode) it is a
pass-through.  For a caller it:

* hides entities whose types its read policies do not name, and personal data (``dataOwner``)
  that is neither its own nor covered by a live consent for its organization, purpose and
  ``pd:<category>`` scopes — a hidden entity looks exactly like an absent one (404, not counted);
* projects entities to the attributes its policies name, before ``q``/``attrs``/``geoQ`` are
  evaluated (a hidden attribute cannot be used as a probe);
* refuses (403) a write touching an entity or attribute its write policies do not cover, and any
  change of ``dataOwner``/``dataCategory`` without ``pd.manage``;
* audits every read of personal data (who, whose, which category, purpose, when) before the
  answer leaves; if the audit cannot be written, the read fails (fail closed).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from cityos.core.access import PD_CATEGORY, PD_OWNER, Access, AccessView, AuditRecord, current_access
from cityos.core.problems import Forbidden, Problem, ResourceNotFound
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.qlang import Exists
from cityos.data.ngsild.qlang_parse import AttrPath
from cityos.data.ngsild.store.base import QueryPlan, TypeInfo, WriteFn, WriteSet

Pairs = frozenset[tuple[str, str]]
# "has a dataOwner": as a q condition the attribute index narrows it to the personal-data
# entities (a plain ``attrs`` filter would read the whole tenant on SQLite)
PD_MARKED = Exists(AttrPath(PD_OWNER, (), ()))


def name_allows(names: frozenset[str] | None, iri: str) -> bool:
    """A policy name allows an IRI: ``*``/None for all, an IRI exactly, a short name by the IRI's
    last segment (``WeatherObserved`` allows ``https://smartdatamodels.org/.../WeatherObserved``)."""
    if names is None or "*" in names or iri in names:
        return True
    tail = iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    if ":" in tail and "://" not in iri:
        tail = tail.rsplit(":", 1)[-1]
    return tail in names


def pd_owner(entity: Entity) -> str | None:
    instances = entity["attrs"].get(PD_OWNER)
    if not instances:
        return None
    first = instances[0]
    value = first.get("object", first.get("value"))
    return str(value) if value is not None else None


def pd_category(entity: Entity) -> str | None:
    instances = entity["attrs"].get(PD_CATEGORY)
    if not instances:
        return None
    value = instances[0].get("value")
    return str(value) if value is not None else None


class Seeing:
    """What one caller may see, with the consent pairs read once for this request."""

    def __init__(self, access: Access, view: AccessView | None, granted: Pairs) -> None:
        self.access, self.view, self.granted = access, view, granted

    def types_allowed(self, types: Iterable[str]) -> bool:
        if self.view is None:
            return False
        allowed = self.view.types
        return allowed is None or any(name_allows(allowed, t) for t in types)

    def pd_covered(self, entity: Entity) -> bool:
        owner = pd_owner(entity)
        if owner is None:
            return True
        who = self.access.principal
        if owner == who.owner_urn:
            return True
        category = pd_category(entity) or ""
        return category in who.pd_categories and (owner, category) in self.granted

    def __call__(self, entity: Entity) -> Entity | None:
        """The entity as the caller sees it, or None."""
        if not self.types_allowed(entity["type"]) or not self.pd_covered(entity):
            return None
        assert self.view is not None
        attrs = self.view.attributes
        if attrs is None:
            return entity
        shown = {k: v for k, v in entity["attrs"].items() if name_allows(attrs, k)}
        return {**entity, "attrs": shown}


class GuardedStore:
    """The engine behind the caller's access (see the module docstring)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # contexts, documents, outbox, tenants, temporal helpers: not entity data
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # the composition root and the IoT runtime set the engine's observer through the broker
        if name == "inner":
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    async def _seeing(self, access: Access, view: AccessView | None) -> Seeing:
        return Seeing(access, view, await access.granted_pairs())

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        entity: Entity | None = await self.inner.get(tenant, entity_id)
        access = current_access()
        if access is None or entity is None:
            return entity
        view = access.read
        if view is not None and view.unrestricted and PD_OWNER not in entity["attrs"]:
            return entity           # the common case, without building a Seeing
        seen = (await self._seeing(access, view))(entity)
        if seen is not None:
            await _audit_reads(access, tenant, [entity])
        return seen

    async def query(self, plan: QueryPlan) -> tuple[list[Entity], int | None]:
        access = current_access()
        if access is None:
            result: tuple[list[Entity], int | None] = await self.inner.query(plan)
            return result
        seeing = await self._seeing(access, access.read)
        page, count = await self.inner.query(dataclasses.replace(plan, access=seeing))
        shown = [e for e in (seeing(entity) for entity in page) if e is not None]
        await _audit_reads(access, plan.tenant, page)
        return shown, count

    async def type_info(self, tenant: str) -> list[TypeInfo]:
        infos: list[TypeInfo] = await self.inner.type_info(tenant)
        access = current_access()
        if access is None:
            return infos
        seeing = await self._seeing(access, access.read)
        # personal-data entities the caller may not see are not counted (no leak through counts)
        hidden: dict[str, int] = defaultdict(int)
        pd_plan = QueryPlan(tenant=tenant, attrs=frozenset({PD_OWNER}), q=PD_MARKED,
                            limit=1_000_000)
        for entity in (await self.inner.query(pd_plan))[0]:
            if not seeing.pd_covered(entity):
                for t in entity["type"]:
                    hidden[t] += 1
        shown = []
        for info in infos:
            count = info.count - hidden.get(info.type, 0)
            if count > 0 and seeing.types_allowed([info.type]):
                attrs = info.attributes if seeing.view is None or seeing.view.attributes is None \
                    else {k: v for k, v in info.attributes.items()
                          if name_allows(seeing.view.attributes, k)}
                shown.append(TypeInfo(info.type, count, attrs))
        return shown

    # -- writes --------------------------------------------------------------------------------
    async def write(self, tenant: str, ids: list[str], fn: WriteFn) -> Any:
        access = current_access()
        if access is None:
            return await self.inner.write(tenant, ids, fn)
        seeing = await self._seeing(access, access.write)

        def guarded(current: dict[str, Entity | None]) -> WriteSet:
            result = fn(current)
            refused: dict[str, Problem] = {}
            for entity in result.upserts:
                try:
                    before = current.get(entity["id"])
                    if before is not None:
                        _check_writable(seeing, before)
                    _check_change(seeing, before, entity)
                except (Forbidden, ResourceNotFound) as problem:
                    refused.setdefault(entity["id"], problem)
            for entity_id in result.deletes:
                before = current.get(entity_id)
                try:
                    if before is not None:
                        _check_writable(seeing, before)
                except (Forbidden, ResourceNotFound) as problem:
                    refused.setdefault(entity_id, problem)
            if not refused:
                return result
            if result.refused is None:
                raise next(iter(refused.values()))     # one entity: the whole write is refused
            # a batch: the others are written, each refused one is reported
            result.upserts = [e for e in result.upserts if e["id"] not in refused]
            result.deletes = [i for i in result.deletes if i not in refused]
            for entity_id, refusal in refused.items():
                result.refused(entity_id, refusal)
            return result

        return await self.inner.write(tenant, ids, guarded)

    async def delete_matching(self, plan: QueryPlan) -> int:
        access = current_access()
        if access is None:
            deleted: int = await self.inner.delete_matching(plan)
            return deleted
        seeing = await self._seeing(access, access.write)

        def writable(entity: Entity) -> Entity | None:
            return entity if seeing.types_allowed(entity["type"]) and seeing.pd_covered(entity) \
                and _attrs_writable(seeing, entity["attrs"]) else None

        gone: int = await self.inner.delete_matching(dataclasses.replace(plan, access=writable))
        return gone

    # -- temporal history ----------------------------------------------------------------------
    async def temporal_entity(self, tenant: str, entity_id: str) -> Any:
        record = await self.inner.temporal_entity(tenant, entity_id)
        access = current_access()
        if access is None or record is None:
            return record
        return record if await self._temporal_visible(access, tenant, record) else None

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[Any]:
        access = current_access()
        if access is None:
            return list(await self.inner.temporal_entity_page(tenant, ids, types, after_id, limit))
        kept: list[Any] = []
        while len(kept) < limit:
            records = await self.inner.temporal_entity_page(tenant, ids, types, after_id, limit)
            for record in records:
                if await self._temporal_visible(access, tenant, record):
                    kept.append(record)
            if len(records) < limit:
                return kept
            after_id = records[-1].id
        return kept[:limit] if len(kept) > limit else kept

    async def temporal_attributes(self, tenant: str, entity_id: str) -> list[str]:
        names: list[str] = await self.inner.temporal_attributes(tenant, entity_id)
        access = current_access()
        if access is None or access.read is None or access.read.attributes is None:
            return names
        return [n for n in names if name_allows(access.read.attributes, n)]

    async def _temporal_visible(self, access: Access, tenant: str, record: Any) -> bool:
        seeing = await self._seeing(access, access.read)
        if not seeing.types_allowed(record.types):
            return False
        live: Entity | None = await self.inner.get(tenant, record.id)
        if live is not None:
            if not seeing.pd_covered(live):
                return False
            await _audit_reads(access, tenant, [live])
            return True
        # a deleted entity: its history is personal data when it ever had an owner
        if PD_OWNER in await self.inner.temporal_attributes(tenant, record.id):
            return access.principal.kind == "system"
        return True

    async def _temporal_write_check(self, tenant: str, entity_id: str) -> None:
        access = current_access()
        if access is None:
            return
        record = await self.inner.temporal_entity(tenant, entity_id)
        seeing = await self._seeing(access, access.write)
        types = record.types if record is not None else []
        if access.write is None or (record is not None and not seeing.types_allowed(types)):
            raise Forbidden(f"no policy allows changing the history of {entity_id}")

    async def temporal_write(self, tenant: str, entity: Any, rows: list[Any]) -> bool:
        access = current_access()
        if access is not None:
            seeing = await self._seeing(access, access.write)
            if not seeing.types_allowed(entity.types):
                raise Forbidden(f"no policy allows writing history of {entity.entity_id}")
            await self._temporal_write_check(tenant, entity.entity_id)
        written: bool = await self.inner.temporal_write(tenant, entity, rows)
        return written

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        await self._temporal_write_check(tenant, entity_id)
        done: bool = await self.inner.temporal_delete(tenant, entity_id)
        return done

    async def temporal_delete_attribute(self, tenant: str, entity_id: str, *args: Any) -> int:
        await self._temporal_write_check(tenant, entity_id)
        done: int = await self.inner.temporal_delete_attribute(tenant, entity_id, *args)
        return done

    async def temporal_patch_instance(self, tenant: str, entity_id: str, *args: Any) -> bool:
        await self._temporal_write_check(tenant, entity_id)
        done: bool = await self.inner.temporal_patch_instance(tenant, entity_id, *args)
        return done

    async def temporal_delete_instance(self, tenant: str, entity_id: str, *args: Any) -> bool:
        await self._temporal_write_check(tenant, entity_id)
        done: bool = await self.inner.temporal_delete_instance(tenant, entity_id, *args)
        return done


def _attrs_writable(seeing: Seeing, attrs: dict[str, Any]) -> bool:
    view = seeing.view
    return view is None or view.attributes is None or all(
        name_allows(view.attributes, name) for name in attrs)


def _check_writable(seeing: Seeing, entity: Entity) -> None:
    if not (seeing.pd_covered(entity) or seeing.access.may_manage_pd):
        # someone's personal data the caller may not see: exactly as if it did not exist
        raise ResourceNotFound(f"entity {entity['id']} does not exist")
    if not seeing.types_allowed(entity["type"]):
        raise Forbidden(f"no policy allows changing entity {entity['id']}")


def _check_change(seeing: Seeing, before: Entity | None, after: Entity) -> None:
    """Every attribute added, changed or removed must be writable; so must the new types."""
    if not seeing.types_allowed(after["type"]):
        raise Forbidden(f"no policy allows writing entities of the type of {after['id']}")
    old = before["attrs"] if before is not None else {}
    new = after["attrs"]
    changed = {n for n in new if new[n] != old.get(n)} | {n for n in old if n not in new}
    view = seeing.view
    if view is not None and view.attributes is not None:
        refused = sorted(n for n in changed if not name_allows(view.attributes, n))
        if refused:
            raise Forbidden(f"no policy allows writing attribute {refused[0]} of {after['id']}")
    if (PD_OWNER in changed or PD_CATEGORY in changed) and not seeing.access.may_manage_pd:
        raise Forbidden("marking personal data (dataOwner, dataCategory) needs the pd.manage "
                        "permission")


async def _audit_reads(access: Access, tenant: str, entities: list[Entity]) -> None:
    """One audit record per (owner, category) of the personal data in ``entities``."""
    if access.audit is None:
        return
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entity in entities:
        owner = pd_owner(entity)
        if owner is not None:
            groups[(owner, pd_category(entity) or "")].append(entity["id"])
    if not groups:
        return
    who = access.principal
    await access.audit.append([
        AuditRecord(event="pd.read", actor_kind=who.kind, actor_sub=who.subject, tenant=tenant,
                    client_id=who.client_id, processor_org=who.organization,
                    purpose=who.purpose, owner_id=owner, category=category,
                    targets=tuple(ids[:100]), request_id=access.request_id,
                    detail={"action": access.action})
        for (owner, category), ids in groups.items()])



def remote_filter(access: Access | None) -> Callable[[Entity], Entity | None]:
    """What a caller may see of entities a context source returned (federation, ADR 0013).

    The caller's type and attribute views apply as to local data; personal data is not federated
    yet (no consent travels between cities), so a remote entity carrying ``dataOwner`` is dropped.
    """
    if access is None:
        return lambda entity: entity
    seeing = Seeing(access, access.read, frozenset())

    def keep(entity: Entity) -> Entity | None:
        return None if pd_owner(entity) is not None else seeing(entity)

    return keep
