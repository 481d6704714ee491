"""Read the data models in shared/data: context URLs, attribute names and the context files.

Only the generator reads these files; the broker ships copies of the contexts (see
``cityos/data/demo/contexts``) and never looks at shared/ at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from demo.common import CORE_CONTEXT

# Smart Data Models used by the demo: entity type -> repository (folder under smart-data-models/)
SDM_TYPES: dict[str, str] = {
    "WeatherObserved": "dataModel.Weather",
    "Device": "dataModel.Device",
    "AirQualityObserved": "dataModel.Environment",
    "OffStreetParking": "dataModel.Parking",
    "ParkingSpot": "dataModel.Parking",
    "Streetlight": "dataModel.Streetlighting",
    "StreetlightGroup": "dataModel.Streetlighting",  # no example in shared/: context only
}

# Japanese recommended datasets used by the demo: entity type -> dataset folder
JP_TYPES: dict[str, str] = {
    "AED設置箇所一覧": "01_AED設置箇所一覧",
    "観光施設一覧": "05_観光施設一覧",
    "公衆トイレ一覧": "08_公衆トイレ一覧",
    "指定緊急避難場所一覧": "10_指定緊急避難場所一覧",
    "公共施設一覧": "12_公共施設一覧",
}

# NEC-FIWARE/smart-data-models (MIT), folder cio/. Of its two contexts the demo uses the NGSI one,
# datamodels.context-ngsi.jsonld: the same term -> IRI mappings as datamodels.context.jsonld
# without the xsd value coercions (which NGSI-LD attribute values never use), in 188 lines
# instead of 950. Pinned to a commit holding the file exactly as shared/ has it.
JP_COMMIT = "6a51da18f9582fbb90fe1558d73bb3989e9d5ec0"
JP_CONTEXT_SOURCE = "datamodels.context-ngsi.jsonld"
JP_CONTEXT_URL = ("https://raw.githubusercontent.com/NEC-FIWARE/smart-data-models/"
                  f"{JP_COMMIT}/cio/{JP_CONTEXT_SOURCE}")
JP_CONTEXT_FILE = "jp-recommended-datasets.datamodels.context-ngsi.jsonld"


@dataclass
class TypeModel:
    """What the generator needs to know about one entity type."""

    entity_type: str
    context_url: str
    context_terms: frozenset[str]
    attributes: frozenset[str] = frozenset()  # named by the example or schema / model
    required: tuple[str, ...] = ()


@dataclass
class Models:
    """The models read from ``<shared>/data``."""

    types: dict[str, TypeModel] = field(default_factory=dict)
    contexts: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # url -> (file, bytes)


def _schema_properties(schema: Any) -> set[str]:
    """Every property name declared anywhere in a JSON Schema (following no ``$ref``)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _context_terms(doc: dict[str, Any]) -> frozenset[str]:
    ctx = doc["@context"]
    if not isinstance(ctx, dict):
        raise ValueError("expected a context object")
    return frozenset(k for k in ctx if not k.startswith("@"))


def read_models(data_dir: Path) -> Models:
    """Read the Smart Data Models and Japanese dataset models that the demo uses."""
    sdm_dir = data_dir / "smart-data-models"
    jp_dir = data_dir / "jp-recommended-datasets"
    models = Models()

    repo_urls: dict[str, str] = {}
    for entity_type, repo in SDM_TYPES.items():
        example_path = sdm_dir / repo / entity_type / "examples" / "example-normalized.jsonld"
        attributes: set[str] = set()
        required: tuple[str, ...] = ()
        if example_path.exists():
            example = json.loads(example_path.read_text(encoding="utf-8"))
            urls = [u for u in example["@context"] if u != CORE_CONTEXT and "etsi.org" not in u]
            if len(urls) != 1:
                raise ValueError(f"{example_path}: expected one model context, got {urls}")
            repo_urls.setdefault(repo, urls[0])
            if repo_urls[repo] != urls[0]:
                raise ValueError(f"{repo}: examples disagree on the context URL")
            attributes.update(k for k in example if k not in ("id", "type", "@context"))
            schema = json.loads((sdm_dir / repo / entity_type / "schema.json").read_text("utf-8"))
            attributes.update(_schema_properties(schema))
            required = tuple(r for r in schema.get("required", []) if r not in ("id", "type"))
        models.types[entity_type] = TypeModel(entity_type, "", frozenset(), frozenset(attributes),
                                              required)

    for entity_type, repo in SDM_TYPES.items():
        url = repo_urls[repo]  # every repo used has at least one example
        raw = (sdm_dir / repo / "context.jsonld").read_bytes()
        models.contexts[url] = (f"smart-data-models.{repo}.context.jsonld", raw)
        model = models.types[entity_type]
        model.context_url = url
        model.context_terms = _context_terms(json.loads(raw))

    jp_raw = (jp_dir / JP_CONTEXT_SOURCE).read_bytes()
    # the typed context must agree on every IRI (it is the one datamodels.md documents)
    typed = json.loads((jp_dir / "datamodels.context.jsonld").read_text(encoding="utf-8"))
    for term, iri in json.loads(jp_raw)["@context"].items():
        definition = typed["@context"][term]
        if (definition["@id"] if isinstance(definition, dict) else definition) != iri:
            raise ValueError(f"jp contexts disagree on {term!r}")
    models.contexts[JP_CONTEXT_URL] = (JP_CONTEXT_FILE, jp_raw)
    jp_terms = _context_terms(json.loads(jp_raw))
    for entity_type, folder in JP_TYPES.items():
        spec = yaml.safe_load((jp_dir / folder / "model.yaml").read_text(encoding="utf-8"))
        schema = spec["components"]["schemas"][entity_type]
        if entity_type not in jp_terms:
            raise ValueError(f"{entity_type} is not a term of the jp context")
        models.types[entity_type] = TypeModel(
            entity_type, JP_CONTEXT_URL, jp_terms, frozenset(schema["properties"]),
            tuple(schema.get("required", [])))
    return models


def check_entity(entity: dict[str, Any], models: Models, default_vocab_ok: frozenset[str]) -> None:
    """Fail unless every attribute of ``entity`` is a term of its context (or allowed to fall to
    the core context's default vocabulary) and, for the jp models, is named by the model; also
    fail when an attribute the model requires is missing."""
    model = models.types[entity["type"]]
    if entity["@context"] != [model.context_url, CORE_CONTEXT]:
        raise ValueError(f"{entity['id']}: unexpected @context {entity['@context']}")
    names = [k for k in entity if k not in ("id", "type", "@context")]
    for name in names:
        if name in model.context_terms or name in default_vocab_ok or name == "location":
            continue
        raise ValueError(f"{entity['id']}: attribute {name!r} is not in {model.context_url}")
    if model.context_url == JP_CONTEXT_URL:
        unknown = [n for n in names if n not in model.attributes]
        if unknown:
            raise ValueError(f"{entity['id']}: {unknown} are not attributes of {entity['type']}")
    missing = [r for r in model.required if r not in entity]
    if missing:
        raise ValueError(f"{entity['id']}: required attributes missing: {missing}")
