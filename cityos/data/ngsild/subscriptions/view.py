"""A subscription as GET /subscriptions shows it (clause 5.8.3).

The body the client wrote, with every name (entity types, attributes, ``geoproperty``) compacted
again with the *reader's* ``@context`` (ETSI test suite 029_05: the same subscription reads
``Vehicle`` under the test context and the full IRI without one), plus what the broker knows:
``status`` and the delivery counters inside ``notification``.  ``q`` is shown as written.
Counters appear once something was sent, so a fresh subscription reads back as written, plus
the default ``notificationTrigger`` when it named none (ETSI 028_01, 028_06 expect it).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from cityos.data.ngsild.subscriptions.model import DEFAULT_TRIGGERS, Counters, Subscription
from cityos.data.ngsild.subscriptions.terms import replay
from cityos.data.ngsild.terms import TermMap

_TYPE_SEPARATORS = re.compile(r"([,;|()])")
# registry status -> the Subscription's status member; "failed" is the notification's business
_SUBSCRIPTION_STATUS = {"active": "active", "paused": "paused", "expired": "expired",
                        "failed": "active"}


def render_subscription(sub: Subscription, tm: TermMap, status: str, counters: Counters | None,
                        *, sys_attrs: bool = False) -> dict[str, Any]:
    """The subscription for a reader whose names are compacted with ``tm``."""
    out: dict[str, Any] = copy.deepcopy(sub.document)
    if "entities" in out:
        member = replay(sub.terms.get("entities", {}))
        for selector in out["entities"]:
            if isinstance(selector.get("type"), str):
                selector["type"] = _recompact_type(selector["type"], member, tm)
    if "watchedAttributes" in out:
        member = replay(sub.terms.get("watchedAttributes", {}))
        out["watchedAttributes"] = [tm.compact(member.expand(n)) for n in out["watchedAttributes"]]
    geo = out.get("geoQ")
    if isinstance(geo, dict) and "geoproperty" in geo:
        geo["geoproperty"] = tm.compact(replay(sub.terms.get("geoQ", {})).expand(geo["geoproperty"]))
    notification: dict[str, Any] = out["notification"]
    member = replay(sub.terms.get("notification", {}))
    for key in ("attributes", "pick", "omit"):
        if key in notification:
            notification[key] = [n if n in ("id", "type") else tm.compact(member.expand(n))
                                 for n in notification[key]]
    if counters is not None and (counters.times_sent or counters.times_failed):
        notification["status"] = "failed" if counters.failing else "ok"
        notification["timesSent"] = counters.times_sent
        notification["timesFailed"] = counters.times_failed
        for key, value in (("lastNotification", counters.last_notification),
                           ("lastSuccess", counters.last_success),
                           ("lastFailure", counters.last_failure)):
            if value is not None:
                notification[key] = value
    if "notificationTrigger" not in out:
        out["notificationTrigger"] = sorted(DEFAULT_TRIGGERS)
    out["status"] = _SUBSCRIPTION_STATUS.get(status, status)
    if sys_attrs:
        out["createdAt"] = sub.created_at
        out["modifiedAt"] = sub.modified_at
    return out


def _recompact_type(text: str, member: TermMap, tm: TermMap) -> str:
    """A type expression (``A,B``, ``A;B``, ``(A;B)|C``) with each name compacted with ``tm``."""
    parts = _TYPE_SEPARATORS.split(text)
    return "".join(part if _TYPE_SEPARATORS.fullmatch(part) or not part.strip()
                   else tm.compact(member.expand(part.strip())) for part in parts)
