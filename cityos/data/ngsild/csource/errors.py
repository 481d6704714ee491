"""NGSI-LD error types that only distributed operations raise (ETSI GS CIM 009 clause 5.5.3)."""

from __future__ import annotations

from cityos.core.problems import NGSI_LD_ERRORS, Problem


class Conflict(Problem):
    """409 Conflict: an exclusive or redirect registration overlaps existing data (5.9.2.4)."""

    status = 409
    type_uri = NGSI_LD_ERRORS + "Conflict"
    title = "Conflict"


class LoopDetected(Problem):
    """508 LoopDetected: the request already passed through this broker (``Via``, 6.3.18)."""

    status = 508
    type_uri = NGSI_LD_ERRORS + "LoopDetected"
    title = "Loop detected"
