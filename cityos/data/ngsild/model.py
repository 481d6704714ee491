"""The internal form of an NGSI-LD entity, shared by every module of the broker.

Requests arrive compacted against some ``@context``; the broker expands every attribute name and
entity type to its full IRI once, on the way in, and compacts again on the way out against the
caller's context.  Everything between (storage, ``q`` evaluation, geo-queries, discovery) works on
this expanded form only, so two callers with different contexts that mean the same IRI see the same
data (DM-MD-1).

Entity (a plain ``dict``, JSON-serialisable as is)::

    {
      "id": "urn:ngsi-ld:WeatherObserved:kobe-1",          # the entity id (an absolute IRI)
      "type": ["https://smartdatamodels.org/dataModel.Weather/WeatherObserved"],  # expanded, >= 1
      "scope": ["/Japan/Kobe"],                            # optional
      "createdAt": "2026-11-25T09:00:00.000000Z",           # system attributes, UTC, always set
      "modifiedAt": "2026-11-25T09:00:00.000000Z",
      "attrs": {                                           # expanded attribute IRI -> instances
        "https://uri.etsi.org/ngsi-ld/default-context/temperature": [Instance, ...]
      }
    }

An attribute has one instance per ``datasetId``; the default instance carries no ``datasetId`` key.
Instance (a ``dict``)::

    {
      "type": "Property",          # one of ATTRIBUTE_TYPES
      "value": 12.5,               # Property, GeoProperty (a GeoJSON geometry dict)
      "object": "urn:...",         # Relationship (a string, or a list of strings)
      "objectList": ["urn:..."],   # ListRelationship
      "languageMap": {"ja": "...", "en": "..."},   # LanguageProperty
      "vocab": "https://...",      # VocabProperty: expanded IRI(s), a string or a list
      "valueList": [1, 2],         # ListProperty
      "json": {...},               # JsonProperty: any JSON, never expanded
      "objectType": "https://...", # optional on relationships (expanded)
      "observedAt": "2026-11-25T00:00:00.000Z",    # optional, as given (normalised to UTC Z)
      "unitCode": "CEL",           # optional
      "datasetId": "urn:...",      # optional; absent on the default instance
      "createdAt": "...", "modifiedAt": "...",     # system attributes, always set by the broker
      "sub": {"<expanded sub-attribute IRI>": Instance}   # optional sub-attributes (one level kept
                                                          # recursively in the same shape)
    }

The key holding the main value of each attribute type is ``VALUE_KEY[type]``.
"""

from __future__ import annotations

from typing import Any

Entity = dict[str, Any]
Instance = dict[str, Any]

PROPERTY = "Property"
RELATIONSHIP = "Relationship"
GEOPROPERTY = "GeoProperty"
LANGUAGEPROPERTY = "LanguageProperty"
VOCABPROPERTY = "VocabProperty"
LISTPROPERTY = "ListProperty"
LISTRELATIONSHIP = "ListRelationship"
JSONPROPERTY = "JsonProperty"

# attribute type -> the member that holds its value, in both the internal and normalized forms
VALUE_KEY: dict[str, str] = {
    PROPERTY: "value",
    GEOPROPERTY: "value",
    RELATIONSHIP: "object",
    LISTRELATIONSHIP: "objectList",
    LANGUAGEPROPERTY: "languageMap",
    VOCABPROPERTY: "vocab",
    LISTPROPERTY: "valueList",
    JSONPROPERTY: "json",
}
ATTRIBUTE_TYPES = frozenset(VALUE_KEY)

# members of an attribute that are never sub-attributes
META_KEYS = frozenset(
    {"type", "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "deletedAt",
     "instanceId", "objectType", "lang", "previousValue"}
) | frozenset(VALUE_KEY.values())

# entity members that are never attributes
ENTITY_KEYS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"})

# the NGSI-LD core vocabulary: members of the core context resolve here
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = NGSI_LD + "location"
OBSERVATION_SPACE = NGSI_LD + "observationSpace"
OPERATION_SPACE = NGSI_LD + "operationSpace"


def default_instance(instances: list[Instance]) -> Instance | None:
    """The instance without a ``datasetId``, or ``None`` when the attribute has none."""
    for instance in instances:
        if "datasetId" not in instance:
            return instance
    return None


def main_value(instance: Instance) -> Any:
    """The value an instance carries, whatever its attribute type."""
    return instance.get(VALUE_KEY.get(instance.get("type", PROPERTY), "value"))
