"""Temporal representations of an entity (clause 4.5.7 - 4.5.9), compacted with the caller's
``@context``:

* normalized: every attribute is an array of instances, each with its ``instanceId`` (and
  ``createdAt`` / ``modifiedAt`` with ``sysAttrs`` or when that is the ``timeproperty``); with
  ``timeproperty=deletedAt`` the instances are the deletions: the value ``urn:ngsi-ld:null``
  (``{"@none": "urn:ngsi-ld:null"}`` for a LanguageProperty) and ``deletedAt``;
* temporalValues (simplified): ``{"type": "Property", "values": [[value, time], ...]}``, one object
  per ``datasetId`` (``objects`` for relationships, ``languageMaps`` ... for the v1.8 types);
* aggregatedValues: ``{"type": "Property", "avg": [[value, start, end], ...], ...}``.
"""

from __future__ import annotations

from typing import Any

from cityos.data.ngsild.model import LANGUAGEPROPERTY, VALUE_KEY, VOCABPROPERTY
from cityos.data.ngsild.payload import NULL_URI
from cityos.data.ngsild.render import RenderOptions, pick_language, render_instance
from cityos.data.ngsild.store.temporal_base import DELETED_AT, InstanceRow, TemporalEntityRecord
from cityos.data.ngsild.temporal.pagination import Series
from cityos.data.ngsild.temporal.query import AGGREGATED, TEMPORAL_VALUES, TemporalQuery
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import from_micros

# attribute type -> the member of the simplified temporal form that lists its values
VALUES_MEMBER = {"Property": "values", "GeoProperty": "values", "Relationship": "objects",
                 "ListRelationship": "objectLists", "LanguageProperty": "languageMaps",
                 "VocabProperty": "vocabs", "ListProperty": "valueLists", "JsonProperty": "jsons"}


def render_temporal_entity(record: TemporalEntityRecord, series: list[Series], tq: TemporalQuery,
                           tm: TermMap, lang: str | None, kinds: dict[str, str]) -> dict[str, Any]:
    """One temporal entity; ``kinds`` gives each attribute's type (for the non-normalized forms)."""
    types = [tm.compact(t) for t in record.types]
    out: dict[str, Any] = {"id": record.id, "type": types[0] if len(types) == 1 else types}
    if record.scope:
        out["scope"] = record.scope[0] if len(record.scope) == 1 else record.scope
    if tq.sys_attrs:
        out["createdAt"] = from_micros(record.created_at)
        out["modifiedAt"] = from_micros(record.modified_at)
        if record.deleted_at is not None:
            out["deletedAt"] = from_micros(record.deleted_at)
    for s in series:
        kind = kinds.get(s.attr, "Property")
        if tq.representation == AGGREGATED:
            out[tm.compact(s.attr)] = _aggregated(s, kind, tq)
        elif tq.representation == TEMPORAL_VALUES:
            out[tm.compact(s.attr)] = _temporal_values(s, kind, tm, lang,
                                                       tq.timeproperty == DELETED_AT)
        else:
            out[tm.compact(s.attr)] = [_instance(i.payload, tm, tq, lang) for i in s.items]
    return out


def _instance(row: InstanceRow, tm: TermMap, tq: TemporalQuery, lang: str | None) -> Any:
    if tq.timeproperty == DELETED_AT:
        return _deletion(row)
    out = render_instance(row.doc, tm, RenderOptions(lang=lang))
    out["instanceId"] = row.instance_id
    if tq.sys_attrs or tq.timeproperty == "createdAt":
        out["createdAt"] = from_micros(row.created_at)
    if tq.sys_attrs or tq.timeproperty == "modifiedAt":
        out["modifiedAt"] = from_micros(row.modified_at)
    return out


def _deletion(row: InstanceRow) -> dict[str, Any]:
    """A deletion row: the attribute type, the null value, ``deletedAt`` (clause 4.5.7)."""
    kind = row.doc.get("type", "Property")
    key = VALUE_KEY.get(kind, "value")
    out: dict[str, Any] = {"type": kind,
                           key: {"@none": NULL_URI} if kind == LANGUAGEPROPERTY else NULL_URI,
                           "instanceId": row.instance_id, "deletedAt": from_micros(row.t)}
    if row.dataset_id:
        out["datasetId"] = row.dataset_id
    return out


def _one_or_many(groups: list[dict[str, Any]]) -> Any:
    return groups[0] if len(groups) == 1 else groups


def _group(dataset: str, kind: str, groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    group = groups.get(dataset)
    if group is None:
        group = {"type": kind}
        if dataset:
            group["datasetId"] = dataset
        groups[dataset] = group
    return group


def _temporal_values(s: Series, kind: str, tm: TermMap, lang: str | None,
                     deletions: bool = False) -> Any:
    member = VALUES_MEMBER.get(kind, "values")
    groups: dict[str, dict[str, Any]] = {}
    for item in s.items:
        row: InstanceRow = item.payload
        group = _group(row.dataset_id, kind, groups)
        value = NULL_URI if deletions else _simple_value(row.doc, tm, lang)
        group.setdefault(member, []).append([value, from_micros(item.t)])
    if not groups:
        return {"type": kind, member: []}
    return _one_or_many(list(groups.values()))


def _simple_value(doc: dict[str, Any], tm: TermMap, lang: str | None) -> Any:
    kind = doc.get("type", "Property")
    value = doc.get(VALUE_KEY.get(kind, "value"))
    if kind == VOCABPROPERTY and isinstance(value, str | list):
        return [tm.compact(v) for v in value] if isinstance(value, list) else tm.compact(value)
    if kind == LANGUAGEPROPERTY and lang is not None and isinstance(value, dict) and value:
        return pick_language(value, lang)[1]
    return value


def _aggregated(s: Series, kind: str, tq: TemporalQuery) -> Any:
    groups: dict[str, dict[str, Any]] = {}
    for item in s.items:
        dataset, start, end, values = item.payload
        group = _group(dataset, kind, groups)
        for method in tq.aggr_methods:
            group.setdefault(method, []).append([values[method], from_micros(start),
                                                 from_micros(end)])
    if not groups:
        return {"type": kind, **{m: [] for m in tq.aggr_methods}}
    return _one_or_many(list(groups.values()))
