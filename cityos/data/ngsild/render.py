"""Internal entities -> response bodies: normalized, concise, simplified and GeoJSON (clause 4.5).

Compaction against the caller's ``@context`` happens here, so the stored form never depends on who
wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cityos.data.ngsild.model import (
    GEOPROPERTY,
    LANGUAGEPROPERTY,
    LISTRELATIONSHIP,
    LOCATION,
    PROPERTY,
    RELATIONSHIP,
    VALUE_KEY,
    VOCABPROPERTY,
    Entity,
    Instance,
    default_instance,
)
from cityos.data.ngsild.terms import TermMap

NORMALIZED, CONCISE, SIMPLIFIED = "normalized", "concise", "simplified"


@dataclass(frozen=True)
class RenderOptions:
    """How one response shows its entities (from ``options``, ``format``, ``attrs``, ``pick``...)."""

    form: str = NORMALIZED
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None   # expanded attribute IRIs to keep (attrs / pick)
    omit: frozenset[str] = frozenset()   # expanded attribute IRIs to drop
    pick_id: bool = True                 # pick/omit may drop id and type as well
    pick_type: bool = True
    lang: str | None = None
    dataset_id: str | None = None        # only this datasetId ("@none" = the default instance)


# (attribute IRI, instance, its rendered value) -> the value to send; linked entity retrieval
# (``join``, see :mod:`cityos.data.ngsild.join`) uses it to put linked entities into relationships
Decorate = Callable[[str, Instance, Any], Any]


def visible_attributes(entity: Entity, opts: RenderOptions) -> Iterator[tuple[str, list[Instance]]]:
    """(attribute IRI, instances) of every attribute a rendering with ``opts`` shows."""
    for iri, instances in entity["attrs"].items():
        if opts.attrs is not None and iri not in opts.attrs:
            continue
        if iri in opts.omit:
            continue
        chosen = _select_instances(instances, opts)
        if chosen:
            yield iri, chosen


def render_entity(entity: Entity, tm: TermMap, opts: RenderOptions,
                  decorate: Decorate | None = None) -> dict[str, Any]:
    """One entity in the requested representation, compacted with ``tm``."""
    out: dict[str, Any] = {}
    if opts.pick_id:
        out["id"] = entity["id"]
    if opts.pick_type:
        types = [tm.compact(t) for t in entity["type"]]
        out["type"] = types[0] if len(types) == 1 else types
    if "scope" in entity:
        scope = entity["scope"]
        out["scope"] = scope[0] if len(scope) == 1 else scope
    if opts.sys_attrs:
        out["createdAt"] = entity["createdAt"]
        out["modifiedAt"] = entity["modifiedAt"]
    for iri, chosen in visible_attributes(entity, opts):
        if opts.form == SIMPLIFIED:
            values = [simplified_value(i, tm, opts.lang) for i in chosen]
        else:
            values = [render_instance(i, tm, opts) for i in chosen]
        if decorate is not None:
            values = [decorate(iri, i, v) for i, v in zip(chosen, values, strict=True)]
        out[tm.compact(iri)] = values[0] if len(values) == 1 else values
    return out


def _select_instances(instances: list[Instance], opts: RenderOptions) -> list[Instance]:
    if opts.dataset_id is None:
        if opts.form == SIMPLIFIED:
            default = default_instance(instances)
            return [default] if default is not None else instances[:1]
        return instances
    if opts.dataset_id == "@none":
        return [i for i in instances if "datasetId" not in i]
    return [i for i in instances if i.get("datasetId") == opts.dataset_id]


def render_instance(instance: Instance, tm: TermMap, opts: RenderOptions) -> Any:
    """One attribute instance (normalized or concise) with its sub-attributes."""
    kind = instance["type"]
    key = VALUE_KEY[kind]
    value = instance[key]
    out: dict[str, Any] = {}
    if kind == VOCABPROPERTY:
        value = [tm.compact(v) for v in value] if isinstance(value, list) else tm.compact(value)
    if kind == LISTRELATIONSHIP:
        value = [{"object": v} for v in value]  # the normalized objectList form (clause 4.5.1)
    if kind == LANGUAGEPROPERTY and opts.lang is not None:
        tag, text = pick_language(value, opts.lang)
        kind, key, value = PROPERTY, "value", text
        out_lang = tag
    else:
        out_lang = None
    concise = opts.form == CONCISE
    if not concise:
        out["type"] = kind
    out[key] = value
    if out_lang is not None:
        out["lang"] = out_lang
    for meta in ("observedAt", "unitCode", "datasetId"):
        if meta in instance:
            out[meta] = instance[meta]
    if "objectType" in instance:
        out["objectType"] = tm.compact(instance["objectType"])
    if opts.sys_attrs:
        out["createdAt"] = instance["createdAt"]
        out["modifiedAt"] = instance["modifiedAt"]
    for sub_iri, sub in instance.get("sub", {}).items():
        out[tm.compact(sub_iri)] = render_instance(sub, tm, opts)
    if concise and len(out) == 1:
        if kind == PROPERTY and not isinstance(value, dict):
            return value  # a bare value is unambiguous for a Property
        if kind == GEOPROPERTY:
            return value  # a GeoJSON geometry marks itself as a GeoProperty
    return out


def simplified_value(instance: Instance, tm: TermMap, lang: str | None) -> Any:
    """The keyValues form of one instance (clause 4.5.4).

    A Property, GeoProperty or Relationship is its bare value or object; the v1.8 attribute types
    keep their value member (``{"languageMap": ...}``, ``{"vocab": ...}``, ``{"valueList": ...}``,
    ``{"objectList": ...}``, ``{"json": ...}``) so that the type can still be told apart.  With
    ``lang``, a LanguageProperty becomes the plain string of the chosen language.
    """
    kind = instance["type"]
    key = VALUE_KEY[kind]
    value = instance[key]
    if kind in (PROPERTY, GEOPROPERTY, RELATIONSHIP):
        return value
    if kind == LANGUAGEPROPERTY and lang is not None:
        return pick_language(value, lang)[1]
    if kind == VOCABPROPERTY:
        value = [tm.compact(v) for v in value] if isinstance(value, list) else tm.compact(value)
    return {key: value}


def pick_language(language_map: dict[str, Any], wanted: str) -> tuple[str, Any]:
    """The best string of a language map for the ``lang`` parameter (a comma list, ``*`` any)."""
    for tag in [t.split(";")[0].strip() for t in wanted.split(",")]:
        if tag == "*" and language_map:
            first = next(iter(language_map))
            return first, language_map[first]
        if tag in language_map:
            return tag, language_map[tag]
        for key in language_map:
            if key.lower().split("-")[0] == tag.lower():
                return key, language_map[key]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    first = next(iter(language_map))
    return first, language_map[first]


def render_feature(entity: Entity, tm: TermMap, opts: RenderOptions,
                   geometry_iri: str = LOCATION, decorate: Decorate | None = None) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (``application/geo+json``, clause 4.5.16)."""
    body = render_entity(entity, tm, opts, decorate)
    geometry = None
    instances = entity["attrs"].get(geometry_iri)
    if instances:
        chosen = default_instance(instances) or instances[0]
        if chosen["type"] == GEOPROPERTY:
            geometry = chosen["value"]
    body.pop("id", None)
    return {"id": entity["id"], "type": "Feature", "geometry": geometry, "properties": body}


def render_relationship_targets(entity: Entity) -> list[str]:
    """Every entity id this entity points to (used by discovery and later by joins)."""
    targets: list[str] = []
    for instances in entity["attrs"].values():
        for instance in instances:
            if instance["type"] == RELATIONSHIP:
                obj = instance["object"]
                targets.extend(obj if isinstance(obj, list) else [obj])
    return targets
