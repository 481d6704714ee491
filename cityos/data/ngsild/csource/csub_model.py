"""Context source registration subscriptions (clause 5.2.12 applied to registrations, 5.11).

A ``csourceSubscription`` watches registrations instead of entities: its ``entities``,
``watchedAttributes``, ``csf`` and ``geoQ`` select registrations, and a ``csourceNotification``
carries the registrations that newly match, changed, or no longer match (``triggerReason``).
Stored as a generic document (``kind = "csourceSubscription"``) in the internal form: types and
attribute names expanded.  Periodic notifications (``timeInterval``) are not supported (422).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from cityos.core.patterns import UserPatternError, compile_user_pattern, user_pattern_search
from cityos.core.problems import BadRequestData, OperationNotSupported
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.csource.query import registration_as_entity
from cityos.data.ngsild.geoquery import geo_matches, parse_geoquery
from cityos.data.ngsild.payload import check_name, check_uri, parse_datetime
from cityos.data.ngsild.qlang import expand_q, parse_q, q_matches
from cityos.data.ngsild.terms import TermMap

KIND = "csourceSubscription"
_READ_ONLY = ("status", "createdAt", "modifiedAt")
_KNOWN = {"id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
          "csf", "q", "geoQ", "notification", "expiresAt", "isActive", "@context",
          "timeInterval", "jsonldContext", "lang", *_READ_ONLY}


def parse_csub(body: Any, tm: TermMap, context: Any, now: str) -> dict[str, Any]:
    """A whole subscription (POST) validated into its stored document (400 when invalid)."""
    if not isinstance(body, dict):
        raise BadRequestData("a subscription must be a JSON object")
    if body.get("type") != "Subscription":
        raise BadRequestData("type must be 'Subscription'")
    if "notification" not in body:
        raise BadRequestData("a subscription needs notification")
    doc: dict[str, Any] = {"id": check_uri(body["id"], "id") if "id" in body
                           else f"urn:ngsi-ld:Subscription:{uuid.uuid4()}",
                           "type": "Subscription", "context": context, "createdAt": now}
    doc.update(parse_csub_members(body, tm))
    doc.setdefault("isActive", True)
    doc["modifiedAt"] = now
    return doc


def parse_csub_members(body: dict[str, Any], tm: TermMap) -> dict[str, Any]:
    """The given members in the internal form (all of a POST, those of a PATCH)."""
    unknown = set(body) - _KNOWN
    if unknown:
        raise BadRequestData(f"unknown subscription members {sorted(unknown)[:5]}")
    if "timeInterval" in body:
        raise OperationNotSupported("periodic csource notifications (timeInterval) are not "
                                    "supported; changes of registrations are notified")
    out: dict[str, Any] = {}
    for key in ("subscriptionName", "description"):
        if key in body:
            if not isinstance(body[key], str):
                raise BadRequestData(f"{key} must be a string")
            out[key] = body[key]
    if "entities" in body:
        out["entities"] = _entities(body["entities"], tm)
    if "watchedAttributes" in body:
        names = body["watchedAttributes"]
        if not isinstance(names, list) or not names:
            raise BadRequestData("watchedAttributes must be a non-empty array of names")
        out["watchedAttributes"] = [tm.expand(check_name(n)) for n in names]
    if "csf" in body:
        if not isinstance(body["csf"], str):
            raise BadRequestData("csf must be a string")
        parse_q(body["csf"])
        out["csf"] = body["csf"]
    if "geoQ" in body:
        geo = body["geoQ"]
        if not isinstance(geo, dict):
            raise BadRequestData("geoQ must be an object")
        parse_geoquery(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"),
                       geo.get("geoproperty"))
        out["geoQ"] = geo
    if "notification" in body:
        out["notification"] = _notification(body["notification"], tm)
    if "expiresAt" in body:
        out["expiresAt"] = parse_datetime(body["expiresAt"], "expiresAt")
    if "isActive" in body:
        if not isinstance(body["isActive"], bool):
            raise BadRequestData("isActive must be true or false")
        out["isActive"] = body["isActive"]
    return out


def _entities(raw: Any, tm: TermMap) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("entities must be a non-empty array")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "type" not in item or set(item) - {"id", "idPattern",
                                                                            "type"}:
            raise BadRequestData(f"entities[{i}] must have a type and optionally id or idPattern")
        entity: dict[str, Any] = {"type": tm.expand(check_name(item["type"], "entity type"))}
        if "id" in item:
            entity["id"] = check_uri(item["id"], f"entities[{i}].id")
        if "idPattern" in item:
            try:
                compile_user_pattern(item["idPattern"], f"entities[{i}].idPattern")
            except UserPatternError as exc:
                raise BadRequestData(str(exc)) from None
            entity["idPattern"] = item["idPattern"]
        out.append(entity)
    return out


def _notification(raw: Any, tm: TermMap) -> dict[str, Any]:
    from cityos.data.ngsild.subscriptions.parse_notification import parse_notification

    params = parse_notification(raw, tm)
    if not params.endpoint.uri.lower().startswith(("http://", "https://")):
        raise BadRequestData("csource notifications are sent over http:// or https:// only")
    return {"endpoint": {"uri": params.endpoint.uri, "accept": params.endpoint.accept,
                         "receiverInfo": [{"key": k, "value": v}
                                          for k, v in params.endpoint.receiver_info]},
            "document": params.document}


@dataclass
class CsourceSubscription:
    """A stored csource subscription, ready to match registrations."""

    doc: dict[str, Any]
    tenant: str

    @property
    def id(self) -> str:
        """The subscription id."""
        return str(self.doc["id"])

    def active(self, now: str) -> bool:
        """Active and not expired."""
        expires = self.doc.get("expiresAt")
        return bool(self.doc.get("isActive", True)) and not (expires and expires <= now)

    def status(self, now: str) -> str:
        """``active``, ``paused`` or ``expired`` (clause 5.2.12)."""
        expires = self.doc.get("expiresAt")
        if expires and expires <= now:
            return "expired"
        return "active" if self.doc.get("isActive", True) else "paused"

    def matches(self, reg: Registration, tm: TermMap) -> bool:
        """Whether the registration is one this subscription watches."""
        wanted = self.doc.get("entities")
        if wanted and not any(self._entity_fits(e, reg) for e in wanted):
            return False
        watched = set(self.doc.get("watchedAttributes") or [])
        if watched and not any(not i.attrs or i.attrs & watched for i in reg.information):
            return False
        if "csf" in self.doc and not q_matches(expand_q(parse_q(self.doc["csf"]), tm.expand),
                                               registration_as_entity(reg, tm)):
            return False
        geo = self.doc.get("geoQ")
        if geo:
            query = parse_geoquery(geo.get("georel"), geo.get("geometry"),
                                   geo.get("coordinates"), geo.get("geoproperty"))
            value = reg.doc.get(query.geoproperty) if query else None
            if query is None or not isinstance(value, dict) or not geo_matches(query, value):
                return False
        return True

    @staticmethod
    def _entity_fits(wanted: dict[str, Any], reg: Registration) -> bool:
        for info in reg.information:
            if not info.entities:
                return True           # attributes of any entity
            for e in info.entities:
                if wanted["type"] not in e.types:
                    continue
                if "id" in wanted and not e.may_hold(wanted["id"], None):
                    continue
                if "idPattern" in wanted and e.id and not user_pattern_search(wanted["idPattern"], e.id):
                    continue
                return True
        return False
