"""The broker's internal entities -> NGSI v2 JSON (normalized, keyValues, values).

:func:`render_entity` is the one function that shows an entity through the v2 face; the HTTP
routes use it, and so can a v2 notifier (a v2 subscription's ``attrsFormat`` is the ``form``, its
``notification.attrs`` / ``metadata`` the filters).

Entities written through the NGSI-LD face render too: Property values get Orion's default type
(``Number``, ``Text``, ``Boolean``, ``StructuredValue``, ``None``; a JSON-LD ``DateTime`` value object
becomes ``DateTime``), GeoProperty becomes ``geo:json``, Relationship ``Relationship`` (objects
mapped back to v2 ids), the NGSI-LD 1.8 types keep their own name (``LanguageProperty`` ...).  Of an
attribute with several ``datasetId`` instances, the default instance (or the first) is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cityos.data.ngsild import TermMap
from cityos.data.ngsild.model import Entity, Instance, default_instance
from cityos.data.ngsild.terms import core_only
from cityos.data.ngsiv2 import geo
from cityos.data.ngsiv2.mapping import to_v2_id, v2_time
from cityos.data.ngsiv2.parse import NATIVE_METADATA, V2TYPE, infer_type

NORMALIZED, KEY_VALUES, VALUES = "normalized", "keyValues", "values"
BUILTIN_ATTRS = ("dateCreated", "dateModified")
BUILTIN_METADATA = ("dateCreated", "dateModified")


def attribute_type_value(instance: Instance, tm: TermMap) -> tuple[str, Any]:
    """The v2 ``(type, value)`` of one stored attribute instance."""
    kind = instance.get("type", "Property")
    v2type = instance.get(V2TYPE)
    if kind == "GeoProperty":
        v2type = v2type or "geo:json"
        return v2type, geo.from_geojson(v2type, instance.get("value"))
    if kind == "Relationship":
        target = instance.get("object")
        value = [to_v2_id(t) for t in target] if isinstance(target, list) else \
            to_v2_id(target) if isinstance(target, str) else target
        return v2type or "Relationship", value
    if kind == "Property":
        value = instance.get("value")
        if isinstance(value, dict) and "@value" in value and v2type is None:
            return str(value.get("@type", "StructuredValue")), value["@value"]
        return v2type or infer_type(value), value
    if kind == "ListRelationship":
        return kind, [to_v2_id(t) for t in instance.get("objectList", [])]
    if kind == "VocabProperty":
        vocab = instance.get("vocab")
        return kind, [tm.compact(v) for v in vocab] if isinstance(vocab, list) else \
            tm.compact(vocab) if isinstance(vocab, str) else vocab
    member = {"LanguageProperty": "languageMap", "ListProperty": "valueList",
              "JsonProperty": "json"}.get(kind, "value")
    return kind, instance.get(member)


def _metadata(instance: Instance, tm: TermMap, wanted: Sequence[str] | None) -> dict[str, Any]:
    everything = wanted is None or "*" in wanted
    out: dict[str, Any] = {}
    for name, mtype in NATIVE_METADATA.items():
        if name in instance and (everything or name in wanted):  # type: ignore[operator]
            out[name] = {"type": mtype, "value": instance[name]}
    for iri, sub in (instance.get("sub") or {}).items():
        name = tm.compact(iri)
        if everything or name in wanted:  # type: ignore[operator]
            mtype, value = attribute_type_value(sub, tm)
            out[name] = {"type": mtype, "value": value}
    if wanted:
        for name in BUILTIN_METADATA:
            if name in wanted:
                key = "createdAt" if name == "dateCreated" else "modifiedAt"
                if key in instance:
                    out[name] = {"type": "DateTime", "value": v2_time(instance[key])}
    return out


def render_attribute(instance: Instance, tm: TermMap,
                     metadata: Sequence[str] | None = None) -> dict[str, Any]:
    """One attribute in the normalized form: ``{"type", "value", "metadata"}``."""
    v2type, value = attribute_type_value(instance, tm)
    return {"type": v2type, "value": value, "metadata": _metadata(instance, tm, metadata)}


def chosen_instance(instances: list[Instance]) -> Instance | None:
    """The instance the v2 face shows of a (possibly multi-instance) attribute."""
    if not instances:
        return None
    return default_instance(instances) or instances[0]


def _selected(entity: Entity, tm: TermMap,
              attrs: Sequence[str] | None) -> list[tuple[str, Instance | None, str | None]]:
    """(name, instance, builtin-time) triples in the order v2 shows them."""
    stored = {tm.compact(iri): iri for iri in entity["attrs"]}
    names: list[str] = []
    if attrs is None or "*" in attrs:
        names = list(stored)
    if attrs is not None:
        names += [a for a in attrs if a != "*" and a not in names]
    out: list[tuple[str, Instance | None, str | None]] = []
    for name in names:
        if name in BUILTIN_ATTRS:
            if attrs is not None and name in attrs:
                key = "createdAt" if name == "dateCreated" else "modifiedAt"
                out.append((name, None, v2_time(entity.get(key, ""))))
            continue
        iri = stored.get(name) or tm.expand(name)
        instance = chosen_instance(entity["attrs"].get(iri, []))
        if instance is not None:
            out.append((name, instance, None))
    return out


def render_entity(entity: Entity, tm: TermMap | None = None, form: str = NORMALIZED,
                  attrs: Sequence[str] | None = None,
                  metadata: Sequence[str] | None = None,
                  except_attrs: Sequence[str] = ()) -> Any:
    """An entity in v2 JSON: an object (normalized / keyValues) or a list of values (values).

    ``tm`` defaults to the NGSI-LD core context's term map (the one the v2 face always uses);
    ``attrs`` / ``metadata`` are v2 names, builtins (``dateCreated``...) and ``*`` included;
    ``except_attrs`` leaves attributes out (a v2 subscription's ``exceptAttrs``).
    """
    if tm is None:
        tm = core_only()
    selected = [s for s in _selected(entity, tm, attrs) if s[0] not in except_attrs]
    if form == VALUES:
        return [time if instance is None else attribute_type_value(instance, tm)[1]
                for _, instance, time in selected]
    types = entity.get("type") or []
    out: dict[str, Any] = {"id": to_v2_id(entity["id"]),
                           "type": tm.compact(types[0]) if types else "Thing"}
    for name, instance, time in selected:
        if form == KEY_VALUES:
            out[name] = time if instance is None else attribute_type_value(instance, tm)[1]
        elif instance is None:
            out[name] = {"type": "DateTime", "value": time, "metadata": {}}
        else:
            out[name] = render_attribute(instance, tm, metadata)
    return out


def unique_rows(rows: list[Any]) -> list[Any]:
    """``options=unique``: drop repeated rows, keeping the first of each."""
    seen: list[Any] = []
    for row in rows:
        if row not in seen:
            seen.append(row)
    return seen
