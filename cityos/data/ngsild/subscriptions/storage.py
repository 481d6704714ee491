"""How a subscription is kept in the store (generic documents of kind ``subscription``).

Stored document::

    {"body": {... the subscription as the client wrote it (Subscription.document) ...},
     "terms": {"entities": {"Vehicle": "https://.../Vehicle"}, ...},   # expansions per member
     "context": <the @context notifications are compacted with>,
     "createdAt": "...", "modifiedAt": "..."}

The body plus the recorded expansions is enough to rebuild the :class:`Subscription` exactly,
without fetching any remote ``@context`` (a start-up must not depend on a remote server).
Delivery counters are the notifier's and live in their own documents (``notify/counters.py``).
"""

from __future__ import annotations

from typing import Any

from cityos.data.ngsild.subscriptions.model import Subscription
from cityos.data.ngsild.subscriptions.parse import parse_subscription
from cityos.data.ngsild.subscriptions.terms import replay
from cityos.data.ngsild.terms import TermMap

KIND = "subscription"


def to_document(sub: Subscription) -> dict[str, Any]:
    """The JSON document to store for ``sub``."""
    return {"body": sub.document, "terms": sub.terms, "context": sub.context,
            "createdAt": sub.created_at, "modifiedAt": sub.modified_at, "owner": sub.owner}


def from_document(doc: dict[str, Any], tenant: str) -> Subscription:
    """Rebuild a stored subscription.

    Raises the parser's ``BadRequestData`` when the document no longer validates (written by a
    newer version, or edited by hand); the caller decides whether to skip it.
    """
    member_tms = {member: replay(terms) for member, terms in (doc.get("terms") or {}).items()}
    sub = parse_subscription(doc["body"], TermMap({}, None), tenant, doc.get("modifiedAt", ""),
                             context=doc.get("context"), member_tms=member_tms,
                             check_expiry=False, created_at=doc.get("createdAt"))
    sub.modified_at = doc.get("modifiedAt", sub.modified_at)
    sub.owner = doc.get("owner")
    return sub
