"""Distributed data (DM-BR-2, SI-IC-2): context source registrations and distributed operations.

Public interface:

* :data:`ROUTES` - ``/ngsi-ld/v1/csourceRegistrations`` and ``/ngsi-ld/v1/csourceSubscriptions``
  (create, query, retrieve, update, delete).
* :func:`federation_for` - for an entity read, the registrations that may answer it (``None``, at
  the cost of one dictionary lookup, when there are none); its ``retrieve`` / ``query`` merge
  the local store's answer with the sources' answers, and ``headers`` carries ``NGSILD-Warning``.
* :func:`forwarding` - wraps an entity write route so that writes covered by a registration are
  forwarded per its mode (exclusive, redirect, inclusive); :func:`batch_forwarding` does the same
  for the batch write routes, entity by entity.

* :func:`discovery_for` - for a discovery request (``/types``, ``/attributes``), the
  registrations serving it (``None``, cheaply, when there are none); its ``entity_types`` /
  ``entity_type`` / ``attributes`` / ``attribute`` return what the sources hold.

* :func:`close_index` - at shutdown, closes the forwarding client (the composition root calls it).

See docs/federation.md and ADR 0009.
"""

from __future__ import annotations

from cityos.data.ngsild.csource.batch_writes import batch_forwarding
from cityos.data.ngsild.csource.csub_routes import ROUTES as _CSUB_ROUTES
from cityos.data.ngsild.csource.discovery import AttrFacts, Discovery, discovery_for
from cityos.data.ngsild.csource.index import close_index
from cityos.data.ngsild.csource.reads import Federation, federation_for
from cityos.data.ngsild.csource.routes import ROUTES as _CSR_ROUTES
from cityos.data.ngsild.csource.writes import forwarding

ROUTES = [*_CSR_ROUTES, *_CSUB_ROUTES]

__all__ = ["ROUTES", "AttrFacts", "Discovery", "Federation", "batch_forwarding", "close_index",
           "discovery_for", "federation_for", "forwarding"]
