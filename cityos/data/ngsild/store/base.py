"""The entity store contract that both engines (SQLite, PostgreSQL) implement.

Writes go through one primitive, :meth:`EntityStore.write`: the caller names the entity ids it will
touch and passes a pure function that receives their current state and returns what to write.  The
engine runs that function inside one transaction with the rows locked (SQLite: the single writer;
PostgreSQL: ``SELECT ... FOR UPDATE``), so read-modify-write operations such as attribute appends
or batch upserts can never interleave or half-apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cityos.core.patterns import user_pattern_search
from cityos.data.ngsild.model import Entity


@dataclass
class WriteSet:
    """What a write function decided: rows to upsert and delete, and a value for the caller.

    ``upserts`` may name one entity several times: its successive states, in order (a device's
    burst of measurements).  Only the last is stored; each is a change of its own, so the history
    gets a row per state and subscriptions see every one (ADR 0006).  Each state must be its own
    object: a later one must not be the earlier one changed in place.
    """

    upserts: list[Entity] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    result: Any = None
    # batch operations: where an entity the caller may not write is reported (entity id, problem)
    # instead of refusing the whole write (data/ngsild/guarded.py)
    refused: Callable[[str, Any], None] | None = None


WriteFn = Callable[[dict[str, Entity | None]], WriteSet]


# -- what a write causes (ADR 0006) -------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One entity changed by a write: its state before and after (``None`` = absent)."""

    entity_id: str
    before: Entity | None
    after: Entity | None


def final_states(upserts: list[Entity]) -> list[Entity]:
    """The state to store per entity: the last of its successive states."""
    if len(upserts) < 2:
        return upserts
    last = {e["id"]: e for e in upserts}
    return upserts if len(last) == len(upserts) else list(last.values())


def write_changes(ws: WriteSet, before: dict[str, Entity]) -> list[Change]:
    """One change per upserted state (from the state before it) and per deleted entity."""
    previous: dict[str, Entity] = dict(before) if len(ws.upserts) > 1 else before
    changes: list[Change] = []
    for entity in ws.upserts:
        changes.append(Change(entity["id"], previous.get(entity["id"]), entity))
        if len(ws.upserts) > 1:
            previous[entity["id"]] = entity
    changes += [Change(i, before[i], None) for i in ws.deletes if i in before]
    return changes


@dataclass
class HistoryRow:
    """One attribute instance appended to the temporal history (DM-DY-1).

    Times are integer microseconds since the Unix epoch (UTC), so both engines sort and compare
    them exactly whatever precision the caller wrote.
    """

    entity_id: str
    attr: str                  # expanded attribute IRI
    dataset_id: str            # "" for the default instance
    instance_id: str           # urn:ngsi-ld:attribute:instance:<uuid>
    observed_at: int | None
    created_at: int            # when this instance was recorded (the attribute's modifiedAt)
    modified_at: int           # equals created_at until the instance itself is patched
    deleted: bool              # the attribute (or its entity) was deleted at created_at
    doc: dict[str, Any]        # the instance in the internal form (model.py), sub-attributes kept


@dataclass
class TemporalEntityRow:
    """The entity-level record of the temporal history: written when the entity is created,
    deleted, or its types, scope or createdAt change (not on plain attribute updates; ADR 0006)."""

    entity_id: str
    types: list[str]
    scope: list[str] | None
    created_at: int
    modified_at: int
    deleted_at: int | None = None


# The document kind of fan-out sets: a change that fires many subscriptions stores their list
# once under a digest, and its outbox row only the digest (events.py).
FANOUT = "outbox-fanout"
# The sweep's mark (one document, re-stamped at every sweep and never deleted): while it stands,
# no document written later can get a seq at or below it, whatever else is deleted.
FANOUT_MARK = "outbox-fanout-mark"


@dataclass
class OutboxRow:
    """Work a write causes outside the database (a notification), committed with the write.

    ``body`` is JSON; its meaning belongs to whoever created the row (``kind``).  Rows are deleted
    by :meth:`OutboxStore.outbox_done` once their work is finished, so after a crash every row
    still present is work that may not have been done: it is done again (at-least-once).
    """

    id: str
    tenant: str
    kind: str
    body: dict[str, Any]
    created_at: int = 0
    # the body as stored when it differs from ``body``: a long part replaced by the id of a
    # document written with it (``Effects.documents``); ``body`` is what this process works with
    stored: dict[str, Any] | None = None


@dataclass
class Effects:
    """Everything one write appends besides the entities themselves, in the same transaction."""

    history: list[HistoryRow] = field(default_factory=list)
    temporal_entities: list[TemporalEntityRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    # (kind, id, doc) of the write's tenant that must exist once it commits: inserted when
    # missing; one that exists keeps its body and takes a fresh seq (content-addressed parts the
    # outbox rows refer to; the seq tells fanout_sweep.py it is still in use)
    documents: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.history or self.temporal_entities or self.outbox or self.documents)

    def documents_in_key_order(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``documents`` sorted by (kind, id): every write locks them in the same order, so
        two writes never wait on each other's documents crosswise."""
        return sorted(self.documents, key=lambda document: (document[0], document[1]))


class ChangeObserver(Protocol):
    """Turns a write's changes into Effects (history rows, outbox rows).

    ``effects`` runs inside the write transaction, possibly on the store's writer thread: it must
    be quick, must not block and must not touch the store.  ``committed`` runs on the event loop
    after the transaction committed (never when it rolled back).
    """

    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        """The rows to append for ``changes``."""

    def committed(self, tenant: str, effects: Effects) -> None:
        """The effects are durable: start the work they describe."""


@dataclass(frozen=True)
class TypeExpr:
    """An entity type selector: OR of AND-groups of expanded type IRIs (``A,B`` / ``A;B``)."""

    alternatives: tuple[frozenset[str], ...]

    def matches(self, types: Iterable[str]) -> bool:
        """True when the entity's types satisfy one of the alternatives."""
        have = set(types)
        return any(group <= have for group in self.alternatives)

    def candidate_types(self) -> set[str]:
        """Types of which an entity must have at least one (an index prefilter)."""
        return {next(iter(sorted(group))) for group in self.alternatives}


@dataclass(frozen=True)
class Selector:
    """One EntitySelector of a ``Query`` body: an entity matches when it fits all given parts."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    types: TypeExpr | None = None

    def matches(self, entity: Entity) -> bool:
        """Whether ``entity`` is selected."""
        if self.ids is not None and entity["id"] not in self.ids:
            return False
        if self.types is not None and not self.types.matches(entity["type"]):
            return False
        return self.id_pattern is None or user_pattern_search(self.id_pattern, entity["id"])


@dataclass(frozen=True)
class QueryPlan:
    """A fully expanded, validated entity query.  Engines may push any part down to SQL."""

    tenant: str
    types: TypeExpr | None = None
    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    attrs: frozenset[str] | None = None        # entity must have at least one of these
    q: Any = None                              # an expanded qlang tree
    geo: Any = None                            # a GeoQuery whose geoproperty is an expanded IRI
    scope: str | None = None
    # Several EntitySelectors (POST /entityOperations/query): any of them selects an entity.
    # ``types`` / ``ids`` then hold only a prefilter that covers them all; engines must treat a
    # plan with selectors as needing the Python filter.
    selectors: tuple[Selector, ...] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    # The caller's access (ADR 0013): the entity as the caller may see it (projected to the
    # attributes it may read), or None when it may not see it at all.  Every other part of the
    # plan is evaluated on what this returns, so a hidden attribute cannot be used as a probe.
    access: Callable[[Entity], Entity | None] | None = None

    def python_filter(self) -> Callable[[Entity], bool]:
        """A predicate applying every part of the plan to a loaded entity."""
        from cityos.data.ngsild.geoquery import geo_matches
        from cityos.data.ngsild.qlang import q_matches

        # RE2 via the shared helper: a client's pattern must not backtrack exponentially
        pattern = self.id_pattern
        ids = set(self.ids) if self.ids else None

        def keep(entity: Entity) -> bool:
            if self.access is not None:
                seen = self.access(entity)
                if seen is None:
                    return False
                entity = seen
            if ids is not None and entity["id"] not in ids:
                return False
            if self.types is not None and not self.types.matches(entity["type"]):
                return False
            if pattern is not None and not user_pattern_search(pattern, entity["id"]):
                return False
            if self.attrs is not None and not any(a in entity["attrs"] for a in self.attrs):
                return False
            if self.scope is not None and not _scope_matches(self.scope, entity.get("scope")):
                return False
            if self.selectors is not None and not any(s.matches(entity) for s in self.selectors):
                return False
            if self.q is not None and not q_matches(self.q, entity):
                return False
            if self.geo is not None:
                instances = entity["attrs"].get(self.geo.geoproperty) or []
                if not any(i.get("type") == "GeoProperty" and geo_matches(self.geo, i["value"])
                           for i in instances):
                    return False
            return True

        return keep


def _scope_matches(query: str, scopes: list[str] | None) -> bool:
    if not scopes:
        return False
    for option in query.split(","):
        option = option.strip()
        for scope in scopes:
            if option.endswith("/#") and (scope == option[:-2] or scope.startswith(option[:-1])):
                return True
            if option.endswith("/+") and scope.startswith(option[:-1]) and \
                    "/" not in scope[len(option) - 1:]:
                return True
            if scope == option:
                return True
    return False


@dataclass
class TypeInfo:
    """Discovery: one entity type, how many entities have it, and their attributes."""

    type: str
    count: int
    attributes: dict[str, set[str]]  # attribute IRI -> attribute types seen


class EntityStore(Protocol):
    """What the NGSI-LD actions need from storage.  Every method is tenant-scoped."""

    engine: str
    observer: ChangeObserver | None   # set by the composition root before open()

    async def open(self) -> None:
        """Connect and create the schema when missing."""

    async def close(self) -> None:
        """Flush pending writes and disconnect."""

    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        """One entity, or ``None``."""

    async def write(self, tenant: str, ids: list[str], fn: WriteFn) -> Any:
        """Run ``fn`` on the current state of ``ids`` and apply its WriteSet atomically."""

    async def query(self, plan: QueryPlan) -> tuple[list[Entity], int | None]:
        """One page of matching entities in insertion order, and the total if ``plan.count``."""

    async def delete_matching(self, plan: QueryPlan) -> int:
        """Delete every entity matching ``plan`` (purge); returns how many."""

    async def type_info(self, tenant: str) -> list[TypeInfo]:
        """Every entity type of the tenant with counts and attributes (discovery)."""

    async def tenants(self) -> list[str]:
        """Every tenant that has ever stored data."""

    async def tenant_exists(self, tenant: str) -> bool:
        """Whether the tenant has ever stored data."""

    async def put_context(self, tenant: str, ctx_id: str, url: str, kind: str,
                          document: Any, created_at: str) -> None:
        """Store a JSON-LD context (``/jsonldContexts``)."""

    async def get_context(self, tenant: str, ctx_id: str) -> dict[str, Any] | None:
        """A stored context record: id, url, kind, document, createdAt."""

    async def list_contexts(self, tenant: str) -> list[dict[str, Any]]:
        """Every stored context record."""

    async def delete_context(self, tenant: str, ctx_id: str) -> bool:
        """Remove a stored context."""

    async def context_by_url(self, url: str) -> Any | None:
        """A stored context document by its URL, in any tenant (contexts are global by URL)."""

    # -- documents: subscriptions, registrations and other small records -----------------------
    async def put_document(self, kind: str, tenant: str, doc_id: str, doc: dict[str, Any],
                           *, create: bool = False) -> bool:
        """Store ``doc``; with ``create`` only if absent (returns False when it existed)."""

    async def put_documents(self, kind: str, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store several documents of ``kind``, each ``(tenant, id, doc)``, replacing stored ones,
        in one transaction (the same id twice: the last one wins)."""

    async def get_document(self, kind: str, tenant: str, doc_id: str) -> dict[str, Any] | None:
        """One stored document, or ``None``."""

    async def list_documents(self, kind: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every document of ``kind`` (of one tenant, or of all when ``tenant`` is None), oldest
        first; each as stored, plus ``"_tenant"``."""

    async def delete_document(self, kind: str, tenant: str, doc_id: str) -> bool:
        """Remove a document; False when there was none."""

    # -- outbox ----------------------------------------------------------------------------------
    async def outbox_pending(self, limit: int = 1000) -> list[OutboxRow]:
        """Rows left over (a crash, another node's expired lease), claimed for this process."""

    async def outbox_done(self, ids: list[str]) -> None:
        """Forget finished outbox rows."""

    def add_claims(self, ids: list[str]) -> None:
        """Treat rows as this process's own, as if it had read them back: they are not handed
        out again, and on PostgreSQL their leases are renewed (ADR 0017: rows the dispatcher
        process got from the server rather than from the outbox)."""

    def release_claims(self, ids: list[str]) -> None:
        """Stop treating rows as this process's own: another process deleted them (the server,
        for its dispatcher process, ADR 0017).  Otherwise the claims would pile up."""

    async def sweep_fanout_sets(self, mark: int | None) -> tuple[int, int]:
        """Delete the fan-out sets (documents of kind ``outbox-fanout``) last written at or
        before ``mark`` that no outbox row names; returns (how many were deleted, the mark to
        pass next time).  ``None`` deletes nothing and only takes the mark (fanout_sweep.py
        says why a mark must be an hour old)."""
