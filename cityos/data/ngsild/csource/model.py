"""The ContextSourceRegistration (ETSI GS CIM 009 clause 5.2.9): parsed, validated, matched.

A registration is kept in the broker's internal form: entity types and attribute names expanded
to IRIs (as entities are, ADR 0002), everything else as the caller wrote it.  It is stored as a
generic document (``kind = "csourceRegistration"``) and rendered back compacted against the
reader's ``@context`` by :mod:`~cityos.data.ngsild.csource.view`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from cityos.core.patterns import UserPatternError, compile_user_pattern, user_pattern_search
from cityos.core.problems import BadRequestData
from cityos.data.ngsild.csource.operations import MODES, check_operations, expand_operations
from cityos.data.ngsild.geojson import validate_geojson
from cityos.data.ngsild.payload import check_name, check_uri, parse_datetime, utc_now
from cityos.data.ngsild.terms import TermMap

KIND = "csourceRegistration"
TYPE = "ContextSourceRegistration"
_GEO = ("location", "observationSpace", "operationSpace")
_INTERVALS = ("observationInterval", "managementInterval")
_STRINGS = ("registrationName", "description", "tenant")
_KNOWN = frozenset({"id", "type", "information", "endpoint", "mode", "operations",
                    "contextSourceInfo", "expiresAt", "scope", "management", "refreshRate",
                    "createdAt", "modifiedAt", "status", "timesSent", "timesFailed",
                    "lastSuccess", "lastFailure", "@context", *_GEO, *_INTERVALS, *_STRINGS})
_READ_ONLY = ("createdAt", "modifiedAt", "status", "timesSent", "timesFailed", "lastSuccess",
              "lastFailure")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")


@dataclass
class EntityInfo:
    """One entity selector of a RegistrationInfo: ``id`` or ``idPattern`` and expanded types."""

    types: tuple[str, ...]
    id: str | None = None
    id_pattern: str | None = None

    def may_hold(self, entity_id: str | None, types: AbstractSet[str] | None) -> bool:
        """Whether an entity with this id (None: unknown) and types (None: unknown) is covered."""
        if types is not None and not set(self.types) & types:
            return False
        if entity_id is None:
            return True
        if self.id is not None:
            return self.id == entity_id
        if self.id_pattern is not None:
            return user_pattern_search(self.id_pattern, entity_id)  # RE2, compiled once, cached
        return True


@dataclass
class RegistrationInfo:
    """One element of ``information``: entities and/or attribute names (expanded)."""

    entities: list[EntityInfo]
    properties: list[str]
    relationships: list[str]

    @property
    def attrs(self) -> set[str]:
        """Every attribute this element registers (empty = all attributes)."""
        return {*self.properties, *self.relationships}


@dataclass
class Registration:
    """A parsed context source registration and its delivery status (kept in memory)."""

    id: str
    tenant: str
    information: list[RegistrationInfo]
    endpoint: str
    mode: str
    operations: list[str]
    doc: dict[str, Any]                       # the stored document (internal form)
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> frozenset[str]:
        """The single operations this registration serves."""
        return expand_operations(self.operations)

    def expired(self, now: str) -> bool:
        """Whether ``expiresAt`` has passed (an expired registration is ignored)."""
        expires = self.doc.get("expiresAt")
        return bool(expires) and str(expires) <= now

    def headers(self) -> dict[str, str]:
        """``contextSourceInfo`` as HTTP headers for forwarded requests (jsonldContext excluded)."""
        return {kv["key"]: kv["value"] for kv in self.doc.get("contextSourceInfo", [])
                if kv["key"] != "jsonldContext"}

    def covers(self, entity_id: str | None, types: AbstractSet[str] | None,
               attrs: AbstractSet[str] | None) -> bool:
        """Whether some ``information`` element may hold (part of) such an entity.

        ``attrs`` None means "all attributes"; an element naming no attributes covers every one.
        """
        for info in self.information:
            if info.entities and not any(e.may_hold(entity_id, types) for e in info.entities):
                continue
            if attrs is not None and info.attrs and not info.attrs & attrs:
                continue
            return True
        return False

    def claimed(self, entity_id: str, types: AbstractSet[str] | None) -> set[str] | None:
        """The attributes this registration holds for the entity (None: all of them)."""
        out: set[str] = set()
        for info in self.information:
            if info.entities and not any(e.may_hold(entity_id, types) for e in info.entities):
                continue
            if not info.attrs:
                return None
            out |= info.attrs
        return out

    @classmethod
    def from_doc(cls, doc: dict[str, Any], tenant: str) -> Registration:
        """A registration from its stored document."""
        infos = [RegistrationInfo(
            [EntityInfo(tuple(e["types"]), e.get("id"), e.get("idPattern"))
             for e in raw.get("entities", [])],
            list(raw.get("propertyNames", [])), list(raw.get("relationshipNames", [])))
            for raw in doc["information"]]
        return cls(doc["id"], tenant, infos, doc["endpoint"], doc.get("mode", "inclusive"),
                   list(doc.get("operations", [])), doc)


def parse_registration(body: Any, tm: TermMap, *, now: str | None = None) -> dict[str, Any]:
    """A whole registration (POST) validated into its stored document; 400 when invalid."""
    if not isinstance(body, dict):
        raise BadRequestData("a context source registration must be a JSON object")
    if body.get("type") != TYPE:
        raise BadRequestData(f"type must be {TYPE!r}")
    for key in ("information", "endpoint"):
        if key not in body or body[key] is None:
            raise BadRequestData(f"a context source registration needs {key}")
    now = now or utc_now()
    doc: dict[str, Any] = {"id": check_uri(body["id"], "id") if "id" in body
                           else f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}",
                           "type": TYPE}
    doc.update(parse_members(body, tm, partial=False))
    doc.setdefault("mode", "inclusive")
    doc["operations"] = check_operations(body.get("operations"), doc["mode"])
    doc["createdAt"] = doc["modifiedAt"] = now
    return doc


def parse_members(body: dict[str, Any], tm: TermMap, *, partial: bool) -> dict[str, Any]:
    """The members of ``body`` in the internal form (all of a POST, or those of a PATCH)."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("id", "type", "@context") or key in _READ_ONLY:
            continue
        if key == "information":
            out[key] = _information(value, tm)
        elif key == "endpoint":
            out[key] = _endpoint(value)
        elif key == "mode":
            if value not in MODES:
                raise BadRequestData(f"mode must be one of {', '.join(MODES)}")
            out[key] = value
        elif key == "operations":
            out[key] = value           # checked against the mode by the caller
        elif key == "contextSourceInfo":
            out[key] = _key_values(value)
        elif key == "expiresAt":
            out[key] = None if value is None and partial else parse_datetime(value, key)
        elif key in _INTERVALS:
            out[key] = _interval(value, key)
        elif key in _GEO:
            if not isinstance(value, dict):
                raise BadRequestData(f"{key} must be a GeoJSON geometry")
            validate_geojson(value)
            out[key] = value
        elif key in _STRINGS:
            if not isinstance(value, str) or not value:
                raise BadRequestData(f"{key} must be a non-empty string")
            out[key] = value
        elif key == "scope":
            out[key] = _scope(value)
        elif key == "management":
            out[key] = _management(value)
        elif key == "refreshRate":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise BadRequestData("refreshRate must be a duration")
            out[key] = value
        else:
            extra[tm.expand(check_name(key, "registration property"))] = value
    if extra:
        out["extra"] = extra
    return out


def _management(value: Any) -> dict[str, Any]:
    """RegistrationManagementInfo: ``localOnly`` (forward with local=true) and ``timeout``
    (milliseconds, may only shorten CITYOS_FEDERATION_TIMEOUT) are used; the rest is kept."""
    if not isinstance(value, dict):
        raise BadRequestData("management must be an object (localOnly, cacheDuration, "
                             "timeout, cooldown)")
    if "localOnly" in value and not isinstance(value["localOnly"], bool):
        raise BadRequestData("management.localOnly must be true or false")
    for key in ("timeout", "cooldown"):
        number = value.get(key)
        if key in value and (isinstance(number, bool) or not isinstance(number, int | float)
                             or number <= 0):
            raise BadRequestData(f"management.{key} must be a positive number of milliseconds")
    return value


def _endpoint(value: Any) -> str:
    uri = check_uri(value, "endpoint")
    if not uri.lower().startswith(("http://", "https://")):
        raise BadRequestData("endpoint must be an http:// or https:// URI")
    return uri.rstrip("/")


def _information(value: Any, tm: TermMap) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("information must be a non-empty array of RegistrationInfo")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(value):
        where = f"information[{i}]"
        if not isinstance(raw, dict):
            raise BadRequestData(f"{where} must be an object")
        unknown = set(raw) - {"entities", "propertyNames", "relationshipNames"}
        if unknown:
            raise BadRequestData(f"{where} has unknown members {sorted(unknown)}")
        info: dict[str, Any] = {}
        if "entities" in raw:
            if not isinstance(raw["entities"], list) or not raw["entities"]:
                raise BadRequestData(f"{where}.entities must be a non-empty array")
            info["entities"] = [_entity_info(e, tm, f"{where}.entities[{j}]")
                                for j, e in enumerate(raw["entities"])]
        for key in ("propertyNames", "relationshipNames"):
            if key in raw:
                names = raw[key]
                if not isinstance(names, list) or not names:
                    raise BadRequestData(f"{where}.{key} must be a non-empty array of names")
                info[key] = [tm.expand(check_name(n)) for n in names]
        if not info:
            raise BadRequestData(f"{where} needs entities, propertyNames or relationshipNames")
        out.append(info)
    return out


def _entity_info(raw: Any, tm: TermMap, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequestData(f"{where} must be an object")
    unknown = set(raw) - {"id", "idPattern", "type"}
    if unknown:
        raise BadRequestData(f"{where} has unknown members {sorted(unknown)}")
    if "type" not in raw:
        raise BadRequestData(f"{where} needs a type")
    types = raw["type"] if isinstance(raw["type"], list) else [raw["type"]]
    if not types or not all(isinstance(t, str) for t in types):
        raise BadRequestData(f"{where}.type must be a type name or an array of them")
    out: dict[str, Any] = {"types": [tm.expand(check_name(t, "entity type")) for t in types]}
    if "id" in raw and "idPattern" in raw:
        raise BadRequestData(f"{where}: give id or idPattern, not both")
    if "id" in raw:
        out["id"] = check_uri(raw["id"], f"{where}.id")
    if "idPattern" in raw:
        pattern = raw["idPattern"]
        try:
            compile_user_pattern(pattern, f"{where}.idPattern")
        except UserPatternError as exc:
            raise BadRequestData(str(exc)) from None
        out["idPattern"] = pattern
    return out


def _key_values(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise BadRequestData("contextSourceInfo must be an array of {key, value} objects")
    out: list[dict[str, str]] = []
    for kv in value:
        if not isinstance(kv, dict) or set(kv) != {"key", "value"} or \
                not all(isinstance(v, str) for v in kv.values()):
            raise BadRequestData("contextSourceInfo items must be {key, value} string pairs")
        if not _HEADER.match(kv["key"]) or not re.fullmatch(r"[\x20-\x7e]*", kv["value"]):
            raise BadRequestData(f"contextSourceInfo: {kv['key'][:60]!r} is not a usable "
                                 "HTTP header (a token name and a printable ASCII value)")
        out.append({"key": kv["key"], "value": kv["value"]})
    return out


def _interval(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or "startAt" not in value or \
            set(value) - {"startAt", "endAt"}:
        raise BadRequestData(f"{key} must be an object with startAt and optional endAt")
    out = {k: parse_datetime(v, f"{key}.{k}") for k, v in value.items()}
    if "endAt" in out and out["endAt"] < out["startAt"]:
        raise BadRequestData(f"{key}.endAt is before its startAt")
    return out


def _scope(value: Any) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    if not scopes or not all(isinstance(s, str) and re.fullmatch(r"/[^\s]*", s) for s in scopes):
        raise BadRequestData("scope must be a scope string like /Japan/Kobe or an array of them")
    return scopes
