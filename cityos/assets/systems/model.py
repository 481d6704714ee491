"""An external system (AS-SY-1): another system CityOS pulls data from on a schedule.

Stored as a store document of kind ``external-system`` in the tenant its entities are written to.
The JSON form (API and CLI)::

    {"id": "kobe-orion", "name": "神戸市 Orion", "kind": "orion-v2",
     "url": "http://orion.example.jp:1026", "interval": 300, "enabled": true,
     "options": {"service": "kobe", "servicePath": "/", "type": "WeatherObserved"}}

plus, maintained by CityOS: ``createdAt``, ``lastRunAt``, ``nextRunAt``, ``status`` (``never``,
``ok``, ``partial`` = some items rejected, ``error``), ``lastError``, ``counts`` and ``runs``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.notify import EndpointPolicy
from cityos.ingest.importers import MappingError, find_dataset, mapping_from_dict, normalise_encoding

DOCUMENT_KIND = "external-system"
KINDS = ("orion-v2", "ngsi-ld", "rest-json", "csv-url", "geojson-url")
MIN_INTERVAL = 1          # seconds; tests use 1, cities typically 300 or more
DEFAULT_INTERVAL = 3600
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# options each kind understands, with a short meaning (documented in docs/external-systems.md)
OPTIONS: dict[str, set[str]] = {
    "orion-v2": {"service", "servicePath", "type", "q", "idPattern", "pageSize"},
    "ngsi-ld": {"tenant", "type", "q", "context", "pageSize"},
    "rest-json": {"selector", "mapping"},
    "csv-url": {"dataset", "mapping", "encoding", "delimiter", "code"},
    "geojson-url": {"dataset", "mapping", "type", "idProperty", "code"},
}
MAINTAINED = ("createdAt", "lastRunAt", "nextRunAt", "status", "lastError", "counts", "runs")


def _text(body: dict[str, Any], key: str, default: str | None = None, limit: int = 200) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequestData(f"'{key}' must be a non-empty string of at most {limit} characters")
    return value.strip()


def validate(body: Any, policy: EndpointPolicy) -> dict[str, Any]:
    """The stored form of a registration body; ``BadRequestData`` naming the first problem."""
    if not isinstance(body, dict):
        raise BadRequestData("an external system is a JSON object")
    unknown = set(body) - {"id", "name", "kind", "url", "interval", "enabled", "options",
                           "description"} - set(MAINTAINED)
    if unknown:
        raise BadRequestData(f"unknown member(s) {sorted(unknown)}")
    system_id = body.get("id") or uuid.uuid4().hex[:12]
    if not isinstance(system_id, str) or not _ID.match(system_id):
        raise BadRequestData("'id' must be 1-64 letters, digits, '_', '-' or '.'")
    kind = body.get("kind")
    if kind not in KINDS:
        raise BadRequestData(f"'kind' must be one of {list(KINDS)}")
    url = _text(body, "url", limit=2000)
    try:
        policy.check(url)
    except BadRequestData as refused:
        raise BadRequestData(refused.detail.replace("Notifications may not be sent to",
                                                    "CityOS may not pull from")) from None
    if not url.lower().startswith(("http://", "https://")):
        raise BadRequestData("'url' must be an http:// or https:// URL")
    interval = body.get("interval", DEFAULT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or interval < MIN_INTERVAL:
        raise BadRequestData(f"'interval' is the number of seconds between pulls (>= {MIN_INTERVAL})")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequestData("'enabled' must be true or false")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequestData("'options' must be an object")
    _check_options(kind, options)
    return {"id": system_id, "name": _text(body, "name", default=system_id), "kind": kind,
            "url": url, "interval": interval, "enabled": enabled, "options": options,
            "description": str(body.get("description") or "")[:1000]}


def _check_options(kind: str, options: dict[str, Any]) -> None:
    unknown = set(options) - OPTIONS[kind]
    if unknown:
        raise BadRequestData(f"options {sorted(unknown)} are not understood by kind {kind}; "
                             f"use {sorted(OPTIONS[kind])}")
    for key, value in options.items():
        if key == "mapping":
            try:
                mapping_from_dict(value)
            except MappingError as exc:
                raise BadRequestData(f"options.mapping: {exc}") from None
        elif key == "pageSize":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise BadRequestData("options.pageSize must be an integer from 1 to 1000")
        elif not isinstance(value, str):
            raise BadRequestData(f"options.{key} must be a string")
    if kind == "rest-json" and "mapping" not in options:
        raise BadRequestData("a rest-json system needs options.mapping (type, id template, "
                             "attributes)")
    if kind == "ngsi-ld" and "type" not in options:
        raise BadRequestData("an ngsi-ld system needs options.type (an NGSI-LD query needs one)")
    if "dataset" in options and find_dataset(options["dataset"]) is None:
        raise BadRequestData(f"options.dataset {options['dataset']!r} is not a recommended dataset")
    if "encoding" in options:
        try:
            normalise_encoding(options["encoding"])
        except ValueError as exc:
            raise BadRequestData(f"options.encoding: {exc}") from None


def public(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the API shows it (without the store's own keys)."""
    return {k: v for k, v in document.items() if not k.startswith("_")}
