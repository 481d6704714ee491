"""Distributed batch writes: ``/entityOperations/create|upsert|update|merge|delete`` (4.3.6.3).

:func:`batch_forwarding` wraps a batch route.  Each entity of the batch is judged like a single
write (writes.py): entities covered by an ``exclusive`` or ``redirect`` registration that serves
the batch operation go to those sources only, the others to the local store; entities covered by
an ``inclusive`` registration go to both.  Every source gets one request with its share of the
batch.  The answers are combined into one BatchOperationResult: ``success`` ids and ``errors``
(``207`` as soon as one entity failed anywhere).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cityos.core.http import json_response
from cityos.data.ngsild.csource.forward import Reply
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.csource.writes import (
    BASE,
    forwarded_with,
    loop_free_forwarder,
    target_of,
    with_body,
)
from cityos.data.ngsild.responses import Endpoint, no_content


def batch_forwarding(operation: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (a batch write route) with distributed forwarding for ``operation``."""
    return forwarded_with(_distributed, operation, endpoint)


async def _distributed(request: Request, operation: str, endpoint: Endpoint,
                       regs: list[Registration]) -> Response:
    raw = await request.body()
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return await endpoint(request)            # the local route answers the precise 400
    if not isinstance(items, list):
        return await endpoint(request)
    serving = [r for r in regs if operation in r.allowed and r.mode != "auxiliary"]
    local: list[Any] = []
    remote: dict[str, list[Any]] = {}
    for item in items:
        entity_id, types, attrs = await target_of(request, item if isinstance(item, dict)
                                                  else {"id": item})
        covering = [r for r in serving if entity_id and r.covers(entity_id, types, attrs)]
        only_remote = [r for r in covering if r.mode in ("exclusive", "redirect")]
        if not only_remote:
            local.append(item)
        for reg in only_remote or covering:
            remote.setdefault(reg.id, []).append(item)
    if not remote:
        return await endpoint(request)
    forwarder = loop_free_forwarder(request)
    success: list[str] = []
    errors: list[dict[str, Any]] = []
    if local:
        answer = await endpoint(with_body(request, orjson.dumps(local)))
        _collect(answer.status_code, _json(answer.body), local, success, errors, None)
    by_id = {r.id: r for r in serving}
    path = request.url.path[len(BASE):]
    params = list(request.query_params.multi_items())
    replies = await forwarder.send_all([(by_id[reg_id], "POST", path, params, orjson.dumps(part))
                                        for reg_id, part in remote.items()])
    for reply in replies:
        _collect(reply.status or 504, reply.body, remote[reply.reg.id], success, errors, reply)
    success = list(dict.fromkeys(success))
    if errors:
        return json_response({"success": success, "errors": errors}, 207)
    if operation in ("createBatch", "upsertBatch") and success:
        return json_response(success, 201)
    return no_content()


def _ids(items: list[Any]) -> list[str]:
    return [str(i.get("id")) if isinstance(i, dict) else str(i) for i in items]


def _json(body: Any) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _collect(status: int, body: Any, sent: list[Any], success: list[str],
             errors: list[dict[str, Any]], reply: Reply | None) -> None:
    """Fold one answer (local or a source's) into the combined result."""
    if status == 207 and isinstance(body, dict):
        success.extend(str(s) for s in body.get("success", []))
        for failed in body.get("errors", []):
            if reply is not None and isinstance(failed, dict):
                failed = {**failed, "registrationId": reply.reg.id}
            errors.append(failed)
        return
    if 200 <= status < 300 and (reply is None or reply.ok):
        success.extend(_ids(sent))
        return
    problem = body if isinstance(body, dict) and "type" in body else {
        "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
        "title": "Context source failed", "status": status,
        "detail": (reply.warning if reply is not None and reply.warning else
                   f"answered {status}")}
    for entity_id in _ids(sent):
        error: dict[str, Any] = {"entityId": entity_id, "error": problem}
        if reply is not None:
            error["registrationId"] = reply.reg.id
        errors.append(error)
