"""Cheap unique ids for things the broker makes by the thousand (history instances, outbox rows,
notifications).

A random per-process prefix and a counter are unique across processes and restarts like a UUID4,
without a trip to the system's random source (``os.urandom``) for every id.
"""

from __future__ import annotations

import itertools
import uuid

_PROCESS = uuid.uuid4().hex
_NEXT = itertools.count(1)


def unique_id() -> str:
    """A new id, unique among every process that ever ran: ``<32 hex>-<counter>``."""
    return f"{_PROCESS}-{next(_NEXT)}"
