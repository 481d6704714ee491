"""The directory's records: organizations, accounts, OAuth clients and access policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCOUNT_STATUSES = ("active", "disabled", "erasing", "deleted")
ORGANIZATION_KINDS = ("municipality", "service-provider", "data-provider", "operator", "other")
SUBJECT_KINDS = ("role", "account", "client", "organization")
# Roles every installation starts with (editable policies, fixed names: ADR 0012 §8)
BUILTIN_ROLES = {
    "anonymous": "Callers without a token: only what open-data policies name.",
    "resident": "A resident: reads non-personal city data, manages own consents and data.",
    "developer": "A service provider's developer: reads city data, manages subscriptions.",
    "operator": "The city's operator (admin) of its home tenant: every action there.",
    "auditor": "Read-only: entities, the audit log and listings.",
    "data-provider": "Writes the data it provides: entities, devices, imports, external systems.",
    "platform-operator": "Operates the whole platform: every action in every tenant.",
}


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    kind: str
    home_tenant: str = ""
    created_at: int = 0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind,
                "homeTenant": self.home_tenant, "createdAt": self.created_at}


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    name: str
    email: str
    organization_id: str | None
    status: str
    roles: frozenset[str]
    password_hash: str | None = None
    failed_logins: int = 0
    locked_until: int = 0
    lock_count: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    not_before: int = 0                # tokens issued before this epoch second are void
    created_at: int = 0
    updated_at: int = 0

    def public(self) -> dict[str, Any]:
        """The account as the admin API shows it (never the password hash)."""
        return {"id": self.id, "username": self.username, "name": self.name, "email": self.email,
                "organization": self.organization_id, "status": self.status,
                "roles": sorted(self.roles), "attributes": self.attributes,
                "lockedUntil": self.locked_until or None, "createdAt": self.created_at,
                "updatedAt": self.updated_at}


@dataclass(frozen=True)
class Purpose:
    """A purpose of use a client declares; consents are given per purpose (ISO/IEC TS 27560)."""

    id: str
    text: str
    category: str = "ServiceProvision"


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    organization_id: str | None
    auth_method: str                   # client_secret_basic | client_secret_post | none | private_key_jwt
    secret_hash: str | None = None
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()       # scopes the client may ask for
    roles: tuple[str, ...] = ()        # roles of its client-credentials tokens
    purposes: tuple[Purpose, ...] = ()
    jwks: dict[str, Any] | None = None
    trusted: bool = False              # first-party: no approval page
    status: str = "active"
    valid_from: int | None = None      # the service's validity period (AU-AA-2)
    valid_until: int | None = None
    created_at: int = 0
    updated_at: int = 0

    @property
    def public_client(self) -> bool:
        return self.auth_method == "none"

    def valid_at(self, now: float) -> bool:
        return (self.status == "active" and (self.valid_from is None or now >= self.valid_from)
                and (self.valid_until is None or now < self.valid_until))

    def public(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "name": self.name,
                "organization": self.organization_id, "tokenEndpointAuthMethod": self.auth_method,
                "redirectUris": list(self.redirect_uris),
                "postLogoutRedirectUris": list(self.post_logout_redirect_uris),
                "grantTypes": list(self.grant_types), "scopes": list(self.scopes),
                "roles": list(self.roles),
                "purposes": [{"id": p.id, "text": p.text, "category": p.category}
                             for p in self.purposes],
                "trusted": self.trusted, "status": self.status, "validFrom": self.valid_from,
                "validUntil": self.valid_until, "createdAt": self.created_at}


@dataclass(frozen=True)
class Policy:
    """Allow-only: ``subject`` may take ``actions`` in ``tenants`` on ``types``/``attributes``.

    ``tenants``: names, ``@home`` (the caller's home tenant) or ``*``.  ``types`` and
    ``attributes``: None = all; else short names of the core context or IRIs.  ``valid_from`` /
    ``valid_until`` (epoch seconds) bound the access period (AU-AA-2).
    """

    id: str
    subject_kind: str
    subject: str
    actions: tuple[str, ...]
    tenants: tuple[str, ...] = ("@home",)
    types: tuple[str, ...] | None = None
    attributes: tuple[str, ...] | None = None
    valid_from: int | None = None
    valid_until: int | None = None
    description: str = ""
    builtin: bool = False
    created_at: int = 0

    def valid_at(self, now: float) -> bool:
        return ((self.valid_from is None or now >= self.valid_from)
                and (self.valid_until is None or now < self.valid_until))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "subject": {self.subject_kind: self.subject},
                "actions": list(self.actions), "tenants": list(self.tenants),
                "types": None if self.types is None else list(self.types),
                "attributes": None if self.attributes is None else list(self.attributes),
                "validFrom": self.valid_from, "validUntil": self.valid_until,
                "description": self.description, "builtin": self.builtin}
