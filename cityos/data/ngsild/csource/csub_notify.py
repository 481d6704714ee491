"""csourceNotifications: who to tell when a registration changes, and a small sender.

Registrations change rarely, so matching reads the tenant's csource subscriptions from the store
each time.  Each notification is one POST in its own task (a slow receiver delays nobody), checked
against the SSRF policy first, with ``CITYOS_NOTIFICATION_TIMEOUT``; it is tried once (no retry,
unlike entity notifications) and counted in the subscription's ``notification`` member.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson

from cityos.core.problems import Problem
from cityos.data.ngsild.csource.csub_model import KIND, CsourceSubscription
from cityos.data.ngsild.csource.forward import endpoint_policy
from cityos.data.ngsild.csource.index import RegistrationIndex
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.csource.view import render_registration
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.terms import TermMap


async def subscriptions_of(index: RegistrationIndex, tenant: str) -> list[CsourceSubscription]:
    """Every csource subscription of the tenant."""
    out = []
    for doc in await index.store.list_documents(KIND, tenant):
        doc.pop("_tenant", None)
        out.append(CsourceSubscription(doc, tenant))
    return out


async def term_map_of(resolver: Any, sub: CsourceSubscription) -> TermMap:
    """The term map of the subscription's ``@context`` (the core one if it cannot be had)."""
    try:
        tm: TermMap = await resolver.term_map(sub.doc.get("context"))
    except Problem:
        tm = await resolver.term_map(None)
    return tm


async def registration_changed(index: RegistrationIndex, resolver: Any, tenant: str,
                               before: Registration | None, after: Registration | None) -> None:
    """Notify the subscriptions for which ``before`` -> ``after`` changes something."""
    now = utc_now()
    for sub in await subscriptions_of(index, tenant):
        if not sub.active(now):
            continue
        tm = await term_map_of(resolver, sub)
        was = before is not None and sub.matches(before, tm)
        is_now = after is not None and sub.matches(after, tm)
        if is_now:
            reason = "updated" if was else "newlyMatching"
        elif was:
            reason = "noLongerMatching"
        else:
            continue
        reg = after if after is not None else before
        assert reg is not None
        schedule(index, sub, [render_registration(reg, tm)], reason)


async def subscription_created(index: RegistrationIndex, resolver: Any,
                               sub: CsourceSubscription, regs: list[Registration]) -> None:
    """The initial notification: every registration that matches now (none: nothing sent)."""
    if not sub.active(utc_now()):
        return
    tm = await term_map_of(resolver, sub)
    matching = [render_registration(r, tm) for r in regs if sub.matches(r, tm)]
    if matching:
        schedule(index, sub, matching, "newlyMatching")


def schedule(index: RegistrationIndex, sub: CsourceSubscription, data: list[dict[str, Any]],
             reason: str) -> None:
    """Send one csourceNotification in the background."""
    task = asyncio.create_task(_send(index, sub, data, reason))
    index.tasks.add(task)
    task.add_done_callback(index.tasks.discard)


async def _send(index: RegistrationIndex, sub: CsourceSubscription, data: list[dict[str, Any]],
                reason: str) -> None:
    endpoint = sub.doc["notification"]["endpoint"]
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
                            "type": "Notification", "subscriptionId": sub.id,
                            "notifiedAt": utc_now(), "data": data, "triggerReason": reason}
    headers = {"Content-Type": endpoint.get("accept", "application/json")}
    context = sub.doc.get("context")
    if headers["Content-Type"] == "application/ld+json":
        body["@context"] = context or "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
    elif isinstance(context, str):
        headers["Link"] = (f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"; '
                           'type="application/ld+json"')
    if sub.tenant:
        headers["NGSILD-Tenant"] = sub.tenant
    headers.update({kv["key"]: kv["value"] for kv in endpoint.get("receiverInfo", [])})
    status = index.csub_status.setdefault((sub.tenant, sub.id), {})
    status["lastNotification"] = body["notifiedAt"]
    status["timesSent"] = status.get("timesSent", 0) + 1
    ok = False
    try:
        await endpoint_policy(index.settings).check_resolved(endpoint["uri"])
        # streamed and never read: only the status matters, whatever size the receiver answers
        async with index.client().stream("POST", endpoint["uri"], content=orjson.dumps(body),
                                         headers=headers,
                                         timeout=index.settings.notification_timeout) as response:
            ok = response.is_success
    except (Problem, OSError, httpx.HTTPError):
        ok = False
    if ok:
        status["lastSuccess"], status["status"] = utc_now(), "ok"
    else:
        status["lastFailure"], status["status"] = utc_now(), "failed"
        status["timesFailed"] = status.get("timesFailed", 0) + 1
