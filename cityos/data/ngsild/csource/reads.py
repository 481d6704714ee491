"""Distributed reads: GET /entities/{id} and GET /entities fan out to matching registrations.

The local store and every matching ``inclusive`` / ``exclusive`` / ``redirect`` source are asked
at once; ``auxiliary`` sources only when none of those knows anything (clause 4.3.6.4).  The
answers are merged (entities.py), paged here and rendered by the normal entity routes, with an
``NGSILD-Warning`` header naming every source that failed.  A request that already passed through
this broker (``Via``) is answered from the local store only, so two cities registering each other
cannot loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from cityos.core.access import current_access
from cityos.core.problems import ResourceNotFound
from cityos.data.ngsild.csource.entities import from_remote, merge_all
from cityos.data.ngsild.csource.forward import Reply, SourceQuestion
from cityos.data.ngsild.csource.index import index_of
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.guarded import remote_filter
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import check_uri
from cityos.data.ngsild.store.base import QueryPlan
from cityos.data.ngsild.terms import TermMap

# parameters that shape the rendering, which the broker does itself on the merged result
_NOT_FORWARDED = {"options", "format", "lang", "pick", "omit", "join", "joinLevel",
                  "geometryProperty", "datasetId", "limit", "offset", "count", "local",
                  "containedBy", "entityMap"}


class Federation(SourceQuestion):
    """The registrations that may answer one request, and what they answered."""

    def _params(self, regs_attrs: set[str], tm: TermMap, extra: dict[str, str]
                ) -> list[tuple[str, str]]:
        params = [(k, v) for k, v in self.request.query_params.multi_items()
                  if k not in _NOT_FORWARDED]
        if regs_attrs and "attrs" not in self.request.query_params:
            params.append(("attrs", ",".join(tm.compact(a) for a in sorted(regs_attrs))))
        params.extend(extra.items())
        return params

    async def _ask(self, regs: list[Registration], path: str, tm: TermMap,
                   extra: dict[str, str], body: bytes | None = None) -> list[Reply]:
        calls: list[Any] = []
        for reg in regs:
            if body is not None:        # POST /entityOperations/query: the Query body as is
                calls.append((reg, "POST", path, list(extra.items()), body))
                continue
            attrs = set().union(*(i.attrs for i in reg.information)) \
                if all(i.attrs for i in reg.information) else set()
            calls.append((reg, "GET", path, self._params(attrs, tm, extra), None))
        replies = await self.forwarder.send_all(calls)
        self.replies.extend(replies)
        return replies

    async def retrieve(self, store: Any, tenant: str, entity_id: str, types: list[str] | None,
                       attrs: frozenset[str] | None, tm: TermMap) -> Entity:
        """One entity from the store and the sources; ResourceNotFound (+ warnings) if none."""
        check_uri(entity_id, "entity id")
        wanted = set(types) if types else None
        regs = [] if self.loop else [
            r for r in self.regs
            if "retrieveEntity" in r.allowed and r.covers(entity_id, wanted, attrs)]
        path = f"/entities/{entity_id}"
        primary = [r for r in regs if r.mode != "auxiliary"]
        asking = asyncio.ensure_future(self._ask(primary, path, tm, {"options": "sysAttrs"}))
        try:
            local = await store.get(tenant, entity_id)     # while the sources are asked
        finally:
            replies = await asking
        if local is not None and wanted and not wanted & set(local["type"]):
            local = None
        found = [local] if local is not None else []
        found += self._entities(replies, tm)
        if not found:
            auxiliary = [r for r in regs if r.mode == "auxiliary"]
            found = self._entities(await self._ask(auxiliary, path, tm,
                                                   {"options": "sysAttrs"}), tm)
        found = [e for e in found if e["id"] == entity_id]
        if not found:
            raise ResourceNotFound(f"entity {entity_id} does not exist", headers=self.headers)
        [entity] = merge_all([[e] for e in found])
        return entity

    async def query(self, store: Any, plan: QueryPlan, tm: TermMap, *,
                    batch_body: bytes | None = None) -> tuple[list[Entity], int | None]:
        """One page of matching entities from the store and the sources, and a total.

        ``batch_body``: the request was POST /entityOperations/query with this ``Query`` body,
        which is forwarded as it is to registrations serving ``queryBatch``.
        """
        window = plan.offset + plan.limit
        operation = "queryEntity" if batch_body is None else "queryBatch"
        path = "/entities" if batch_body is None else "/entityOperations/query"
        regs = [] if self.loop else [r for r in self.regs
                                     if operation in r.allowed and _may_match(r, plan)]
        if not regs:
            page, total = await store.query(plan)
            return list(page), total
        extra = {"options": "sysAttrs", "limit": str(min(max(window, 1), 1000))}
        if plan.count:
            extra["count"] = "true"
        primary = [r for r in regs if r.mode != "auxiliary"]
        asking = asyncio.ensure_future(self._ask(primary, path, tm, extra, batch_body))
        try:      # the local store is queried while the sources are asked
            local, local_total = await store.query(replace(plan, offset=0, limit=window))
        finally:
            replies = await asking
        remote = [self._entities([reply], tm) for reply in replies]
        if not local and not any(remote):
            auxiliary = [r for r in regs if r.mode == "auxiliary"]
            replies = await self._ask(auxiliary, path, tm, extra, batch_body)
            remote = [self._entities([reply], tm) for reply in replies]
        matches = plan.python_filter()
        groups = [local, *[[e for e in group if matches(e)] for group in remote]]
        merged = merge_all(groups)
        total = None
        if plan.count:
            fetched = sum(len(g) for g in groups)
            total = (local_total or 0) + sum(_remote_total(r) for r in replies) - \
                (fetched - len(merged))
            total = max(total, len(merged))
        return merged[plan.offset:plan.offset + plan.limit], total

    def _entities(self, replies: list[Reply], tm: TermMap) -> list[Entity]:
        out: list[Entity] = []
        visible = remote_filter(current_access())
        for reply in replies:
            if not reply.ok:
                continue
            items = reply.body if isinstance(reply.body, list) else [reply.body]
            for item in items:
                entity = from_remote(item, tm)
                if entity is not None:
                    seen = visible(entity)
                    if seen is not None:
                        out.append(seen)
                elif reply.warning is None:
                    reply.warning = self.forwarder._warning(
                        111, reply.reg, "the answer holds an invalid entity")
        return out


def _remote_total(reply: Reply) -> int:
    if reply.ok and reply.headers is not None:
        raw = reply.headers.get("ngsild-results-count", "")
        if raw.isdigit():
            return int(raw)
    return len(reply.body) if reply.ok and isinstance(reply.body, list) else 0


def _may_match(reg: Registration, plan: QueryPlan) -> bool:
    """Whether ``reg`` may hold entities the plan selects (types, ids, attrs)."""
    types = None
    if plan.types is not None:
        types = {t for group in plan.types.alternatives for t in group}
    ids = list(plan.ids) if plan.ids else [None]
    attrs = set(plan.attrs) if plan.attrs else None
    return any(reg.covers(entity_id, types, attrs) for entity_id in ids)


async def federation_for(request: Request, tenant: str) -> Federation | None:
    """The request's federation, or ``None`` when it is local only (no registration, or
    ``local=true``); cheap in the usual case of a tenant without registrations."""
    regs = await index_of(request.app).for_tenant(tenant)
    if not regs or request.query_params.get("local") == "true":
        return None
    return Federation(request, regs, tenant)
