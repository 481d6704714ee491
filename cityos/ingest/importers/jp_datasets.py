"""Japan's recommended open datasets (推奨データセット) mapped onto NGSI-LD entities.

For each dataset (see :mod:`jp_table`) the entity type is the term its JSON-LD context names
(``指定緊急避難場所一覧`` for evacuation sites), attribute names are the model's column names, and
values are typed as the model says (Number, Date, Time, URL; the rest Text).  Entity ids are
``urn:ngsi-ld:{slug}:{code}-{NO}``: the dataset's ASCII slug, the local government code column
(``都道府県コード又は市区町村コード``, ``市区町村コード`` or ``全国地方公共団体コード``) and the
row's ``NO`` (or ``ID``), so a re-import of the same file writes the same entities.

Headers of real files vary: ``緯度(度)``, ``latitude``, full-width spaces and parentheses, another
column order, the misspelling ``連結標記``.  Headers are compared after NFKC normalisation without
white space, then without a trailing parenthesised unit, then through a few aliases.  Columns the
model does not know are kept under their own (sanitised) names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from cityos.ingest.importers.jp_table import TABLE, VOCABULARY
from cityos.ingest.importers.mapping import MISSING_CODE, Field, Mapping, attribute_name
from cityos.ingest.importers.values import municipality_code

CONTEXT_ID = "jp-recommended-datasets"
CONTEXT_PATH = f"/ngsi-ld/v1/jsonldContexts/{CONTEXT_ID}"
CODE_COLUMNS = ("都道府県コード又は市区町村コード", "市区町村コード", "全国地方公共団体コード")
NUMBER_COLUMNS = ("NO", "ID")
_ALIASES = {"latitude": "緯度", "lat": "緯度", "緯度世界測地系": "緯度",
            "longitude": "経度", "lon": "経度", "lng": "経度", "long": "経度",
            "経度世界測地系": "経度", "no.": "NO", "番号": "NO", "市町村コード": "市区町村コード",
            "団体コード": "全国地方公共団体コード", "地方公共団体コード": "全国地方公共団体コード",
            "所在地_連結標記": "所在地_連結表記", "名称_ｶﾅ": "名称_カナ", "ふりがな": "名称_カナ"}
_UNIT = re.compile(r"[(（][^()（）]*[)）]$")


def header_key(header: str) -> str:
    """The form headers are compared in: NFKC, no white space, lower case."""
    return "".join(unicodedata.normalize("NFKC", header).split()).lower()


@dataclass(frozen=True)
class Dataset:
    """One recommended dataset's model."""

    number: str
    name: str                 # the entity type (a term of the dataset context)
    slug: str                 # ASCII name used in entity ids
    attributes: tuple[str, ...]
    kinds: dict[str, str]     # attribute -> number / date / time / url (others are text)

    def kind(self, attribute: str) -> str:
        """The value kind of ``attribute``."""
        return self.kinds.get(attribute, "text")

    def id_columns(self) -> tuple[str, ...]:
        """The columns that together identify a row within a local government."""
        if self.number == "11":      # population: one row per area and survey date
            return ("地域コード", "調査年月日")
        return ("NO",)


def _build() -> tuple[Dataset, ...]:
    out: list[Dataset] = []
    for number, name, slug, attrs, numbers, dates, times, urls in TABLE:
        kinds: dict[str, str] = {}
        for kind, names in (("number", numbers), ("date", dates), ("time", times), ("url", urls)):
            kinds.update({a: kind for a in names.split("|") if a})
        out.append(Dataset(number, name, slug, tuple(attrs.split("|")), kinds))
    return tuple(out)


DATASETS = _build()


def find_dataset(name: str) -> Dataset | None:
    """A dataset by number (``10``), type name (``指定緊急避難場所一覧``) or slug."""
    key = header_key(name)
    for dataset in DATASETS:
        if key in (dataset.number, str(int(dataset.number)), header_key(dataset.name),
                   dataset.slug.lower()):
            return dataset
    return None


def _canonical(header: str, known: dict[str, str]) -> str | None:
    key = header_key(header)
    if key in known:
        return known[key]
    stripped = _UNIT.sub("", key)
    if stripped in known:
        return known[stripped]
    alias = _ALIASES.get(key) or _ALIASES.get(stripped)
    return known.get(header_key(alias)) if alias else None


def _known(dataset: Dataset) -> dict[str, str]:
    known = {header_key(a): a for a in dataset.attributes}
    for extra in (*CODE_COLUMNS, "ID"):
        known.setdefault(header_key(extra), extra)
    return known


def detect(headers: list[str], filename: str = "") -> Dataset | None:
    """The dataset a file most likely is: by name in its file name, else by matching headers."""
    stem = header_key(filename)
    for dataset in DATASETS:
        if header_key(dataset.name) in stem:
            return dataset
    best, best_score = None, 0
    for dataset in DATASETS:
        known = _known(dataset)
        found = {_canonical(h, known) for h in headers} - {None}
        score = len(found & set(dataset.attributes))
        if score > best_score:
            best, best_score = dataset, score
    return best if best_score >= 4 else None


def dataset_mapping(dataset: Dataset, headers: list[str], code: str | None = None) -> Mapping:
    """The :class:`Mapping` of ``dataset`` for a file with these ``headers``.

    ``code`` stands in for the local government code when the file has no code column.
    """
    known = _known(dataset)
    fields: dict[str, Field] = {}
    roles: dict[str, str] = {}
    for header in headers:
        canonical = _canonical(header, known)
        if canonical is None:
            fields[header] = Field(attribute_name(header))   # kept as the text it is
            continue
        roles.setdefault(canonical, header)
        fields[header] = Field(attribute_name(canonical), dataset.kind(canonical))
    code_header = next((roles[c] for c in CODE_COLUMNS if c in roles), None)
    parts: list[str] = []
    if code_header is None:
        parts.append(municipality_code(code) if code else "{" + MISSING_CODE + "}")
    else:
        parts.append("{" + code_header + "}")
    for column in dataset.id_columns():
        found = roles.get(column) or (roles.get("ID") if column == "NO" else None)
        parts.append("{" + (found or column) + "}")
    return Mapping(entity_type=dataset.name,
                   id_template=f"urn:ngsi-ld:{dataset.slug}:" + "-".join(parts),
                   fields=fields, latitude=roles.get("緯度"), longitude=roles.get("経度"),
                   keep_other=True, context=CONTEXT_PATH,
                   code_fields=frozenset({code_header} if code_header else set()))


def context_document() -> dict[str, Any]:
    """The JSON-LD context of every dataset: each type and attribute below :data:`VOCABULARY`.

    ``location`` is left to the NGSI-LD core context so that geo-queries work as everywhere else.
    """
    terms: dict[str, str] = {}
    for dataset in DATASETS:
        terms[dataset.name] = VOCABULARY + dataset.name
        for attribute in (*dataset.attributes, *CODE_COLUMNS, "ID"):
            name = attribute_name(attribute)
            terms[name] = VOCABULARY + name
    return {"@context": terms}
