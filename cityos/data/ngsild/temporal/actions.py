"""Temporal actions: the one way routes read and change the temporal evolution of entities.

Reads select entities from ``temporal_entities`` (so the history of a deleted entity stays
queryable, DM-DY-1), then fetch each attribute's instances or aggregates from the store.

``q`` and geo-queries on temporal queries are evaluated on the entity's *current* state when the
entity exists, and otherwise on the latest recorded instance of each attribute (its state when it
was deleted); ``attrs`` selects entities that have history for one of the attributes.  Both
engines run the same Python filter (``QueryPlan.python_filter``), so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import unquote

from cityos.core.problems import BadRequestData, ResourceNotFound
from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.events import forget_temporal_record
from cityos.data.ngsild.history import new_instance_id
from cityos.data.ngsild.model import ENTITY_KEYS, Entity, Instance
from cityos.data.ngsild.payload import check_name, check_uri, parse_instance, parse_scope, parse_types
from cityos.data.ngsild.store.base import EntityStore, HistoryRow, QueryPlan, TemporalEntityRow
from cityos.data.ngsild.store.temporal_base import (
    InstanceRow,
    TemporalEntityRecord,
    TemporalStore,
    Window,
)
from cityos.data.ngsild.temporal.aggregate import bucket_span, method_value, plan_buckets
from cityos.data.ngsild.temporal.pagination import Item, Series, content_range, instance_cap
from cityos.data.ngsild.temporal.query import AGGREGATED, TemporalQuery
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import from_micros, now_micros, to_micros

SCAN_PAGE = 200          # temporal entities read per round trip while filtering in Python


class Store(EntityStore, TemporalStore, Protocol):
    """An entity store with the temporal methods (both engines are)."""


def store_of(broker: Broker) -> Store:
    """The broker's store, typed with its temporal methods."""
    return cast(Store, broker.store)


@dataclass
class TemporalResult:
    """Entities' series, ready to render, and the ``Content-Range`` when truncated."""

    records: list[TemporalEntityRecord]
    series: list[list[Series]]
    kinds: list[dict[str, str]]
    content_range: str | None
    total: int | None = None


def _missing(entity_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"temporal entity {entity_id} does not exist")


def _path_attr(name: str) -> str:
    """An attribute name taken from the URL path: a valid name (clause 4.6.2), and never a dot
    segment however often percent-encoded (``%2e%2e``, ``%252e``), which a proxy or client
    resolving the path (RFC 3986 clause 5.2.4) would turn into another resource."""
    check_name(name)
    folded = name
    for _ in range(4):
        decoded = unquote(folded)
        if decoded == folded:
            break
        folded = decoded
    if folded.strip(".") == "":
        raise BadRequestData(f"invalid attribute name: {name[:80]!r}")
    return name


# -- reads -------------------------------------------------------------------------------------
async def retrieve(broker: Broker, tenant: str, entity_id: str, tq: TemporalQuery,
                   attrs: frozenset[str] | None, types: list[str] | None = None, *,
                   omit: frozenset[str] = frozenset(),
                   datasets: frozenset[str] | None = None) -> TemporalResult:
    """GET /temporal/entities/{id}; ``attrs`` / ``omit``: the attributes shown (or left out)."""
    check_uri(entity_id, "entity id")
    store = store_of(broker)
    record = await store.temporal_entity(tenant, entity_id)
    if record is None or (types and not set(types) & set(record.types)):
        raise _missing(entity_id)
    series, kinds = await _entity_series(store, tenant, record, tq, attrs, omit, datasets)
    return TemporalResult([record], [series], [kinds], content_range([series], tq))


async def query(broker: Broker, plan: QueryPlan, tq: TemporalQuery, *,
                shown: frozenset[str] | None = None, omit: frozenset[str] = frozenset(),
                datasets: frozenset[str] | None = None) -> TemporalResult:
    """GET /temporal/entities and POST /temporal/entityOperations/query.

    ``plan.attrs`` selects entities and their attributes; ``shown`` (``pick``) and ``omit`` only
    choose the attributes shown.
    """
    store = store_of(broker)
    keep = plan.python_filter()
    needs_state = plan.q is not None or plan.geo is not None
    types = tuple(sorted(plan.types.candidate_types())) if plan.types is not None else None
    page: list[TemporalEntityRecord] = []
    matched = 0
    wanted = plan.offset + plan.limit
    after: str | None = None
    while True:
        records = await store.temporal_entity_page(plan.tenant, plan.ids, types, after, SCAN_PAGE)
        for record in records:
            view = await _filter_view(store, plan.tenant, record, plan.attrs is not None,
                                      needs_state)
            if not keep(view):
                continue
            if plan.offset <= matched < wanted:
                page.append(record)
            matched += 1
        if len(records) < SCAN_PAGE or (not plan.count and matched >= wanted):
            break
        after = records[-1].id
    series_list: list[list[Series]] = []
    kinds_list: list[dict[str, str]] = []
    for record in page:
        series, kinds = await _entity_series(store, plan.tenant, record, tq,
                                             shown if shown is not None else plan.attrs, omit,
                                             datasets)
        series_list.append(series)
        kinds_list.append(kinds)
    return TemporalResult(page, series_list, kinds_list, content_range(series_list, tq),
                          matched if plan.count else None)


async def _filter_view(store: Store, tenant: str, record: TemporalEntityRecord, with_attrs: bool,
                       with_state: bool) -> Entity:
    """The entity as the query's filter sees it (see the module docstring)."""
    view: Entity = {"id": record.id, "type": record.types, "attrs": {}}
    if record.scope:
        view["scope"] = record.scope
    if not (with_attrs or with_state):
        return view
    names = await store.temporal_attributes(tenant, record.id)
    attrs: dict[str, list[Instance]] = {name: [] for name in names}
    if with_state:
        current = await store.get(tenant, record.id) if record.deleted_at is None else None
        if current is not None:
            attrs.update(current["attrs"])
        else:
            for name in names:
                latest = await store.temporal_instances(tenant, record.id, name, "createdAt",
                                                        Window(), True, 20)
                by_dataset: dict[str, Instance] = {}
                for row in latest:
                    by_dataset.setdefault(row.dataset_id, row.doc)
                attrs[name] = list(by_dataset.values())
    view["attrs"] = attrs
    return view


async def _entity_series(store: Store, tenant: str, record: TemporalEntityRecord,
                         tq: TemporalQuery, attrs: frozenset[str] | None,
                         omit: frozenset[str] = frozenset(),
                         datasets: frozenset[str] | None = None
                         ) -> tuple[list[Series], dict[str, str]]:
    """Each attribute's instances (or periods) in the window; attributes without any are left out."""
    names = [n for n in await store.temporal_attributes(tenant, record.id)
             if (attrs is None or n in attrs) and n not in omit]
    series: list[Series] = []
    kinds: dict[str, str] = {}
    keep, fetch = instance_cap(tq)
    for name in names:
        if tq.representation == AGGREGATED:
            s = await _aggregated_series(store, tenant, record.id, name, tq, keep, datasets)
        else:
            rows = await store.temporal_instances(tenant, record.id, name, tq.timeproperty,
                                                  tq.window, tq.last_n is not None, fetch,
                                                  datasets)
            s = Series(name, truncated=len(rows) > keep)
            rows = rows[:keep]
            if tq.last_n is not None:
                rows.reverse()              # fetched newest first; shown in time order
            s.items = [Item(r.t, r) for r in rows]
            if rows:
                kinds[name] = rows[-1].doc.get("type", "Property")
        if s.items:
            series.append(s)
            if name not in kinds:
                latest = await store.temporal_instances(tenant, record.id, name, "createdAt",
                                                        Window(), True, 1)
                kinds[name] = latest[0].doc.get("type", "Property") if latest else "Property"
    return series, kinds


async def _aggregated_series(store: Store, tenant: str, entity_id: str, attr: str,
                             tq: TemporalQuery, keep: int,
                             datasets: frozenset[str] | None = None) -> Series:
    window = tq.window
    bounds = await store.temporal_bounds(tenant, entity_id, attr, tq.timeproperty, window)
    s = Series(attr)
    if bounds is None:
        return s
    origin = window.start if window.start is not None else bounds[0]
    whole_end = window.end if window.end is not None else bounds[1]
    buckets = plan_buckets(tq.aggr_period, origin, whole_end)
    rows = await store.temporal_aggregate(tenant, entity_id, attr, tq.timeproperty, window,
                                          bounds, buckets, frozenset(tq.aggr_methods))
    if datasets is not None:    # periods are per datasetId already: keeping some is exact
        rows = [row for row in rows if row.dataset_id in datasets]
    periods = sorted(((bucket_span(buckets, row, whole_end), row) for row in rows),
                     key=lambda p: (p[0][0], p[1].dataset_id))
    if tq.last_n is not None:
        periods = periods[-tq.last_n:]
    s.truncated = len(periods) > keep
    # methods only for the periods shown: fine periods over a long range can be 100,000 rows
    periods = periods[-keep:] if tq.last_n is not None else periods[:keep]
    s.items = [Item(start, (row.dataset_id, start, end,
                            {m: method_value(m, row) for m in tq.aggr_methods}))
               for (start, end), row in periods]
    return s


# -- writes ------------------------------------------------------------------------------------
def _instances(name: str, raw: Any, tm: TermMap, now: str) -> tuple[str, list[Instance]]:
    iri = tm.expand(check_name(name))
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise BadRequestData(f"attribute {name!r} has no instances")
    return iri, [parse_instance(item, iri, name, tm, now, 0) for item in items]


def _history_rows(entity_id: str, attrs: dict[str, list[Instance]], at: int) -> list[HistoryRow]:
    rows: list[HistoryRow] = []
    for iri, instances in attrs.items():
        for instance in instances:
            observed = instance.get("observedAt")
            rows.append(HistoryRow(
                entity_id=entity_id, attr=iri, dataset_id=instance.get("datasetId", ""),
                instance_id=new_instance_id(),
                observed_at=to_micros(observed) if isinstance(observed, str) else None,
                created_at=at, modified_at=at, deleted=False, doc=instance))
    return rows


def _parse_attributes(body: dict[str, Any], tm: TermMap, now: str) -> dict[str, list[Instance]]:
    attrs: dict[str, list[Instance]] = {}
    for name, raw in body.items():
        if name in ENTITY_KEYS:
            continue
        iri, instances = _instances(name, raw, tm, now)
        attrs.setdefault(iri, []).extend(instances)
    return attrs


async def create_or_add(broker: Broker, tenant: str, body: Any, tm: TermMap) -> tuple[str, bool]:
    """POST /temporal/entities: (entity id, True when the temporal entity is new)."""
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    entity_id = check_uri(body.get("id"), "entity id")
    if "type" not in body:
        raise BadRequestData("entity type is missing")
    types = parse_types(body["type"], tm)
    scope = parse_scope(body["scope"]) if "scope" in body else None
    at = now_micros()
    attrs = _parse_attributes(body, tm, from_micros(at))
    record = TemporalEntityRow(entity_id=entity_id, types=types, scope=scope, created_at=at,
                               modified_at=at)
    created = await store_of(broker).temporal_write(tenant, record,
                                                    _history_rows(entity_id, attrs, at))
    return entity_id, created


async def add_attributes(broker: Broker, tenant: str, entity_id: str, body: Any,
                         tm: TermMap) -> None:
    """POST /temporal/entities/{id}/attrs: append instances to an existing temporal entity."""
    check_uri(entity_id, "entity id")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object of attributes")
    if "id" in body and body["id"] != entity_id:
        raise BadRequestData("the id in the body differs from the id in the URL")
    store = store_of(broker)
    record = await store.temporal_entity(tenant, entity_id)
    if record is None:
        raise _missing(entity_id)
    at = now_micros()
    attrs = _parse_attributes(body, tm, from_micros(at))
    row = TemporalEntityRow(entity_id=entity_id, types=record.types, scope=record.scope,
                            created_at=record.created_at, modified_at=at)
    await store.temporal_write(tenant, row, _history_rows(entity_id, attrs, at))


async def delete_entity(broker: Broker, tenant: str, entity_id: str) -> None:
    """DELETE /temporal/entities/{id}: the whole temporal representation."""
    check_uri(entity_id, "entity id")
    store = store_of(broker)
    found = await store.temporal_delete(tenant, entity_id)
    forget_temporal_record(tenant, entity_id)   # a live entity's next update writes a new record
    if not found:
        raise _missing(entity_id)


async def delete_attribute(broker: Broker, tenant: str, entity_id: str, attr: str, tm: TermMap,
                           dataset_id: str | None, delete_all: bool) -> None:
    """DELETE /temporal/entities/{id}/attrs/{attr}: the default instances, one datasetId's, or
    every instance (``deleteAll``)."""
    check_uri(entity_id, "entity id")
    iri = tm.expand(_path_attr(attr))
    if dataset_id is not None:
        if delete_all:
            raise BadRequestData("datasetId and deleteAll=true must not be used together")
        check_uri(dataset_id, "datasetId")
    store = store_of(broker)
    if await store.temporal_entity(tenant, entity_id) is None:
        raise _missing(entity_id)
    which = None if delete_all else (dataset_id or "")
    if await store.temporal_delete_attribute(tenant, entity_id, iri, which) == 0:
        raise ResourceNotFound(f"temporal entity {entity_id} has no instances of {attr!r}"
                               + (f" with datasetId {dataset_id}" if dataset_id else ""))


async def _instance(store: Store, tenant: str, entity_id: str, iri: str,
                    instance_id: str) -> InstanceRow | None:
    return await store.temporal_instance(tenant, entity_id, iri, instance_id)


async def modify_instance(broker: Broker, tenant: str, entity_id: str, attr: str,
                          instance_id: str, body: Any, tm: TermMap) -> None:
    """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}: the members of the body replace
    those of the instance (its ``observedAt`` and ``datasetId`` are kept unless given)."""
    check_uri(entity_id, "entity id")
    check_uri(instance_id, "instanceId")
    iri = tm.expand(_path_attr(attr))
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the body must be one attribute instance as a JSON object")
    store = store_of(broker)
    old = await _instance(store, tenant, entity_id, iri, instance_id)
    if old is None:
        raise ResourceNotFound(f"no instance {instance_id} of {attr!r} in temporal entity "
                               f"{entity_id}")
    if "datasetId" in body and body["datasetId"] != old.doc.get("datasetId"):
        raise BadRequestData("an instance's datasetId cannot be changed")
    at = now_micros()
    raw = {k: v for k, v in body.items() if k not in ("instanceId", "createdAt", "modifiedAt")}
    if "type" not in raw:
        raw["type"] = old.doc.get("type", "Property")
    new = parse_instance(raw, iri, attr, tm, from_micros(at), 0)
    for keep in ("observedAt", "datasetId", "unitCode"):
        if keep in old.doc and keep not in new:
            new[keep] = old.doc[keep]
    new["createdAt"] = old.doc.get("createdAt", new["createdAt"])
    observed = new.get("observedAt")
    await store.temporal_patch_instance(
        tenant, entity_id, iri, instance_id, new,
        to_micros(observed) if isinstance(observed, str) else None, at)


async def delete_instance(broker: Broker, tenant: str, entity_id: str, attr: str,
                          instance_id: str, tm: TermMap) -> None:
    """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    check_uri(entity_id, "entity id")
    check_uri(instance_id, "instanceId")
    iri = tm.expand(_path_attr(attr))
    if not await store_of(broker).temporal_delete_instance(tenant, entity_id, iri, instance_id):
        raise ResourceNotFound(f"no instance {instance_id} of {attr!r} in temporal entity "
                               f"{entity_id}")
