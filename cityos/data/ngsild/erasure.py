"""Erasure of a person's data when their account is deleted (AU-UM-1, APPI Art. 35).

Every entity whose ``dataOwner`` names the account is deleted in every tenant, together with its
temporal history, as an internal caller (the operator who deletes an account need not be able to
read the resident's data to erase it).
"""

from __future__ import annotations

from typing import Any

from cityos.core.access import ACCOUNT_URN, PD_OWNER, acting_as
from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.guarded import PD_MARKED, pd_owner
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store.base import QueryPlan

PAGE = 1000


async def erase_personal_data(broker: Broker, account_id: str) -> int:
    """Delete every entity (and its history) owned by ``account_id``; how many were deleted."""
    owner = ACCOUNT_URN + account_id

    def owned(entity: Entity) -> Entity | None:
        return entity if pd_owner(entity) == owner else None

    erased = 0
    with acting_as(None):
        store: Any = broker.store       # the entity store with its temporal history
        for tenant in await store.tenants():
            plan = QueryPlan(tenant=tenant, attrs=frozenset({PD_OWNER}), q=PD_MARKED, access=owned,
                             limit=PAGE)
            while True:
                page, _ = await store.query(plan)
                if not page:
                    break
                ids = [e["id"] for e in page]
                erased += await store.delete_matching(QueryPlan(
                    tenant=tenant, ids=tuple(ids), access=owned, limit=len(ids)))
                for entity_id in ids:
                    await store.temporal_delete(tenant, entity_id)
                if len(page) < PAGE:
                    break
    return erased
