"""Linked entity retrieval: ``join``, ``joinLevel`` and ``containedBy`` (CIM 009 v1.8, clause 4.5.23).

With ``join=flat`` the response is the requested entities followed by the entities their
Relationships and ListRelationships point to, each entity once; with ``join=inline`` every
Relationship carries the entity it points to in an ``entity`` member (a list when ``object`` is a
list) and every ListRelationship its entities in ``entityList``.  In the simplified (keyValues)
representation the linked entity replaces the relationship's value: ``"locatedAt": {<entity>}``,
``{"entityList": [...]}`` for a ListRelationship (an unresolved reference stays a URI there).

* ``joinLevel`` (default 1, at most :data:`MAX_JOIN_LEVEL`) is how many hops are followed.  An
  entity already reached at a shallower depth is shown again (inline) but its own links are not
  expanded a second time, so cycles (A -> B -> A) end; in flat mode no entity is repeated.
* Only relationships the response shows are followed: ``attrs``/``pick``/``omit`` apply to the
  requested entities; ``pick``/``omit`` may project linked entities with braces
  (``pick=id,locatedAt{id,name}``, see :mod:`cityos.data.ngsild.projection`).  Otherwise linked
  entities are shown whole, in the same representation (``options``/``format``, ``sysAttrs``,
  ``lang``) as the requested ones; ``datasetId`` applies to the requested entities only.
* A relationship with ``objectType`` links only to an entity of that type (when every new link
  of a level names one, the level's query asks for those types only).
* ``containedBy`` lists entity ids the caller already has (e.g. a broker that forwards a request):
  they are neither fetched nor shown.
* Targets that do not exist (in the request's tenant) are skipped; the reference stays.

Bounded fan-out: the linked entities of one level are fetched with one query (``QueryPlan(ids=...)``)
of at most ``max_page_size`` new entities; references beyond that are left unresolved.  Inline
responses embed at most :data:`INLINE_COPIES` x ``max_page_size`` entity copies in all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild import actions
from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.model import LISTRELATIONSHIP, RELATIONSHIP, Entity, Instance
from cityos.data.ngsild.payload import check_name, check_uri
from cityos.data.ngsild.projection import Projection, parse_projection
from cityos.data.ngsild.render import (
    SIMPLIFIED,
    Decorate,
    RenderOptions,
    render_entity,
    render_feature,
    visible_attributes,
)
from cityos.data.ngsild.store.base import QueryPlan, TypeExpr
from cityos.data.ngsild.terms import TermMap

FLAT, INLINE, NONE = "flat", "inline", "@none"
DEFAULT_JOIN_LEVEL = 1
MAX_JOIN_LEVEL = 10
INLINE_COPIES = 20
_SYS = frozenset({"id", "type"})


@dataclass(frozen=True)
class JoinSpec:
    """A validated ``join`` request."""

    mode: str                                  # FLAT or INLINE
    level: int = DEFAULT_JOIN_LEVEL
    contained_by: frozenset[str] = frozenset()
    projection_kind: str | None = None         # "pick" or "omit" when one of them was given
    projection: Projection = field(default_factory=Projection)  # nested parts: linked entities


def parse_join(params: Mapping[str, Any]) -> JoinSpec | None:
    """``join``/``joinLevel``/``containedBy`` -> a spec, or ``None`` without a join (or ``@none``)."""
    join = params.get("join")
    level_raw = params.get("joinLevel")
    contained_raw = params.get("containedBy")
    if join is None:
        if level_raw is not None or contained_raw is not None:
            raise BadRequestData("joinLevel and containedBy are only allowed together with join")
        return None
    if join not in (FLAT, INLINE, NONE):
        raise BadRequestData(f"unknown join {str(join)[:40]!r}; use flat, inline or @none")
    level = DEFAULT_JOIN_LEVEL
    if level_raw is not None:
        text = str(level_raw)
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            raise BadRequestData(f"joinLevel must be a positive integer, got {text[:20]!r}")
        level = int(text)
        if level > MAX_JOIN_LEVEL:
            raise BadRequestData(f"joinLevel {level} exceeds the maximum {MAX_JOIN_LEVEL}")
    contained: set[str] = set()
    for item in str(contained_raw or "").split(","):
        if item.strip():
            contained.add(check_uri(item.strip(), "containedBy"))
    if join == NONE:
        return None
    kind = "pick" if params.get("pick") else "omit" if params.get("omit") else None
    projection = parse_projection(params[kind], kind) if kind else Projection()
    return JoinSpec(join, level, frozenset(contained), kind, projection)


def link_targets(instance: Instance) -> list[str]:
    """The entity ids a Relationship or ListRelationship instance points to (else none)."""
    if instance.get("type") == RELATIONSHIP:
        obj = instance.get("object")
        return [o for o in (obj if isinstance(obj, list) else [obj]) if isinstance(o, str)]
    if instance.get("type") == LISTRELATIONSHIP:
        return [o for o in instance.get("objectList") or [] if isinstance(o, str)]
    return []


def _fits(instance: Instance, target: Entity) -> bool:
    """``objectType``, when given, restricts which entities a relationship links to."""
    wanted = instance.get("objectType")
    if wanted is None:
        return True
    return bool(set(wanted if isinstance(wanted, list) else [wanted]) & set(target["type"]))


@dataclass
class LinkedGraph:
    """The requested entities and the linked entities reachable within ``joinLevel`` hops."""

    spec: JoinSpec
    base: RenderOptions                         # the representation of every linked entity
    tm: TermMap
    entities: dict[str, Entity] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)      # first depth reached (roots: 0)
    flat: list[tuple[Entity, RenderOptions]] = field(default_factory=list)   # linked, in order
    _options: dict[Projection | None, RenderOptions] = field(default_factory=dict)

    def options(self, projection: Projection | None) -> RenderOptions:
        """How a linked entity reached with ``projection`` (its nested pick/omit) is shown."""
        if projection not in self._options:
            self._options[projection] = _projected(self.base, self.spec.projection_kind,
                                                   projection, self.tm)
        return self._options[projection]

    def linked(self, target: str, instance: Instance) -> Entity | None:
        """The entity ``instance`` links to, if it was retrieved and fits ``objectType``."""
        entity = self.entities.get(target)
        if entity is None or target not in self.depth or target in self.spec.contained_by or \
                not _fits(instance, entity):
            return None
        return entity


def _projected(base: RenderOptions, kind: str | None, projection: Projection | None,
               tm: TermMap) -> RenderOptions:
    names = projection.members(kind) if kind is not None and projection is not None else ()
    if kind is None or not names:
        return base
    expanded = frozenset(tm.expand(check_name(n)) for n in names if n not in _SYS)
    if kind == "pick":
        return replace(base, attrs=expanded, pick_id="id" in names, pick_type="type" in names)
    return replace(base, omit=expanded, pick_id="id" not in names, pick_type="type" not in names)


Node = tuple[Entity, RenderOptions, Projection | None]
# how linked entities are fetched: the broker's query action for API requests, the store's own
# query for notifications (the notifier has no request and no Broker)
Query = Callable[[QueryPlan], Awaitable[tuple[list[Entity], int | None]]]


async def collect(broker: Broker, tenant: str, roots: list[Entity], spec: JoinSpec,
                  opts: RenderOptions, tm: TermMap) -> LinkedGraph:
    """Fetch the linked entities level by level: one bounded id query per level."""
    return await collect_linked(partial(actions.query_entities, broker),
                                broker.settings.max_page_size, tenant, roots, spec, opts, tm)


async def collect_linked(query: Query, max_page: int, tenant: str, roots: list[Entity],
                         spec: JoinSpec, opts: RenderOptions, tm: TermMap) -> LinkedGraph:
    """:func:`collect` with any ``query`` of at most ``max_page`` entities per level."""
    base = replace(opts, attrs=None, omit=frozenset(), pick_id=True, pick_type=True,
                   dataset_id=None)
    graph = LinkedGraph(spec, base, tm)
    for root in roots:
        graph.entities.setdefault(root["id"], root)
        graph.depth.setdefault(root["id"], 0)
    unavailable = set(spec.contained_by)
    frontier: list[Node] = [(root, opts, spec.projection) for root in roots]
    for level in range(1, spec.level + 1):
        edges: list[tuple[str, Instance, Projection | None]] = []
        wanted: dict[str, None] = {}
        object_types: set[str] | None = set()   # every wanted link names an objectType: these
        for entity, shown, projection in frontier:
            for iri, instances in visible_attributes(entity, shown):
                child = projection.child(tm.compact(iri)) if projection is not None else None
                for instance in instances:
                    for target in link_targets(instance):
                        edges.append((target, instance, child))
                        if target not in graph.entities and target not in unavailable:
                            wanted[target] = None
                            object_types = _add_object_type(object_types, instance)
        await _fetch(query, max_page, tenant, list(wanted), graph, unavailable, object_types)
        frontier = _next_level(graph, edges, level)
        if not frontier:
            break
    return graph


def _add_object_type(types: set[str] | None, instance: Instance) -> set[str] | None:
    wanted = instance.get("objectType")
    if types is None or wanted is None:
        return None
    return types | set(wanted if isinstance(wanted, list) else [wanted])


async def _fetch(query: Query, bound: int, tenant: str, ids: list[str], graph: LinkedGraph,
                 unavailable: set[str], object_types: set[str] | None) -> None:
    """One query for (at most ``bound``, the page size, of) the new ids of a level."""
    batch, beyond = ids[:bound], ids[bound:]
    unavailable.update(beyond)
    if not batch:
        return
    types = TypeExpr(tuple(frozenset({t}) for t in sorted(object_types))) if object_types else None
    found, _ = await query(QueryPlan(tenant=tenant, ids=tuple(batch), types=types,
                                     limit=len(batch)))
    for entity in found:
        graph.entities[entity["id"]] = entity
    if types is None:  # else an id left out may still be linked later without an objectType
        unavailable.update(i for i in batch if i not in graph.entities)


def _next_level(graph: LinkedGraph, edges: list[tuple[str, Instance, Projection | None]],
                level: int) -> list[Node]:
    frontier: list[Node] = []
    queued: set[tuple[str, Projection | None]] = set()
    for target, instance, child in edges:
        entity = graph.entities.get(target)
        if entity is None or target in graph.spec.contained_by or not _fits(instance, entity):
            continue
        if target not in graph.depth:
            graph.depth[target] = level
            graph.flat.append((entity, graph.options(child)))
        if graph.depth[target] == level and (target, child) not in queued:
            queued.add((target, child))
            frontier.append((entity, graph.options(child), child))
    return frontier


class _Inliner:
    """Renders entities with their linked entities embedded (``join=inline``)."""

    def __init__(self, graph: LinkedGraph, copies: int) -> None:
        self.graph = graph
        self.copies_left = copies
        self.memo: dict[tuple[str, int, Projection | None], dict[str, Any]] = {}

    def decorate(self, projection: Projection | None, depth: int, form: str) -> Decorate:
        """The hook that embeds, into the relationships of an entity at ``depth``, their targets."""
        def embed(iri: str, instance: Instance, value: Any) -> Any:
            targets = link_targets(instance)
            if not targets:
                return value
            name = self.graph.tm.compact(iri)
            child = projection.child(name) if projection is not None else None
            linked = [self.entity(t, instance, child, depth + 1) for t in targets]
            return _attach(instance, value, targets, linked, form)
        return embed

    def entity(self, target: str, instance: Instance, projection: Projection | None,
               depth: int) -> dict[str, Any] | None:
        entity = self.graph.linked(target, instance)
        if entity is None or self.copies_left <= 0:
            return None
        self.copies_left -= 1
        key = (target, depth, projection)
        if key not in self.memo:
            opts = self.graph.options(projection)
            expand = depth < self.graph.spec.level and self.graph.depth.get(target) == depth
            hook = self.decorate(projection, depth, opts.form) if expand else None
            self.memo[key] = render_entity(entity, self.graph.tm, opts, hook)
        return self.memo[key]


def _attach(instance: Instance, value: Any, targets: list[str],
            linked: list[dict[str, Any] | None], form: str) -> Any:
    found = [e for e in linked if e is not None]
    if not found:
        return value
    many = instance["type"] == LISTRELATIONSHIP or isinstance(instance.get("object"), list)
    if form == SIMPLIFIED:
        in_place = [e if e is not None else t for e, t in zip(linked, targets, strict=True)]
        if instance["type"] == LISTRELATIONSHIP:
            return {"entityList": in_place}
        return in_place if many else found[0]
    member = "entityList" if instance["type"] == LISTRELATIONSHIP else "entity"
    return {**value, member: found if many else found[0]}


def inline_decorator(graph: LinkedGraph, copies: int, form: str) -> Decorate:
    """The render hook that embeds linked entities into the relationships of the roots of
    ``graph`` (``join=inline``), embedding at most ``copies`` entity copies in all."""
    return _Inliner(graph, copies).decorate(graph.spec.projection, 0, form)


async def render_entities(broker: Broker, tenant: str, entities: list[Entity], tm: TermMap,
                          opts: RenderOptions, spec: JoinSpec | None,
                          geometry: str | None = None) -> list[dict[str, Any]]:
    """The response items for ``entities``: as they are, inlined, or followed by linked ones.

    ``geometry`` (a GeoProperty IRI) renders GeoJSON Features instead of entities.
    """
    def render(entity: Entity, shown: RenderOptions, hook: Decorate | None = None) -> dict[str, Any]:
        if geometry is not None:
            return render_feature(entity, tm, shown, geometry, hook)
        return render_entity(entity, tm, shown, hook)

    if spec is None:
        return [render(e, opts) for e in entities]
    graph = await collect(broker, tenant, entities, spec, opts, tm)
    if spec.mode == FLAT:
        return [render(e, opts) for e in entities] + [render(e, o) for e, o in graph.flat]
    hook = inline_decorator(graph, INLINE_COPIES * broker.settings.max_page_size, opts.form)
    return [render(e, opts, hook) for e in entities]
