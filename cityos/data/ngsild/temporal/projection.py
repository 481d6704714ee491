"""``attrs``, ``pick``, ``omit`` and ``datasetId`` on the temporal API: which members are shown.

``pick`` and ``omit`` name entity members: attributes, and ``id`` / ``type`` themselves.  At most
one of ``attrs``, ``pick`` and ``omit`` may be given (the ETSI suite's 020_22 asks for a 400 on
every pair).  ``attrs`` and ``pick`` narrow the attributes; ``omit`` drops some.  A temporal
entity left with no member at all is ``404 ResourceNotFound`` (ETSI 020_23).  ``datasetId``
(clause 4.5.5) keeps the instances of the datasets it lists, ``@none`` naming the default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.payload import check_name, check_uri
from cityos.data.ngsild.queryparams import split_list
from cityos.data.ngsild.terms import TermMap

_CORE = frozenset({"id", "type"})


@dataclass(frozen=True)
class Shown:
    """The members a temporal response shows."""

    attrs: frozenset[str] | None = None       # attribute IRIs to keep (attrs / pick); None = all
    omit: frozenset[str] = frozenset()         # attribute IRIs to drop
    datasets: frozenset[str] | None = None     # datasetIds to keep ("" = default); None = all
    show_id: bool = True
    show_type: bool = True

    def keeps(self, iri: str) -> bool:
        """Whether attribute ``iri`` is shown."""
        return (self.attrs is None or iri in self.attrs) and iri not in self.omit

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` without the ``id`` / ``type`` that pick or omit left out."""
        if not self.show_id:
            body.pop("id", None)
        if not self.show_type:
            body.pop("type", None)
        return body


def parse_shown(params: Mapping[str, Any], tm: TermMap) -> Shown:
    """``attrs`` / ``pick`` / ``omit`` -> :class:`Shown` (names expanded with ``tm``)."""
    given = {key: split_list(params.get(key)) for key in ("attrs", "pick", "omit")}
    present = [key for key, names in given.items() if names]
    if len(present) > 1:
        raise BadRequestData(f"{' and '.join(present)} must not be used together")
    datasets = _datasets(params.get("datasetId"))
    if not present:
        return Shown(datasets=datasets)
    key = present[0]
    if any("{" in n or "}" in n for n in given[key]):
        raise BadRequestData(f"{key}: linked entity projections (a{{b}}) need join, which the "
                             "temporal API does not offer")
    names = [check_name(n) for n in given[key]]
    iris = frozenset(tm.expand(n) for n in names if key == "attrs" or n not in _CORE)
    if key == "attrs":
        return Shown(attrs=iris, datasets=datasets)
    if key == "pick":
        return Shown(attrs=iris, show_id="id" in names, show_type="type" in names,
                     datasets=datasets)
    return Shown(omit=iris, show_id="id" not in names, show_type="type" not in names,
                 datasets=datasets)


def _datasets(raw: Any) -> frozenset[str] | None:
    """``datasetId=a,b,@none`` -> the dataset ids as stored (``""`` for the default instance)."""
    ids = split_list(raw)
    if not ids:
        return None
    return frozenset("" if i == "@none" else check_uri(i, "datasetId") for i in ids)
