"""Operation names and operation groups of a registration's ``operations`` (clause 4.20, 5.2.9).

A registration lists single operations (``retrieveEntity``), groups (``federationOps``) or both;
:func:`expand_operations` turns the list into the set of single operations it allows, which is
what forwarding checks.  The default, when ``operations`` is absent, is ``federationOps``.
"""

from __future__ import annotations

from cityos.core.problems import BadRequestData

SINGLE = frozenset({
    "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs", "deleteEntity",
    "mergeEntity", "replaceEntity", "replaceAttrs", "purgeEntity",
    "createBatch", "upsertBatch", "updateBatch", "deleteBatch", "mergeBatch",
    "upsertTemporal", "appendAttrsTemporal", "deleteAttrsTemporal", "updateAttrsTemporal",
    "deleteAttrInstanceTemporal", "deleteTemporal", "mergeEntityTemporal",
    "retrieveEntity", "queryEntity", "queryBatch", "retrieveTemporal", "queryTemporal",
    "retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
    "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo",
    "createSubscription", "updateSubscription", "retrieveSubscription", "querySubscription",
    "deleteSubscription", "entityMap", "canCompress",
})
_DISCOVERY = ("retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
              "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo")
_SUBSCRIPTIONS = ("createSubscription", "updateSubscription", "retrieveSubscription",
                  "querySubscription", "deleteSubscription")
GROUPS: dict[str, frozenset[str]] = {
    "federationOps": frozenset({"retrieveEntity", "queryEntity", "queryBatch", *_DISCOVERY,
                                *_SUBSCRIPTIONS}),
    "updateOps": frozenset({"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"}),
    "retrieveOps": frozenset({"retrieveEntity", "queryEntity"}),
    "redirectionOps": frozenset({"createEntity", "updateAttrs", "appendAttrs", "deleteAttrs",
                                 "deleteEntity", "mergeEntity", "replaceEntity", "replaceAttrs",
                                 "retrieveEntity", "queryEntity", *_DISCOVERY}),
}
DEFAULT = ["federationOps"]
# 5.9.2.4: an auxiliary registration may only serve reads
AUXILIARY_ALLOWED = frozenset({"retrieveOps", "retrieveEntity", "queryEntity"})
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")


def check_operations(value: object, mode: str) -> list[str]:
    """The ``operations`` member validated (400 BadRequestData when it is not)."""
    if value is None:
        return list(DEFAULT)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadRequestData("operations must be a non-empty array of operation names")
    for name in value:
        if name not in SINGLE and name not in GROUPS:
            raise BadRequestData(f"operations: unknown operation {name[:60]!r}")
    if mode == "auxiliary" and not set(value) <= AUXILIARY_ALLOWED:
        raise BadRequestData("an auxiliary registration may only list retrieveOps, "
                             "retrieveEntity or queryEntity")
    return list(dict.fromkeys(value))


def expand_operations(names: list[str]) -> frozenset[str]:
    """Every single operation that ``names`` (singles and groups) allows."""
    out: set[str] = set()
    for name in names:
        out |= GROUPS.get(name, {name})
    return frozenset(out)
