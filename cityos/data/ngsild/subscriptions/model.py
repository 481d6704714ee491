"""The internal form of an NGSI-LD subscription, shared by the subscription API and the notifier.

The API parses a request body into a :class:`Subscription` once (terms expanded with the
caller's ``@context``, times checked); matching changes and rendering notifications then work on
this form only.  ``Counters`` are what the notifier learns while delivering; they live beside the
subscription and are written back to the store now and then (they are informative, not part of
the at-least-once promise, which rests on the outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cityos.data.ngsild.store.base import Selector

# notificationTrigger values (NGSI-LD 1.8, clause 5.2.12)
ENTITY_CREATED = "entityCreated"
ENTITY_UPDATED = "entityUpdated"
ENTITY_DELETED = "entityDeleted"
ATTRIBUTE_CREATED = "attributeCreated"
ATTRIBUTE_UPDATED = "attributeUpdated"
ATTRIBUTE_DELETED = "attributeDeleted"
TRIGGERS = frozenset({ENTITY_CREATED, ENTITY_UPDATED, ENTITY_DELETED, ATTRIBUTE_CREATED,
                      ATTRIBUTE_UPDATED, ATTRIBUTE_DELETED})
DEFAULT_TRIGGERS = frozenset({ATTRIBUTE_CREATED, ATTRIBUTE_UPDATED})
LD_FACE = "ngsi-ld"     # Subscription.face of NGSI-LD's own subscriptions


@dataclass
class Endpoint:
    """Where and how notifications go."""

    uri: str                                       # http(s)://... or mqtt(s)://host:port/topic
    accept: str = "application/json"               # application/json or application/ld+json
    receiver_info: list[tuple[str, str]] = field(default_factory=list)   # extra headers / MQTT
    notifier_info: list[tuple[str, str]] = field(default_factory=list)   # e.g. MQTT-QoS


@dataclass
class Subscription:
    """A validated subscription.  Attribute names and types are expanded IRIs."""

    id: str
    tenant: str
    endpoint: Endpoint
    selectors: tuple[Selector, ...] | None = None      # None: any entity (watchedAttributes only)
    watched: frozenset[str] | None = None              # None: every attribute
    triggers: frozenset[str] = DEFAULT_TRIGGERS
    q: Any = None                                      # expanded qlang tree (qlang_parse)
    geo: Any = None                                    # GeoQuery (geoquery.py)
    scope_q: str | None = None
    attributes: frozenset[str] | None = None           # notification.attributes (or the
                                                       # attributes ``pick`` names); None = all
    omit: frozenset[str] = frozenset()                 # attributes notification.omit names
    show_id: bool = True                               # pick/omit may leave out id and type
    show_type: bool = True
    format: str = "normalized"                         # normalized | concise | keyValues
    show_changes: bool = False
    sys_attrs: bool = False
    lang: str | None = None
    dataset_ids: frozenset[str] | None = None          # datasetId: only these attribute instances
                                                       # ("@none" = the default one); None = all
    join: str | None = None                            # notification.join: "flat" | "inline"
    join_level: int = 1                                # notification.joinLevel
    throttling: float | None = None                    # seconds between notifications
    time_interval: float | None = None                 # periodic subscription, seconds
    expires_at: int | None = None                      # epoch microseconds
    is_active: bool = True
    context: Any = None                                # the @context to compact notifications with
    created_at: str = ""
    modified_at: str = ""
    # who created it (core.access.Principal.describe()); notifications carry only what this
    # caller may see now (ADR 0013).  None: created by an internal caller or in insecure mode.
    owner: dict[str, Any] | None = None
    document: dict[str, Any] = field(default_factory=dict)   # the subscription as last written,
                                                              # compacted, for GET
    # -- added by the subscription API ----------------------------------------------------------
    # member name -> {term: IRI} of every name the member was expanded with (the exact answer of
    # the caller's @context at the time), so the subscription is re-parsed identically at start-up
    # without fetching any remote @context again, and a PATCH under another @context changes only
    # the members it names
    terms: dict[str, dict[str, str]] = field(default_factory=dict)
    term_map: Any = None            # TermMap of ``context`` for compacting notifications (set by
                                    # the API and by the registry at start-up; None = core only)
    name: str | None = None         # subscriptionName
    # -- added for the other face (NGSI v2, ADR 0008) -------------------------------------------
    face: str = LD_FACE             # the API that owns it: picks its notification renderer and
                                    # which subscription API lists it
    extension: Any = None           # what that face keeps besides (v2: format, service path ...)
    predicate: Callable[[dict[str, Any]], bool] | None = None   # one more test of the entity
                                    # (after the change) that q / geoQ / scopeQ cannot express
    keep_previous: bool = False     # its notifications need the state before the change
    # what the notification renderer worked out once for this subscription (render.py); not an
    # init field, so a subscription rebuilt by PATCH starts without it
    prepared: Any = field(default=None, init=False, repr=False, compare=False)


@dataclass
class Counters:
    """Delivery statistics of one subscription (NGSI-LD NotificationParams members)."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    consecutive_failures: int = 0
    last_sent_monotonic: float = 0.0                  # for throttling
    last_success_code: int | None = None              # HTTP status of the last success
    last_failure_reason: str | None = None            # why the last attempt failed

    @property
    def failing(self) -> bool:
        """The last delivery attempt failed (status ``failed``)."""
        return self.consecutive_failures > 0


@dataclass
class NotifyItem:
    """One entity to put in a notification's ``data``.

    ``entity`` is the internal form after the write (for a deletion: the state before it, with
    ``deletedAt`` set); ``previous`` is the state before the write when ``showChanges`` needs it.
    """

    entity: dict[str, Any]
    previous: dict[str, Any] | None = None
    trigger: str = ATTRIBUTE_UPDATED
    # render key -> this item's entity serialized for ``data``: the notifier shares one item
    # between every subscription a change fired, so alike subscriptions serialize it once
    rendered: dict[Any, bytes] = field(default_factory=dict, repr=False, compare=False)
