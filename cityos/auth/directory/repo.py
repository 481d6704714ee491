"""The directory's store: every read and write of organizations, accounts, clients and policies.

Every change of roles, policies, clients or organizations bumps ``auth_config_version`` in its
transaction, so each node's policy snapshot (``auth/policy.py``) notices it within a second.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from cityos.auth.directory.models import (
    BUILTIN_ROLES,
    Account,
    Client,
    Organization,
    Policy,
    Purpose,
)
from cityos.auth.directory.schema import DIRECTORY_DDL
from cityos.core.sqldb import Row, Sql, SqlDb

ALL_ACTIONS_HOME = ("*",)


def normalize_username(name: str) -> str:
    """Usernames compare NFKC-folded and case-insensitively (ＡＢＣ = abc)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def hash_secret(secret: str) -> str:
    """SHA-256 of a 256-bit random secret (a slow hash adds nothing at that entropy)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> int:
    return int(time.time())


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _load(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


class Directory:
    """Organizations, accounts, roles, policies and clients on one :class:`SqlDb`."""

    def __init__(self, db: SqlDb) -> None:
        self.db = db
        self.local_changes = 0

    async def create_schema(self) -> None:
        await self.db.script(DIRECTORY_DDL)

    async def seed(self) -> None:
        """The built-in roles and their default policies (created once, editable afterwards)."""
        now = _now()
        for name, text in BUILTIN_ROLES.items():
            await self.db.execute("INSERT INTO auth_roles (name, description, builtin) VALUES (?, ?, 1) "
                                  "ON CONFLICT (name) DO NOTHING", name, text)
        for policy in _BUILTIN_POLICIES:
            await self.db.execute(
                "INSERT INTO auth_policies (id, subject_kind, subject, actions, tenants, types, "
                "attributes, valid_from, valid_until, description, builtin, created_at) "
                "VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, 1, ?) ON CONFLICT (id) DO NOTHING",
                policy.id, policy.subject_kind, policy.subject, _json(list(policy.actions)),
                _json(list(policy.tenants)), policy.description, now)

    # -- change feed -----------------------------------------------------------------------------
    async def config_version(self) -> int:
        row = await self.db.fetchrow("SELECT version FROM auth_config_version WHERE id = 1")
        return int(row["version"]) if row else 0

    async def _bump(self, tx: Sql) -> None:
        await tx.execute("UPDATE auth_config_version SET version = version + 1 WHERE id = 1")
        self.local_changes += 1     # this node's evaluator reloads at once, others within 1 s

    # -- organizations ---------------------------------------------------------------------------
    async def create_organization(self, org_id: str, name: str, kind: str,
                                  home_tenant: str = "") -> Organization:
        org = Organization(org_id, name, kind, home_tenant, _now())
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO auth_organizations (id, name, kind, home_tenant, created_at) "
                             "VALUES (?, ?, ?, ?, ?)", org.id, name, kind, home_tenant, org.created_at)
            await self._bump(tx)
        return org

    async def get_organization(self, org_id: str) -> Organization | None:
        row = await self.db.fetchrow("SELECT * FROM auth_organizations WHERE id = ?", org_id)
        return None if row is None else Organization(**row)

    async def list_organizations(self) -> list[Organization]:
        return [Organization(**r) for r in await self.db.fetch(
            "SELECT * FROM auth_organizations ORDER BY id")]

    async def delete_organization(self, org_id: str) -> bool:
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM auth_organizations WHERE id = ?", org_id)
            await self._bump(tx)
        return gone > 0

    # -- accounts --------------------------------------------------------------------------------
    async def create_account(self, username: str, *, password_hash: str | None = None,
                             name: str = "", email: str = "", organization_id: str | None = None,
                             roles: tuple[str, ...] | frozenset[str] = ("resident",),
                             attributes: dict[str, Any] | None = None) -> Account:
        """A new active account; ``ValueError`` when the username is taken."""
        now = _now()
        account_id = str(uuid.uuid4())
        norm = normalize_username(username)
        async with self.db.transaction() as tx:
            if await tx.fetchrow("SELECT 1 AS x FROM auth_accounts WHERE username_norm = ?", norm):
                raise ValueError(f"username {username!r} is taken")
            await tx.execute(
                "INSERT INTO auth_accounts (id, username, username_norm, name, email, organization_id, "
                "status, password_hash, attributes, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                account_id, username, norm, name, email, organization_id, password_hash,
                _json(attributes or {}), now, now)
            for role in sorted(set(roles)):
                await tx.execute("INSERT INTO auth_account_roles (account_id, role) VALUES (?, ?)",
                                 account_id, role)
        account = await self.get_account(account_id)
        assert account is not None
        return account

    async def get_account(self, account_id: str) -> Account | None:
        row = await self.db.fetchrow("SELECT * FROM auth_accounts WHERE id = ?", account_id)
        return None if row is None else await self._account(row)

    async def find_account(self, username: str) -> Account | None:
        row = await self.db.fetchrow("SELECT * FROM auth_accounts WHERE username_norm = ?",
                                     normalize_username(username))
        return None if row is None else await self._account(row)

    async def list_accounts(self, organization_id: str | None = None,
                            include_deleted: bool = False) -> list[Account]:
        sql = "SELECT * FROM auth_accounts WHERE 1 = 1"
        args: list[Any] = []
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        if not include_deleted:
            sql += " AND status <> 'deleted'"
        rows = await self.db.fetch(sql + " ORDER BY created_at, id", *args)
        return [await self._account(r) for r in rows]

    async def account_ids_with_status(self, status: str) -> list[str]:
        """Ids of the accounts in ``status`` (the erasure sweep looks for ``erasing`` ones)."""
        return [r["id"] for r in await self.db.fetch(
            "SELECT id FROM auth_accounts WHERE status = ? ORDER BY id", status)]

    async def _account(self, row: Row) -> Account:
        roles = frozenset(r["role"] for r in await self.db.fetch(
            "SELECT role FROM auth_account_roles WHERE account_id = ?", row["id"]))
        return Account(id=row["id"], username=row["username"], name=row["name"], email=row["email"],
                       organization_id=row["organization_id"], status=row["status"], roles=roles,
                       password_hash=row["password_hash"], failed_logins=row["failed_logins"],
                       locked_until=row["locked_until"], lock_count=row["lock_count"],
                       attributes=_load(row["attributes"]) or {}, not_before=row["not_before"],
                       created_at=row["created_at"], updated_at=row["updated_at"])

    async def update_account(self, account_id: str, **fields: Any) -> Account | None:
        """Change ``name``, ``email``, ``organization_id``, ``status``, ``password_hash``,
        ``attributes`` or ``roles``; roles and status changes void the account's tokens."""
        allowed = {"name", "email", "organization_id", "status", "password_hash", "attributes"}
        sets: list[str] = []
        args: list[Any] = []
        for key, value in fields.items():
            if key == "roles":
                continue
            if key not in allowed:
                raise ValueError(f"unknown account field {key}")
            sets.append(f"{key} = ?")
            args.append(_json(value) if key == "attributes" else value)
        now = _now()
        revoke = "roles" in fields or "status" in fields
        async with self.db.transaction() as tx:
            if not await tx.fetchrow("SELECT 1 AS x FROM auth_accounts WHERE id = ?", account_id):
                return None
            sets.append("updated_at = ?")
            args.append(now)
            if revoke:
                sets.append("not_before = ?")
                args.append(now)
            await tx.execute(f"UPDATE auth_accounts SET {', '.join(sets)} WHERE id = ?",
                             *args, account_id)
            if "roles" in fields:
                await tx.execute("DELETE FROM auth_account_roles WHERE account_id = ?", account_id)
                for role in sorted(set(fields["roles"])):
                    await tx.execute("INSERT INTO auth_account_roles (account_id, role) VALUES (?, ?)",
                                     account_id, role)
            await self._bump(tx)
        return await self.get_account(account_id)

    async def note_login_failure(self, account_id: str, now: int, *, threshold: int = 10,
                                 base_lock: int = 900, max_lock: int = 86400) -> int:
        """Count a failed password; lock after ``threshold`` in a row (15 min, doubling to 24 h).
        Returns the epoch second the account is locked until (0 = not locked)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT failed_logins, lock_count FROM auth_accounts WHERE id = ?",
                                    account_id)
            if row is None:
                return 0
            failures = row["failed_logins"] + 1
            if failures < threshold:
                await tx.execute("UPDATE auth_accounts SET failed_logins = ? WHERE id = ?",
                                 failures, account_id)
                return 0
            locks = int(row["lock_count"]) + 1
            until: int = now + min(max_lock, base_lock * 2 ** (locks - 1))
            await tx.execute("UPDATE auth_accounts SET failed_logins = 0, lock_count = ?, "
                             "locked_until = ? WHERE id = ?", locks, until, account_id)
            return until

    async def note_login_success(self, account_id: str) -> None:
        await self.db.execute("UPDATE auth_accounts SET failed_logins = 0, lock_count = 0 "
                              "WHERE id = ?", account_id)

    async def unlock_account(self, account_id: str) -> bool:
        return await self.db.execute("UPDATE auth_accounts SET failed_logins = 0, lock_count = 0, "
                                     "locked_until = 0 WHERE id = ?", account_id) > 0

    async def tombstone_account(self, account_id: str) -> bool:
        """Erase an account's personal fields and credentials; the row keeps its id (audit)."""
        now = _now()
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE auth_accounts SET status = 'deleted', username = '', username_norm = NULL, "
                "name = '', email = '', password_hash = NULL, attributes = '{}', not_before = ?, "
                "updated_at = ? WHERE id = ?", now, now, account_id)
            await tx.execute("DELETE FROM auth_account_roles WHERE account_id = ?", account_id)
            await self._bump(tx)
        return changed > 0

    # -- clients ---------------------------------------------------------------------------------
    async def create_client(self, name: str, *, organization_id: str | None = None,
                            client_id: str | None = None, auth_method: str = "client_secret_basic",
                            redirect_uris: tuple[str, ...] = (),
                            post_logout_redirect_uris: tuple[str, ...] = (),
                            grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
                            scopes: tuple[str, ...] = ("openid", "profile", "entities:read"),
                            roles: tuple[str, ...] = (), purposes: tuple[Purpose, ...] = (),
                            jwks: dict[str, Any] | None = None, trusted: bool = False,
                            valid_from: int | None = None, valid_until: int | None = None,
                            secret: str | None = None) -> tuple[Client, str | None]:
        """A new client and, for confidential secret-based ones, its secret (shown once)."""
        now = _now()
        client_id = client_id or "c-" + secrets.token_urlsafe(12)
        if auth_method in ("client_secret_basic", "client_secret_post"):
            secret = secret or secrets.token_urlsafe(32)
        else:
            secret = None
        async with self.db.transaction() as tx:
            if await tx.fetchrow("SELECT 1 AS x FROM auth_clients WHERE client_id = ?", client_id):
                raise ValueError(f"client {client_id!r} exists")
            await tx.execute(
                "INSERT INTO auth_clients (client_id, name, organization_id, secret_hash, auth_method, "
                "redirect_uris, post_logout_redirect_uris, grant_types, scopes, roles, purposes, jwks, "
                "trusted, status, valid_from, valid_until, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                client_id, name, organization_id, hash_secret(secret) if secret else None,
                auth_method, _json(list(redirect_uris)), _json(list(post_logout_redirect_uris)),
                _json(list(grant_types)), _json(list(scopes)), _json(list(roles)),
                _json([{"id": p.id, "text": p.text, "category": p.category} for p in purposes]),
                None if jwks is None else _json(jwks), int(trusted), valid_from, valid_until,
                now, now)
            await self._bump(tx)
        client = await self.get_client(client_id)
        assert client is not None
        return client, secret

    async def get_client(self, client_id: str) -> Client | None:
        row = await self.db.fetchrow("SELECT * FROM auth_clients WHERE client_id = ?", client_id)
        return None if row is None else _client(row)

    async def list_clients(self, organization_id: str | None = None) -> list[Client]:
        if organization_id is None:
            rows = await self.db.fetch("SELECT * FROM auth_clients ORDER BY client_id")
        else:
            rows = await self.db.fetch("SELECT * FROM auth_clients WHERE organization_id = ? "
                                       "ORDER BY client_id", organization_id)
        return [_client(r) for r in rows]

    async def update_client(self, client_id: str, **fields: Any) -> Client | None:
        json_fields = {"redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes",
                       "roles", "jwks"}
        plain = {"name", "organization_id", "auth_method", "trusted", "status", "valid_from",
                 "valid_until"}
        sets: list[str] = []
        args: list[Any] = []
        for key, value in fields.items():
            if key in json_fields:
                args.append(None if value is None else _json(list(value) if key != "jwks" else value))
            elif key == "purposes":
                args.append(_json([{"id": p.id, "text": p.text, "category": p.category}
                                   for p in value]))
            elif key in plain:
                args.append(int(value) if key == "trusted" else value)
            else:
                raise ValueError(f"unknown client field {key}")
            sets.append(f"{key} = ?")
        sets.append("updated_at = ?")
        args.append(_now())
        async with self.db.transaction() as tx:
            changed = await tx.execute(f"UPDATE auth_clients SET {', '.join(sets)} WHERE client_id = ?",
                                       *args, client_id)
            await self._bump(tx)
        return await self.get_client(client_id) if changed else None

    async def rotate_client_secret(self, client_id: str) -> str | None:
        secret = secrets.token_urlsafe(32)
        async with self.db.transaction() as tx:
            changed = await tx.execute("UPDATE auth_clients SET secret_hash = ?, updated_at = ? "
                                       "WHERE client_id = ? AND secret_hash IS NOT NULL",
                                       hash_secret(secret), _now(), client_id)
            await self._bump(tx)
        return secret if changed else None

    async def delete_client(self, client_id: str) -> bool:
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM auth_clients WHERE client_id = ?", client_id)
            await self._bump(tx)
        return gone > 0

    # -- roles and policies ----------------------------------------------------------------------
    async def list_roles(self) -> list[dict[str, Any]]:
        return [{"name": r["name"], "description": r["description"], "builtin": bool(r["builtin"])}
                for r in await self.db.fetch("SELECT * FROM auth_roles ORDER BY name")]

    async def create_role(self, name: str, description: str = "") -> None:
        async with self.db.transaction() as tx:
            if await tx.fetchrow("SELECT 1 AS x FROM auth_roles WHERE name = ?", name):
                raise ValueError(f"role {name!r} exists")
            await tx.execute("INSERT INTO auth_roles (name, description, builtin) VALUES (?, ?, 0)",
                             name, description)
            await self._bump(tx)

    async def delete_role(self, name: str) -> bool:
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM auth_roles WHERE name = ? AND builtin = 0", name)
            if gone:
                await tx.execute("DELETE FROM auth_policies WHERE subject_kind = 'role' "
                                 "AND subject = ?", name)
            await self._bump(tx)
        return gone > 0

    async def put_policy(self, policy: Policy) -> Policy:
        """Create or replace a policy by id."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM auth_policies WHERE id = ?", policy.id)
            await tx.execute(
                "INSERT INTO auth_policies (id, subject_kind, subject, actions, tenants, types, "
                "attributes, valid_from, valid_until, description, builtin, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                policy.id, policy.subject_kind, policy.subject, _json(list(policy.actions)),
                _json(list(policy.tenants)),
                None if policy.types is None else _json(list(policy.types)),
                None if policy.attributes is None else _json(list(policy.attributes)),
                policy.valid_from, policy.valid_until, policy.description, int(policy.builtin),
                policy.created_at or _now())
            await self._bump(tx)
        return policy

    async def get_policy(self, policy_id: str) -> Policy | None:
        row = await self.db.fetchrow("SELECT * FROM auth_policies WHERE id = ?", policy_id)
        return None if row is None else _policy(row)

    async def list_policies(self) -> list[Policy]:
        return [_policy(r) for r in await self.db.fetch("SELECT * FROM auth_policies ORDER BY id")]

    async def delete_policy(self, policy_id: str) -> bool:
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM auth_policies WHERE id = ?", policy_id)
            await self._bump(tx)
        return gone > 0


def _client(row: Row) -> Client:
    return Client(
        client_id=row["client_id"], name=row["name"], organization_id=row["organization_id"],
        auth_method=row["auth_method"], secret_hash=row["secret_hash"],
        redirect_uris=tuple(_load(row["redirect_uris"]) or ()),
        post_logout_redirect_uris=tuple(_load(row["post_logout_redirect_uris"]) or ()),
        grant_types=tuple(_load(row["grant_types"]) or ()), scopes=tuple(_load(row["scopes"]) or ()),
        roles=tuple(_load(row["roles"]) or ()),
        purposes=tuple(Purpose(p["id"], p.get("text", ""), p.get("category", "ServiceProvision"))
                       for p in _load(row["purposes"]) or ()),
        jwks=_load(row["jwks"]), trusted=bool(row["trusted"]), status=row["status"],
        valid_from=row["valid_from"], valid_until=row["valid_until"],
        created_at=row["created_at"], updated_at=row["updated_at"])


def _policy(row: Row) -> Policy:
    types = _load(row["types"])
    attributes = _load(row["attributes"])
    return Policy(id=row["id"], subject_kind=row["subject_kind"], subject=row["subject"],
                  actions=tuple(_load(row["actions"])), tenants=tuple(_load(row["tenants"])),
                  types=None if types is None else tuple(types),
                  attributes=None if attributes is None else tuple(attributes),
                  valid_from=row["valid_from"], valid_until=row["valid_until"],
                  description=row["description"], builtin=bool(row["builtin"]),
                  created_at=row["created_at"])


_READ_ONLY = ("entity.read",)
_BUILTIN_POLICIES = (
    Policy("builtin-resident", "role", "resident", ("entity.read", "consent.manage"),
           description="Residents read the city's non-personal data and manage their consents."),
    Policy("builtin-developer", "role", "developer", ("entity.read", "subscription.manage"),
           description="Developers read city data and subscribe to it."),
    Policy("builtin-operator", "role", "operator", ("*",),
           description="Operators may do everything in their home tenant."),
    Policy("builtin-auditor", "role", "auditor", ("entity.read", "audit.read"),
           description="Auditors read entities and the audit log, and change nothing."),
    Policy("builtin-data-provider", "role", "data-provider",
           ("entity.read", "entity.write", "entity.delete", "pd.manage", "device.manage",
            "import.run", "system.manage", "context.manage"),
           description="Data providers write the data they provide."),
    Policy("builtin-platform-operator", "role", "platform-operator", ("*",), tenants=("*",),
           description="Platform operators may do everything in every tenant."),
)


@asynccontextmanager
async def opened_directory(database_url: str) -> AsyncIterator[Directory]:
    """The directory of ``database_url`` with its tables and built-in roles, without starting a
    server: for preparing accounts and clients before the first start (scripts, benchmarks)."""
    db = SqlDb(database_url)
    await db.open()
    try:
        directory = Directory(db)
        await directory.create_schema()
        await directory.seed()
        yield directory
    finally:
        await db.close()
