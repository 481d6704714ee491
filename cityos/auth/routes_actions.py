"""Which action every API path and method is (ADR 0012 §7): the table the one access check reads.

Deny by default: a path no rule names is refused (401 without a token, 403 with one), so a route
added without a rule is closed, not open.  ``tests/auth/test_matrix.py`` fails when a route of
the app has no rule here.
"""

from __future__ import annotations

OPEN = "open"       # no decision: public documents, the login pages, device southbound (apikeys)
SELF = "self"       # any signed-in account or client, acting on itself (/me)

_READ_WRITE_DELETE = {"GET": "entity.read", "HEAD": "entity.read", "POST": "entity.write",
                      "PATCH": "entity.write", "PUT": "entity.write", "DELETE": "entity.delete"}

# (path prefix, action or {method: action}); the longest prefix that matches wins.  A prefix
# matches the path itself and everything below it (at a "/" boundary).
RULES: tuple[tuple[str, str | dict[str, str]], ...] = (
    ("/auth", OPEN),
    ("/.well-known", OPEN),
    ("/docs", OPEN),
    ("/openapi.json", OPEN),
    ("/health", OPEN),
    ("/version", OPEN),
    # devices authenticate with their group's apikey (FIWARE IoT Agent model, ADR 0012 §12)
    ("/iot/json", OPEN),
    ("/iot/d", OPEN),
    ("/iot/services", "device.manage"),
    ("/iot/devices", "device.manage"),
    ("/assets/v1/devices", "device.manage"),
    ("/assets/v1/systems", "system.manage"),
    ("/ingest/v1/imports", "import.run"),
    ("/admin/policies", "policy.manage"),
    ("/admin/clients", "client.manage"),
    ("/admin", "account.manage"),
    ("/me", SELF),
    ("/audit", "audit.read"),
    # NGSI-LD
    ("/ngsi-ld/v1/entityOperations/query", "entity.read"),
    ("/ngsi-ld/v1/entityOperations/delete", "entity.delete"),
    ("/ngsi-ld/v1/entityOperations", "entity.write"),
    ("/ngsi-ld/v1/temporal/entityOperations/query", "entity.read"),
    ("/ngsi-ld/v1/temporal/entities", _READ_WRITE_DELETE),
    ("/ngsi-ld/v1/entities", _READ_WRITE_DELETE),
    ("/ngsi-ld/v1/types", "entity.read"),
    ("/ngsi-ld/v1/attributes", "entity.read"),
    ("/ngsi-ld/v1/subscriptions", "subscription.manage"),
    ("/ngsi-ld/v1/csourceRegistrations", "csource.manage"),
    ("/ngsi-ld/v1/csourceSubscriptions", "csource.manage"),
    # hosted @context documents are read by anyone interpreting the data; managing them is not
    ("/ngsi-ld/v1/jsonldContexts", {"GET": OPEN, "HEAD": OPEN, "POST": "context.manage",
                                    "DELETE": "context.manage"}),
    # NGSI v2
    ("/v2/entities", _READ_WRITE_DELETE),
    ("/v2/op/query", "entity.read"),
    ("/v2/op/update", "entity.write"),
    ("/v2/types", "entity.read"),
    ("/v2/subscriptions", "subscription.manage"),
    ("/v2", OPEN),     # the entry point and the catch-all that answers unknown /v2 paths
)
EXACT_OPEN = frozenset({"/"})


_BY_PREFIX: dict[str, str | dict[str, str]] = dict(RULES)


def action_of(method: str, path: str) -> str | None:
    """The action of ``method path`` (OPEN, SELF or an action name); None when no rule names it.

    The longest rule prefix that ends at a segment boundary wins: the path is cut back one
    segment at a time and looked up (a few dictionary lookups on every request, not a scan).
    """
    if path in EXACT_OPEN:
        return OPEN
    candidate = path
    while True:
        rule = _BY_PREFIX.get(candidate)
        if rule is not None:
            return rule if isinstance(rule, str) else rule.get(method.upper())
        cut = candidate.rfind("/")
        if cut <= 0:
            return None
        candidate = candidate[:cut]


def tenant_header(path: str) -> str:
    """The header naming the tenant on this face: FIWARE's on /v2 and /iot, NGSI-LD's elsewhere."""
    return "fiware-service" if path.startswith(("/v2", "/iot/")) else "ngsild-tenant"
