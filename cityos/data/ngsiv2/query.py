"""NGSI v2 list parameters -> the broker's :class:`QueryPlan`, and running it.

Most filters are pushed into the plan, so the store's indexes and SQL push-down serve v2 queries
(ids, types, ``q``/``mq``, geo-queries, service paths below the root, limit/offset/count).  Four
v2 features have no NGSI-LD counterpart and are applied here, over every match, before paging:
``typePattern``, the exact root service path ``/``, ``q`` on ``dateCreated``/``dateModified`` and
``orderBy`` (v2 orders, NGSI-LD keeps insertion order).  Such queries read at most
:data:`SLOW_PATH_CAP` candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cityos.core.patterns import UserPattern, UserPatternError, compile_user_pattern
from cityos.data.ngsild import Broker, TermMap
from cityos.data.ngsild.geoquery import distance_m
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr
from cityos.data.ngsiv2.errors import bad_request
from cityos.data.ngsiv2.geo import parse_v2_geoquery
from cityos.data.ngsiv2.mapping import V2_PREFIX, check_identifier, entity_id, in_paths
from cityos.data.ngsiv2.qlang import builtin_matches, combine, parse_v2_filters, parse_v2_query
from cityos.data.ngsiv2.render import attribute_type_value, chosen_instance

MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
SLOW_PATH_CAP = 100_000


@dataclass
class V2Query:
    """A v2 query: the plan pushed to the store plus what only Python can do."""

    plan: QueryPlan
    post: Callable[[Entity], bool] | None = None
    order: list[tuple[str, bool]] | None = None    # (key, descending)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def page(params: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset) with Orion's bounds (limit 1..1000)."""
    raw_limit, raw_offset = params.get("limit"), params.get("offset")
    limit, offset = DEFAULT_LIMIT, 0
    if raw_limit is not None:
        if not raw_limit.isdigit() or int(raw_limit) == 0:
            raise bad_request(f"Bad pagination limit: /{raw_limit[:20]}/ [must be a decimal "
                              "number > 0]")
        limit = int(raw_limit)
        if limit > MAX_LIMIT:
            raise bad_request(f"Bad pagination limit: /{limit}/ [max: {MAX_LIMIT}]")
    if raw_offset is not None:
        if not raw_offset.isdigit():
            raise bad_request(f"Bad pagination offset: /{raw_offset[:20]}/ [must be a decimal "
                              "number]")
        offset = int(raw_offset)
    return limit, offset


def stored_pattern(text: str, what: str, prefix: str) -> str:
    """A v2 ``idPattern`` made to match the stored form of ids (``urn:ngsi-v2:`` + v2 id).

    Every start anchor ``^`` (outside character classes) becomes ``(?:^PREFIX|^)``, so ``^Room``
    and ``^Room|^Car`` match ``urn:ngsi-v2:Room1`` as they match ``Room1``, and ids that are URIs
    (stored as they are) still match.  Unanchored patterns are kept; one that happens to match
    inside the prefix itself (``ngsi``) is the known approximation (docs/ngsiv2.md).
    """
    try:
        compile_user_pattern(text, what)
    except UserPatternError as exc:
        raise bad_request(f"Invalid regex for {what}: {exc}") from None
    out: list[str] = []
    in_class = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "^":
            out.append(f"(?:^{prefix}|^)")  # the prefix has no regex metacharacters
            continue
        out.append(ch)
    return "".join(out)


def type_regex(text: str) -> UserPattern:
    """A ``typePattern``, matched against the v2 (compact) type names (RE2, linear time)."""
    try:
        return compile_user_pattern(text, "typePattern")
    except UserPatternError as exc:
        raise bad_request(f"Invalid regex for typePattern: {exc}") from None


def build_query(tenant: str, params: Mapping[str, str], tm: TermMap, paths: list[str], *,
                count: bool) -> V2Query:
    """The query for GET /v2/entities parameters (or a /v2/op/query body's pieces)."""
    ids = _split(params.get("id"))
    id_pattern = params.get("idPattern")
    types = _split(params.get("type"))
    type_pattern = params.get("typePattern")
    if ids and id_pattern is not None:
        raise bad_request("Incompatible parameters: id, IdPattern")
    if types and type_pattern is not None:
        raise bad_request("Incompatible parameters: type, typePattern")
    posts: list[Callable[[Entity], bool]] = []
    type_expr = TypeExpr(tuple(frozenset({tm.expand(check_identifier(t, "entity type", tm))})
                               for t in types)) if types else None
    if type_pattern is not None:
        regex = type_regex(type_pattern)
        posts.append(lambda e: any(regex.search(tm.compact(t)) for t in e["type"]))
    q, builtins = parse_v2_filters(params["q"], tm) if params.get("q") else (None, [])
    if builtins:        # dateCreated / dateModified: the entity's own times, not attributes
        posts.append(lambda e: builtin_matches(builtins, e))
    mq = parse_v2_query(params["mq"], tm, metadata=True) if params.get("mq") else None
    location = tm.expand("location")
    geo = parse_v2_geoquery(params.get("georel"), params.get("geometry"), params.get("coords"),
                            location)
    scope: str | None = None
    if not any(p in ("/#", "/") for p in paths):
        scope = ",".join(paths)
    elif "/#" not in paths:
        posts.append(lambda e: in_paths(e.get("scope"), paths))
    limit, offset = page(params)
    plan = QueryPlan(tenant=tenant, types=type_expr,
                     ids=tuple(entity_id(i) for i in ids) or None,
                     id_pattern=stored_pattern(id_pattern, "idPattern", V2_PREFIX)
                     if id_pattern is not None else None,
                     q=combine(q, mq), geo=geo, scope=scope, limit=limit, offset=offset,
                     count=count)
    order = _order(params.get("orderBy"), geo)
    post = None
    if posts:
        def post(entity: Entity) -> bool:
            return all(p(entity) for p in posts)
    return V2Query(plan, post, order)


def _order(text: str | None, geo: Any) -> list[tuple[str, bool]] | None:
    if not text:
        return None
    keys = []
    for item in _split(text):
        descending = item.startswith("!")
        name = item[1:] if descending else item
        if name == "geo:distance" and (geo is None or geo.georel != "near"):
            raise bad_request("Orderby geo:distance needs a near geo-query")
        keys.append((name, descending))
    return keys


def _sort_key(entity: Entity, name: str, tm: TermMap, geo: Any) -> tuple[int, Any]:
    if name == "id":
        return 1, entity["id"]
    if name == "type":
        return 1, tm.compact(entity["type"][0]) if entity["type"] else ""
    if name in ("dateCreated", "dateModified"):
        return 1, entity.get("createdAt" if name == "dateCreated" else "modifiedAt", "")
    if name == "geo:distance":
        instance = chosen_instance(entity["attrs"].get(geo.geoproperty, []))
        value = instance.get("value") if instance else None
        return (0, distance_m(geo.geometry, value)) if isinstance(value, dict) else (3, 0)
    instance = chosen_instance(entity["attrs"].get(tm.expand(name), []))
    if instance is None:
        return 3, 0
    value = attribute_type_value(instance, tm)[1]
    if isinstance(value, bool):
        return 2, int(value)
    if isinstance(value, (int, float)):
        return 0, value
    return (1, value) if isinstance(value, str) else (2, str(value))


async def run_query(broker: Broker, query: V2Query, tm: TermMap) -> tuple[list[Entity], int | None]:
    """One page of matching entities and, when counted, the total."""
    plan = query.plan
    if query.post is None and query.order is None:
        return await broker.store.query(plan)
    everything, _ = await broker.store.query(replace(plan, limit=SLOW_PATH_CAP, offset=0,
                                                     count=False))
    if query.post is not None:
        everything = [e for e in everything if query.post(e)]
    for name, descending in reversed(query.order or []):
        everything.sort(key=lambda e, n=name: _sort_key(e, n, tm, plan.geo),  # type: ignore[misc]
                        reverse=descending)
    total = len(everything) if plan.count else None
    return everything[plan.offset:plan.offset + plan.limit], total
