"""The ``notification`` member of a subscription (NotificationParams, ETSI GS CIM 009 5.2.14) and its
``endpoint`` (5.2.15).

Validated here: the representation, the attributes to send, and an endpoint whose URI is an
http(s) or mqtt(s) URL and whose ``receiverInfo`` becomes HTTP headers (or MQTT user properties),
so keys and values are checked like header fields: a CR/LF in a value would let a caller inject
headers into the broker's requests.  Whether the endpoint *host* may be reached is the SSRF
policy's decision (``notify/policy.py``), taken by the action, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.payload import check_name
from cityos.data.ngsild.subscriptions.model import Endpoint
from cityos.data.ngsild.terms import TermMap

FORMATS = {"normalized": "normalized", "concise": "concise", "keyValues": "keyValues",
           "simplified": "keyValues"}
ACCEPTS = frozenset({"application/json", "application/ld+json"})
SCHEMES = frozenset({"http", "https", "mqtt", "mqtts"})
# members the broker fills in itself: accepted (a client may send back what GET gave it) and dropped
READ_ONLY = frozenset({"status", "timesSent", "timesFailed", "lastNotification", "lastFailure",
                       "lastSuccess"})
_MEMBERS = frozenset({"attributes", "format", "sysAttrs", "showChanges", "endpoint", "join",
                      "joinLevel", "pick", "omit"})
_ENTITY_MEMBERS = frozenset({"id", "type"})     # pick/omit may name these besides attributes
JOIN_MODES = frozenset({"flat", "inline", "@none"})
MAX_JOIN_LEVEL = 10      # as for queries (cityos.data.ngsild.join.MAX_JOIN_LEVEL)
_ENDPOINT_MEMBERS = frozenset({"uri", "accept", "receiverInfo", "notifierInfo", "timeout",
                               "cooldown"})
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")       # an HTTP field name (RFC 9110)
_FIELD_VALUE = re.compile(r"^[^\x00-\x1f\x7f]{0,4096}$")            # no CR, LF or other controls
# headers a receiverInfo entry must not set: they belong to the transport, not to the receiver
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding",
                               "connection", "link", "ngsild-tenant", "upgrade", "te", "trailer"})
_MQTT_INFO = {"MQTT-Version": frozenset({"mqtt3.1.1", "mqtt5.0"}),
              "MQTT-QoS": frozenset({"0", "1", "2"})}


@dataclass
class NotificationParams:
    """What the ``notification`` member says, in the internal form."""

    endpoint: Endpoint
    attributes: frozenset[str] | None
    format: str
    sys_attrs: bool
    show_changes: bool
    document: dict[str, Any]       # the member as the client wrote it, read-only members removed
    join: str | None = None        # "flat" or "inline"; None without join (or with "@none")
    join_level: int = 1
    omit: frozenset[str] = frozenset()   # attribute IRIs ``omit`` names
    show_id: bool = True                 # pick/omit may drop id and type as well
    show_type: bool = True


def writable_members(raw: Any, read_only: frozenset[str], known: frozenset[str],
                     what: str) -> dict[str, Any]:
    """``raw`` without the members the server fills in; 400 when it is not an object or names a
    member ``known`` does not list."""
    if not isinstance(raw, dict):
        raise BadRequestData(f"{what} must be a JSON object")
    document = {k: v for k, v in raw.items() if k not in read_only}
    unknown = set(document) - known
    if unknown:
        raise BadRequestData(f"{what} has unknown or unsupported members {sorted(unknown)}")
    return document


def parse_notification(raw: Any, tm: TermMap) -> NotificationParams:
    """Validate ``notification``; attribute names are expanded with ``tm``."""
    document = writable_members(raw, READ_ONLY, _MEMBERS, "notification")
    attributes = None
    if "attributes" in document:
        names = document["attributes"]
        if not isinstance(names, list) or not names:
            raise BadRequestData("notification.attributes must be a non-empty array of names")
        attributes = frozenset(tm.expand(check_name(n)) for n in names)
    omit: frozenset[str] = frozenset()
    show_id = show_type = True
    pick, omitted = _members(document, "pick", tm), _members(document, "omit", tm)
    if pick is not None or omitted is not None:
        if attributes is not None:
            raise BadRequestData("notification.attributes cannot be combined with pick or omit")
        if pick is not None and omitted is not None:
            raise BadRequestData("notification.pick and notification.omit cannot be used "
                                 "together")
    if pick is not None:
        names, attributes = pick
        show_id, show_type = "id" in names, "type" in names
    if omitted is not None:
        names, omit = omitted
        show_id, show_type = "id" not in names, "type" not in names
    fmt = document.get("format", "normalized")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise BadRequestData(f"notification.format must be normalized, concise or keyValues, "
                             f"got {str(fmt)[:40]!r}")
    sys_attrs = _boolean(document, "sysAttrs")
    show_changes = _boolean(document, "showChanges")
    if "endpoint" not in document:
        raise BadRequestData("notification.endpoint is missing")
    join, join_level = _join(document)
    return NotificationParams(parse_endpoint(document["endpoint"]), attributes, FORMATS[fmt],
                              sys_attrs, show_changes, document, join, join_level, omit,
                              show_id, show_type)


def _members(document: dict[str, Any], key: str,
             tm: TermMap) -> tuple[frozenset[str], frozenset[str]] | None:
    """``pick`` / ``omit`` (clause 4.21): (the names as given, the attribute IRIs among them)."""
    if key not in document:
        return None
    names = document[key]
    if not isinstance(names, list) or not names:
        raise BadRequestData(f"notification.{key} must be a non-empty array of entity member "
                             "names")
    given = frozenset(check_name(n) for n in names)
    return given, frozenset(tm.expand(n) for n in given if n not in _ENTITY_MEMBERS)


def _join(document: dict[str, Any]) -> tuple[str | None, int]:
    """``join`` and ``joinLevel`` (linked entities in notifications, clauses 4.5.23 and 5.2.14)."""
    join = document.get("join")
    level = document.get("joinLevel")
    if join is None:
        if level is not None:
            raise BadRequestData("notification.joinLevel is only allowed together with join")
        return None, 1
    if not isinstance(join, str) or join not in JOIN_MODES:
        raise BadRequestData(f"notification.join must be flat, inline or @none, "
                             f"got {str(join)[:40]!r}")
    if level is None:
        level = 1
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_JOIN_LEVEL:
        raise BadRequestData(f"notification.joinLevel must be an integer from 1 to "
                             f"{MAX_JOIN_LEVEL}, got {str(level)[:20]!r}")
    return (None if join == "@none" else join), level


def _boolean(document: dict[str, Any], key: str) -> bool:
    value = document.get(key, False)
    if not isinstance(value, bool):
        raise BadRequestData(f"notification.{key} must be true or false")
    return value


def parse_endpoint(raw: Any) -> Endpoint:
    """Validate ``notification.endpoint``."""
    if not isinstance(raw, dict):
        raise BadRequestData("notification.endpoint must be a JSON object")
    unknown = set(raw) - _ENDPOINT_MEMBERS
    if unknown:
        raise BadRequestData(f"notification.endpoint has unknown members {sorted(unknown)}")
    uri = check_endpoint_uri(raw.get("uri"))
    accept = raw.get("accept", "application/json")
    if not isinstance(accept, str) or accept not in ACCEPTS:     # an array is unhashable
        raise BadRequestData(f"notification.endpoint.accept must be application/json or "
                             f"application/ld+json, got {str(accept)[:60]!r}")
    for key in ("timeout", "cooldown"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            raise BadRequestData(f"notification.endpoint.{key} must be a number >= 0")
    receiver = _key_values(raw.get("receiverInfo"), "receiverInfo")
    for key, _ in receiver:
        if key.lower() in _RESERVED_HEADERS:
            raise BadRequestData(f"notification.endpoint.receiverInfo must not set {key!r}")
    notifier = _key_values(raw.get("notifierInfo"), "notifierInfo")
    for key, value in notifier:
        allowed = _MQTT_INFO.get(key)
        if allowed is not None and value not in allowed:
            raise BadRequestData(f"notification.endpoint.notifierInfo {key} must be one of "
                                 f"{sorted(allowed)}")
    return Endpoint(uri=uri, accept=accept, receiver_info=receiver, notifier_info=notifier)


def check_endpoint_uri(uri: Any) -> str:
    """An http(s) or mqtt(s) URL with a host (and, for MQTT, a topic)."""
    if not isinstance(uri, str) or not uri or len(uri) > 2048:
        raise BadRequestData("notification.endpoint.uri must be a URL string")
    if any(ch.isspace() or ord(ch) < 32 for ch in uri):
        raise BadRequestData("notification.endpoint.uri must not contain spaces or controls")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise BadRequestData(f"notification.endpoint.uri is not a valid URL: {uri[:80]!r}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise BadRequestData(f"notification.endpoint.uri must use http, https, mqtt or mqtts, "
                             f"got {uri[:80]!r}")
    if not parts.hostname:
        raise BadRequestData(f"notification.endpoint.uri has no host: {uri[:80]!r}")
    if parts.scheme.lower().startswith("mqtt") and parts.path.strip("/") == "":
        raise BadRequestData("an mqtt(s) endpoint needs a topic: mqtt://host:1883/some/topic")
    return uri


def _key_values(raw: Any, member: str) -> list[tuple[str, str]]:
    """An array of ``{"key": ..., "value": ...}`` (KeyValuePair, clause 5.2.22)."""
    if raw is None:
        return []
    where = f"notification.endpoint.{member}"
    if not isinstance(raw, list):
        raise BadRequestData(f"{where} must be an array of {{key, value}} objects")
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise BadRequestData(f"{where} entries must be objects with exactly key and value")
        key, value = item["key"], item["value"]
        if not isinstance(key, str) or not _TOKEN.match(key):
            raise BadRequestData(f"{where} key {str(key)[:40]!r} is not a valid header name")
        if not isinstance(value, str) or not _FIELD_VALUE.match(value):
            raise BadRequestData(f"{where} value of {key!r} must be a string without control "
                                 "characters")
        pairs.append((key, value))
    return pairs
