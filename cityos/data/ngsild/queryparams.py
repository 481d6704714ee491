"""URL query parameters and ``Query`` bodies -> :class:`QueryPlan` and :class:`RenderOptions`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cityos.core.patterns import UserPatternError, compile_user_pattern
from cityos.core.problems import BadRequestData, TooManyResults
from cityos.core.settings import Settings
from cityos.data.ngsild.geoquery import GeoQuery, parse_geoquery
from cityos.data.ngsild.payload import check_name, check_uri
from cityos.data.ngsild.projection import parse_projection
from cityos.data.ngsild.qlang import expand_q, parse_q
from cityos.data.ngsild.render import CONCISE, NORMALIZED, SIMPLIFIED, RenderOptions
from cityos.data.ngsild.store.base import QueryPlan, Selector, TypeExpr
from cityos.data.ngsild.terms import TermMap

_OPTIONS = {"keyValues", "simplified", "concise", "normalized", "sysAttrs"}
_FORMATS = {"keyValues": SIMPLIFIED, "simplified": SIMPLIFIED, "concise": CONCISE,
            "normalized": NORMALIZED}
_SYS = frozenset({"id", "type"})


def flag(params: Mapping[str, Any], name: str) -> bool:
    """A boolean query parameter: absent or ``false`` is False, ``true`` is True, else 400."""
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false")
    return bool(value == "true")


def split_list(value: str | None) -> list[str]:
    """A comma-separated parameter as a list without empty items."""
    if value is None:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_type_expr(text: str, tm: TermMap) -> TypeExpr:
    """``A,B`` or ``A|B`` = any of; ``A;B`` = all of; one level of parentheses (clause 4.17)."""
    if not text.strip():
        raise BadRequestData("type must not be empty")
    if text.count("(") != text.count(")"):
        raise BadRequestData(f"unbalanced parentheses in type expression {text[:80]!r}")
    alternatives: list[frozenset[str]] = []
    for alt in re.split(r"[,|]", text):
        alt = alt.strip()
        if alt.startswith("(") and alt.endswith(")"):
            alt = alt[1:-1]
        if "(" in alt or ")" in alt:
            raise BadRequestData(f"type expression {text[:80]!r} nests parentheses too deeply")
        group = frozenset(tm.expand(check_name(t.strip(), "entity type")) for t in alt.split(";"))
        alternatives.append(group)
    return TypeExpr(tuple(alternatives))


def parse_options(params: Mapping[str, str]) -> tuple[str, bool]:
    """``options`` and ``format`` -> (representation, sysAttrs)."""
    options = split_list(params.get("options"))
    for option in options:
        if option not in _OPTIONS:
            raise BadRequestData(f"unknown option {option[:40]!r}; use one of {sorted(_OPTIONS)}")
    form = NORMALIZED
    chosen = [_FORMATS[o] for o in options if o in _FORMATS]
    if len(set(chosen)) > 1:
        raise BadRequestData("options name more than one representation")
    if chosen:
        form = chosen[0]
    fmt = params.get("format")
    if fmt is not None:
        if fmt not in _FORMATS:
            raise BadRequestData(f"unknown format {fmt[:40]!r}; use normalized, concise or simplified")
        form = _FORMATS[fmt]
    return form, "sysAttrs" in options


def render_options(params: Mapping[str, str], tm: TermMap) -> RenderOptions:
    """How to render entities, from ``options``, ``format``, ``attrs``, ``pick``, ``omit``, ``lang``."""
    form, sys_attrs = parse_options(params)
    attrs = split_list(params.get("attrs"))
    # pick/omit may carry nested projections for linked entities (join): only the names of this
    # level matter here, the join module reads the rest
    pick = list(parse_projection(params.get("pick"), "pick").members("pick"))
    omit = list(parse_projection(params.get("omit"), "omit").members("omit"))
    # clause 4.21: attrs, pick and omit are mutually exclusive (ETSI 018_18 / 019_18), as on
    # the temporal API (temporal/projection.py), so no operation accepts what another refuses
    given = [name for name, names in (("attrs", attrs), ("pick", pick), ("omit", omit)) if names]
    if len(given) > 1:
        raise BadRequestData(f"{' and '.join(given)} must not be used together")
    keep: frozenset[str] | None = None
    pick_id = pick_type = True
    if attrs or pick:
        names = attrs or pick
        keep = frozenset(tm.expand(check_name(a)) for a in names if a not in _SYS)
        if pick:
            pick_id, pick_type = "id" in pick, "type" in pick
    dropped = frozenset(tm.expand(check_name(a)) for a in omit if a not in _SYS)
    if omit:
        pick_id, pick_type = "id" not in omit, "type" not in omit
    lang = params.get("lang")
    if lang is not None and not re.fullmatch(r"[A-Za-z0-9\-*,;.= ]{1,100}", lang):
        raise BadRequestData(f"invalid lang {lang[:40]!r}")
    dataset_id = params.get("datasetId")
    if dataset_id is not None and dataset_id != "@none":
        check_uri(dataset_id, "datasetId")
    return RenderOptions(form=form, sys_attrs=sys_attrs, attrs=keep, omit=dropped,
                         pick_id=pick_id, pick_type=pick_type, lang=lang, dataset_id=dataset_id)


def page_bounds(params: Mapping[str, str], settings: Settings) -> tuple[int, int, bool]:
    """(limit, offset, count) with the documented maximum page size."""
    def integer(name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None:
            return default
        if not raw.isdigit():
            raise BadRequestData(f"{name} must be a non-negative integer, got {raw[:20]!r}")
        return int(raw)

    limit = integer("limit", settings.default_page_size)
    offset = integer("offset", 0)
    count = flag(params, "count")
    if limit > settings.max_page_size:
        raise TooManyResults(f"limit {limit} exceeds the maximum page size "
                             f"{settings.max_page_size}",
                             extra={"maxLimit": settings.max_page_size})
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return limit, offset, count


def build_plan(tenant: str, params: Mapping[str, Any], tm: TermMap, settings: Settings, *,
               require_filter: bool = True,
               selectors: list[dict[str, Any]] | None = None) -> QueryPlan:
    """A query plan from GET /entities parameters (also used for purge and POST query).

    ``selectors``: two or more EntitySelectors of a ``Query`` body, any of which selects.
    """
    if selectors:
        return _with_selectors(tenant, params, tm, settings, selectors)
    ids = split_list(params.get("id"))
    for entity_id in ids:
        check_uri(entity_id, "id")
    id_pattern = params.get("idPattern")
    if id_pattern is not None:
        try:
            compile_user_pattern(id_pattern, "idPattern")
        except UserPatternError as exc:
            raise BadRequestData(str(exc)) from None
    type_text = params.get("type")
    types = parse_type_expr(type_text, tm) if type_text is not None else None
    attr_names = split_list(params.get("attrs"))
    attrs = frozenset(tm.expand(check_name(a)) for a in attr_names) if attr_names else None
    q_text = params.get("q")
    q = expand_q(parse_q(q_text), tm.expand) if q_text is not None else None
    geo = _geo(params, tm)
    scope = params.get("scopeQ")
    if require_filter and not any([ids, id_pattern, types, attrs, q, geo, scope]) and \
            params.get("local") != "true":
        raise BadRequestData("a query needs at least one of id, idPattern, type, attrs, q, "
                             "geometry or scopeQ (or local=true to list everything)")
    limit, offset, count = page_bounds(params, settings)
    return QueryPlan(tenant=tenant, types=types, ids=tuple(ids) or None, id_pattern=id_pattern,
                     attrs=attrs, q=q, geo=geo, scope=scope, limit=limit, offset=offset,
                     count=count)


def parse_selector(raw: Mapping[str, Any], tm: TermMap, where: str) -> Selector:
    """One EntitySelector (``id``, ``idPattern``, ``type``), validated."""
    for key in ("id", "idPattern", "type"):
        if key in raw and not isinstance(raw[key], str):
            raise BadRequestData(f"{where}.{key} must be a string")
    unknown = set(raw) - {"id", "idPattern", "type"}
    if unknown:
        raise BadRequestData(f"{where} has unknown members {sorted(unknown)}")
    if not raw:
        raise BadRequestData(f"{where} must name at least one of id, idPattern, type")
    ids = tuple(check_uri(i, f"{where}.id") for i in split_list(raw.get("id"))) or None
    pattern = raw.get("idPattern")
    if pattern is not None:
        try:
            compile_user_pattern(pattern, f"{where}.idPattern")
        except UserPatternError as exc:
            raise BadRequestData(str(exc)) from None
    types = parse_type_expr(raw["type"], tm) if "type" in raw else None
    return Selector(ids=ids, id_pattern=pattern, types=types)


def _with_selectors(tenant: str, params: Mapping[str, Any], tm: TermMap, settings: Settings,
                    raw: list[dict[str, Any]]) -> QueryPlan:
    selectors = tuple(parse_selector(s, tm, f"entities[{i}]") for i, s in enumerate(raw))
    # The engines prefilter on the union of the selectors' types or ids when every selector has
    # them; the selectors themselves are checked exactly by the plan's Python filter.
    types = None
    if all(s.types is not None for s in selectors):
        types = TypeExpr(tuple(g for s in selectors if s.types for g in s.types.alternatives))
    ids = None
    if all(s.ids is not None for s in selectors):
        ids = tuple(dict.fromkeys(i for s in selectors if s.ids for i in s.ids))
    base = build_plan(tenant, {k: v for k, v in params.items()
                               if k not in ("id", "idPattern", "type")}, tm, settings,
                      require_filter=False)
    return replace(base, types=types, ids=ids, selectors=selectors)


def _geo(params: Mapping[str, Any], tm: TermMap) -> GeoQuery | None:
    geo = parse_geoquery(params.get("georel"), params.get("geometry"),
                         params.get("coordinates"), params.get("geoproperty"))
    if geo is None:
        return None
    return GeoQuery(georel=geo.georel, geometry=geo.geometry,
                    geoproperty=tm.expand(geo.geoproperty), max_distance=geo.max_distance,
                    min_distance=geo.min_distance)
