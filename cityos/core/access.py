"""Who is calling and what they may see: the contract between the auth block and everything else.

The auth block (``cityos.auth``) authenticates a request and decides, once, which *action* it is
and whether its caller may take it in the tenant it names (ADR 0012, 0013).  What the decision
allows travels with the request as an :class:`Access` in a context variable; the data block's
guarded store (``data/ngsild/guarded.py``) reads it on every entity read and write and narrows
what is returned or refuses what may not be written.  Data, assets and ingest import only this
module, never ``cityos.auth``.

No :class:`Access` in the context means a trusted internal caller (start-up, the notifier, the
IoT agent's writer, the scheduler, the CLI on the local database, insecure development mode).
Every HTTP request that reaches a route has one: the auth middleware sets it before routing.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from cityos.core.problems import Forbidden, Unauthorized

# -- actions and the OAuth scopes that carry them ------------------------------------------------
ACTION_SCOPES: dict[str, str] = {
    "entity.read": "entities:read",
    "entity.write": "entities:write",
    "entity.delete": "entities:write",
    "context.manage": "entities:write",
    "pd.manage": "entities:write",
    "subscription.manage": "subscriptions",
    "csource.manage": "csources",
    "device.manage": "iot",
    "system.manage": "systems",
    "import.run": "import",
    "account.manage": "admin",
    "policy.manage": "admin",
    "client.manage": "admin",
    "consent.manage": "consent",
    "audit.read": "audit",
}
ACTIONS = tuple(ACTION_SCOPES)
PD_SCOPE_PREFIX = "pd:"
# personal-data categories a consent and a ``pd:<category>`` scope name (要配慮個人情報 = sensitive)
PD_CATEGORIES = ("location", "movement", "health", "purchase", "contact", "identity", "image",
                 "sensitive")

# The attributes that mark an entity as personal data (ADR 0013): the terms ``dataOwner`` and
# ``dataCategory`` of the default vocabulary, i.e. what a caller using only the core context gets.
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
PD_OWNER = VOCAB + "dataOwner"
PD_CATEGORY = VOCAB + "dataCategory"
ACCOUNT_URN = "urn:cityos:account:"


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller, as the access token or the session describes it."""

    kind: str                               # user | client | system | anonymous
    subject: str                            # account id, client id, or a system name
    client_id: str | None = None
    organization: str | None = None         # organization id of the account or client
    home_tenant: str = ""
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] | None = None    # None = not limited by scopes (system, anonymous)
    acr: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: int | None = None            # epoch seconds of the login
    purpose: str | None = None              # the client's declared purpose (consent)
    session_id: str | None = None
    grant_id: str | None = None
    token_id: str | None = None

    @classmethod
    def system(cls, name: str) -> Principal:
        """A trusted internal caller (the IoT agent, the scheduler, the CLI)."""
        return cls(kind="system", subject=name)

    @classmethod
    def anonymous(cls) -> Principal:
        """A caller without a token: only what an open-data policy names."""
        return cls(kind="anonymous", subject="anonymous", roles=frozenset({"anonymous"}))

    @property
    def owner_urn(self) -> str | None:
        """The ``dataOwner`` value naming this caller's own personal data (accounts only)."""
        return ACCOUNT_URN + self.subject if self.kind == "user" else None

    @functools.cached_property
    def pd_categories(self) -> frozenset[str]:
        """Personal-data categories the token's ``pd:<category>`` scopes reach."""
        if not self.scopes:
            return frozenset()
        return frozenset(s[len(PD_SCOPE_PREFIX):] for s in self.scopes if s.startswith(PD_SCOPE_PREFIX))

    @property
    def has_mfa(self) -> bool:
        """Whether the login behind the token used a second factor (RFC 8176 ``mfa``)."""
        return "mfa" in self.amr

    def allows_scope(self, scope: str) -> bool:
        """Whether the token carries ``scope`` (a principal without scopes is not limited)."""
        return self.scopes is None or scope in self.scopes

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of this principal (stored as a subscription's owner)."""
        return {"kind": self.kind, "subject": self.subject, "clientId": self.client_id,
                "organization": self.organization, "homeTenant": self.home_tenant,
                "roles": sorted(self.roles), "scopes": None if self.scopes is None else
                sorted(self.scopes), "purpose": self.purpose, "amr": list(self.amr)}

    @classmethod
    def from_description(cls, doc: dict[str, Any]) -> Principal:
        """The principal :meth:`describe` recorded."""
        scopes = doc.get("scopes")
        return cls(kind=doc["kind"], subject=doc["subject"], client_id=doc.get("clientId"),
                   organization=doc.get("organization"), home_tenant=doc.get("homeTenant", ""),
                   roles=frozenset(doc.get("roles") or ()),
                   scopes=None if scopes is None else frozenset(scopes),
                   purpose=doc.get("purpose"), amr=tuple(doc.get("amr") or ()))


@dataclass(frozen=True)
class AccessView:
    """What the policies allow one principal for one action in one tenant.

    ``types`` and ``attributes`` hold the names the policies gave (short terms of the core context
    or IRIs); ``None`` means every type or attribute.  Allow-only: what is not named is not allowed.
    """

    types: frozenset[str] | None = None
    attributes: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.types is None and self.attributes is None

    @staticmethod
    def union(views: Iterable[AccessView]) -> AccessView | None:
        """The view several allowing policies give together (None when there are none)."""
        views = list(views)
        if not views:
            return None
        types: set[str] | None = set()
        attrs: set[str] | None = set()
        for view in views:
            if types is not None:
                types = None if view.types is None else types | view.types
            if attrs is not None:
                attrs = None if view.attributes is None else attrs | view.attributes
        return AccessView(None if types is None else frozenset(types),
                          None if attrs is None else frozenset(attrs))


@dataclass(frozen=True)
class AuditRecord:
    """One audited event: who, which data, for which purpose, when (ADR 0012 §11)."""

    event: str                              # pd.read | pd.write | pd.notify | auth.* | consent.* ...
    actor_kind: str
    actor_sub: str
    tenant: str = ""
    client_id: str | None = None
    processor_org: str | None = None
    purpose: str | None = None
    owner_id: str | None = None
    category: str | None = None
    targets: tuple[str, ...] = ()
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


class ConsentChecker(Protocol):
    """Reads live consent records (never cached: a withdrawal applies to the next read)."""

    async def granted(self, processor_org: str, purpose: str | None,
                      categories: Iterable[str]) -> frozenset[tuple[str, str]]:
        """(owner urn, category) pairs with a given, unexpired consent for this processor/purpose."""


class AuditSink(Protocol):
    """Appends audit records durably before the answer that caused them is sent."""

    async def append(self, records: list[AuditRecord]) -> None:
        """Store ``records`` (raises when they could not be stored: the caller fails closed)."""


@dataclass
class Access:
    """The decision for one request: who, which action, in which tenant, seeing what."""

    principal: Principal
    action: str
    tenant: str
    read: AccessView | None                # None: may not read entities at all
    write: AccessView | None               # None: may not write entities
    may_manage_pd: bool = False            # may set dataOwner / dataCategory
    consents: ConsentChecker | None = None
    audit: AuditSink | None = None
    request_id: str | None = None
    # (owner, category) pairs granted to this principal, read at most once per request
    _granted: frozenset[tuple[str, str]] | None = None

    async def granted_pairs(self) -> frozenset[tuple[str, str]]:
        """Consent pairs covering this caller, read from the database once per request."""
        if self._granted is None:
            categories = self.principal.pd_categories
            if not categories or self.consents is None or not self.principal.organization:
                self._granted = frozenset()
            else:
                self._granted = await self.consents.granted(
                    self.principal.organization, self.principal.purpose, categories)
        return self._granted


_current: contextvars.ContextVar[Access | None] = contextvars.ContextVar("cityos_access",
                                                                         default=None)


def current_access() -> Access | None:
    """The access decision of the request being served (None: a trusted internal caller)."""
    return _current.get()


@contextmanager
def acting_as(access: Access | None) -> Iterator[None]:
    """Run a block under ``access`` (``None``: as a trusted internal caller)."""
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)


def calling_resident(signed_out: str, not_resident: str) -> tuple[Access, str]:
    """The calling resident's access and owner urn, for the /me pages of their personal data:
    401 with ``signed_out`` when nobody signed in, 403 with ``not_resident`` for a caller that
    owns no personal data (a client, an operator)."""
    access = _current.get()
    if access is None:
        raise Unauthorized(signed_out)
    owner = access.principal.owner_urn
    if owner is None:
        raise Forbidden(not_resident)
    return access, owner


def caller_description() -> dict[str, Any] | None:
    """The request's caller as a JSON record (a subscription's owner), None for internal callers."""
    access = _current.get()
    if access is None or access.principal.kind == "system":
        return None
    return access.principal.describe()


ADMIN_ROLES = frozenset({"operator", "platform-operator"})


def may_see_owned(owner: dict[str, Any] | None) -> bool:
    """Whether the request's caller may see a resource another caller created (a subscription:
    its endpoint and receiverInfo may carry that caller's secrets).  Operators see every one of
    their tenant; others those created in their organization (or by themselves when they have
    none); resources without an owner (internal, insecure mode) are every caller's."""
    access = _current.get()
    if access is None or owner is None:
        return True
    who = access.principal
    if who.roles & ADMIN_ROLES:
        return True
    if who.organization:
        return bool(owner.get("organization") == who.organization)
    return bool(owner.get("subject") == who.subject and owner.get("kind") == who.kind)


def set_access(access: Access | None) -> contextvars.Token[Access | None]:
    """Set the request's access (the middleware resets it with the returned token)."""
    return _current.set(access)


def reset_access(token: contextvars.Token[Access | None]) -> None:
    _current.reset(token)
