"""Notifications carry only what the subscription's owner may see at delivery time (ADR 0013).

Matching inside the write stays policy-free (ADR 0006); here, just before rendering, the owner is
re-resolved against the current accounts, clients and policies (``access_for``, given by the
composition root), each entity is projected by the owner's view, and personal data is kept only
with ownership or a consent that is live *now* — so a withdrawal also applies to notifications
already queued.  Dropped items are neither sent nor counted as failures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from cityos.core.access import Access, AuditRecord
from cityos.data.ngsild.guarded import Seeing, pd_category, pd_owner
from cityos.data.ngsild.subscriptions.model import NotifyItem, Subscription

AccessFor = Callable[[dict[str, Any], str], Awaitable[Access | None]]


async def visible_items(access_for: AccessFor, sub: Subscription,
                        items: list[NotifyItem]) -> tuple[list[NotifyItem], Access | None]:
    """The items the owner of ``sub`` may receive, and the owner's access (None: nothing)."""
    assert sub.owner is not None
    access = await access_for(sub.owner, sub.tenant)
    if access is None or access.read is None:
        return [], None
    seeing = Seeing(access, access.read, await access.granted_pairs())
    kept: list[NotifyItem] = []
    for item in items:
        seen = seeing(item.entity)
        if seen is None:
            continue
        if seen is item.entity:
            kept.append(item)               # unchanged: keep the shared rendering cache
            continue
        previous = seeing(item.previous) if item.previous is not None else None
        kept.append(NotifyItem(entity=seen, previous=previous, trigger=item.trigger))
    await _audit(access, sub, kept)
    return kept, access


async def _audit(access: Access, sub: Subscription, items: list[NotifyItem]) -> None:
    if access.audit is None:
        return
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        owner = pd_owner(item.entity)
        if owner is not None:
            groups[(owner, pd_category(item.entity) or "")].append(item.entity["id"])
    if not groups:
        return
    who = access.principal
    # audited before sending: over-report a failed delivery rather than under-report one
    await access.audit.append([
        AuditRecord(event="pd.notify", actor_kind=who.kind, actor_sub=who.subject,
                    tenant=sub.tenant, client_id=who.client_id, processor_org=who.organization,
                    purpose=who.purpose, owner_id=owner, category=category,
                    targets=tuple(ids[:100]), detail={"subscription": sub.id})
        for (owner, category), ids in groups.items()])
