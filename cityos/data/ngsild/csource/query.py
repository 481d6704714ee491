"""GET /csourceRegistrations filters (clause 5.10.2): which registrations a query selects.

``type``, ``id``, ``idPattern``, ``attrs`` and ``q`` select registrations that may provide such
entities; ``csf`` is a ``q`` expression over the registration's own properties; a geo-query is
matched against its ``location`` (or the ``geoproperty`` named: ``observationSpace``,
``operationSpace``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cityos.core.patterns import UserPatternError, compile_user_pattern
from cityos.core.problems import BadRequestData
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.geoquery import geo_matches, parse_geoquery
from cityos.data.ngsild.payload import check_name, check_uri
from cityos.data.ngsild.qlang import attribute_iris, expand_q, parse_q, q_matches
from cityos.data.ngsild.queryparams import parse_type_expr, split_list
from cityos.data.ngsild.terms import TermMap

Filter = Callable[[Registration], bool]
_GEO_MEMBERS = ("location", "observationSpace", "operationSpace")


def registration_filter(params: Mapping[str, str], tm: TermMap) -> Filter:
    """A predicate for the query parameters; 400 BadRequestData for invalid ones."""
    tests: list[Filter] = []
    if "type" in params:
        expr = parse_type_expr(params["type"], tm)
        wanted = {t for group in expr.alternatives for t in group}
        tests.append(lambda r: any(wanted & set(e.types) for i in r.information
                                   for e in i.entities))
    ids = [check_uri(i, "id") for i in split_list(params.get("id"))]
    if ids:
        tests.append(lambda r: any(e.may_hold(i, None) and (e.id or e.id_pattern)
                                   for i in ids for info in r.information
                                   for e in info.entities))
    pattern = params.get("idPattern")
    if pattern is not None:
        try:
            compiled = compile_user_pattern(pattern, "idPattern")
        except UserPatternError as exc:
            raise BadRequestData(str(exc)) from None
        tests.append(lambda r: any((e.id and compiled.search(e.id)) or e.id_pattern == pattern
                                   for info in r.information for e in info.entities))
    attrs = {tm.expand(check_name(a)) for a in split_list(params.get("attrs"))}
    if "q" in params:
        attrs |= attribute_iris(expand_q(parse_q(params["q"]), tm.expand))
    if attrs:
        tests.append(lambda r: any(not i.attrs or i.attrs & attrs for i in r.information))
    if "csf" in params:
        csf = expand_q(parse_q(params["csf"]), tm.expand)
        tests.append(lambda r: q_matches(csf, registration_as_entity(r, tm)))
    geo = parse_geoquery(params.get("georel"), params.get("geometry"),
                         params.get("coordinates"), params.get("geoproperty"))
    if geo is not None:
        member = geo.geoproperty
        if member not in _GEO_MEMBERS:
            raise BadRequestData(f"geoproperty of a registration query must be one of "
                                 f"{', '.join(_GEO_MEMBERS)}")
        tests.append(lambda r: isinstance(r.doc.get(member), dict)
                     and geo_matches(geo, r.doc[member]))
    return lambda reg: all(test(reg) for test in tests)


def registration_as_entity(reg: Registration, tm: TermMap) -> dict[str, Any]:
    """The registration's properties as an entity, so ``csf`` can use the ``q`` evaluator."""
    attrs: dict[str, Any] = {}
    for iri, value in (reg.doc.get("extra") or {}).items():
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        attrs[iri] = [{"type": "Property", "value": value}]
    for key in ("endpoint", "mode", "registrationName", "description", "tenant"):
        if key in reg.doc:
            attrs[tm.expand(key)] = [{"type": "Property", "value": reg.doc[key]}]
    return {"id": reg.id, "type": [reg.doc["type"]], "attrs": attrs}
