"""DM  the NGSI-LD broker (DM-BR-1, DM-MD-1, DM-DY-1, DM-GE-1): ETSI GS CIM 009 API over a store.

Public interface: :func:`build_broker` and :data:`ROUTES`; everything else is internal.
"""

from __future__ import annotations

from cityos.data.ngsild.actions import Broker
from cityos.data.ngsild.batch import batch_create, batch_upsert
from cityos.data.ngsild.context import ContextResolver
from cityos.data.ngsild.csource import ROUTES as _CSOURCE
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.routes_batch import ROUTES as _BATCH
from cityos.data.ngsild.routes_contexts import ROUTES as _CONTEXTS
from cityos.data.ngsild.routes_discovery import ROUTES as _DISCOVERY
from cityos.data.ngsild.routes_entities import ROUTES as _ENTITIES
from cityos.data.ngsild.store.base import Change, ChangeObserver, Effects, OutboxRow
from cityos.data.ngsild.subscriptions import ROUTES as _SUBSCRIPTIONS
from cityos.data.ngsild.temporal.routes import ROUTES as _TEMPORAL
from cityos.data.ngsild.terms import TermMap

ROUTES = [*_ENTITIES, *_BATCH, *_DISCOVERY, *_CONTEXTS, *_SUBSCRIPTIONS,
          *_TEMPORAL, *_CSOURCE]

__all__ = ["ROUTES", "Broker", "Change", "ChangeObserver", "ContextResolver", "Effects",
           "OutboxRow", "TermMap", "batch_create", "batch_upsert", "utc_now"]
