"""What every admin route shares: who is calling, what they may manage, bodies and times.

Scoping (ADR 0012 §8, ADR 0013): a ``platform-operator`` manages everything; an ``operator``
manages the accounts, clients and policies of the organizations whose home tenant is its own; no
caller may hand out a role or policy that allows more than its own policies allow it.  In
``CITYOS_INSECURE_NO_AUTH`` mode there is no :class:`Access` and the caller counts as a platform
operator, as does the local CLI (a trusted internal caller).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from cityos.auth.directory import Account, Organization, Policy
from cityos.auth.runtime import AuthRuntime
from cityos.core.access import ACTIONS, AuditRecord, Principal, current_access
from cityos.core.instants import aware_instant
from cityos.core.problems import BadRequestData, Forbidden, PayloadTooLarge

log = logging.getLogger("cityos.auth.admin")
MAX_BODY = 256 * 1024
PLATFORM_ROLE = "platform-operator"
OPERATOR_ROLE = "operator"
TENANT_NAME = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")



@dataclass(frozen=True)
class Caller:
    """The principal behind an admin request; ``principal`` None = trusted (insecure mode, CLI)."""

    principal: Principal | None

    @property
    def platform(self) -> bool:
        p = self.principal
        return p is None or p.kind == "system" or PLATFORM_ROLE in p.roles

    @property
    def operator(self) -> bool:
        return self.principal is not None and OPERATOR_ROLE in self.principal.roles

    @property
    def home_tenant(self) -> str:
        return "" if self.principal is None else self.principal.home_tenant

    @property
    def subject(self) -> str:
        return "insecure-dev" if self.principal is None else self.principal.subject

    @property
    def kind(self) -> str:
        return "system" if self.principal is None else self.principal.kind


TRUSTED = Caller(None)


def admin_caller() -> Caller:
    """The caller of an admin request: 403 unless it is a platform operator or an operator."""
    access = current_access()
    caller = Caller(None if access is None else access.principal)
    if not (caller.platform or caller.operator):
        raise Forbidden("the admin API needs the operator or platform-operator role")
    return caller


def require_platform(caller: Caller, what: str) -> None:
    if not caller.platform:
        raise Forbidden(f"only a platform operator may {what}")


def runtime_of(request: Request) -> AuthRuntime:
    runtime: AuthRuntime = request.app.state.auth
    return runtime


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (400 when it is not one, 413 when too large)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestData(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequestData("the body must be a JSON object")
    return data


# -- scope --------------------------------------------------------------------------------------
async def org_in_scope(runtime: AuthRuntime, caller: Caller, org_id: str | None) -> bool:
    """Whether ``caller`` manages what belongs to organization ``org_id``."""
    if caller.platform:
        return True
    if org_id is None:
        return False          # organization-less accounts and clients are the platform's
    org = await runtime.directory.get_organization(org_id)
    return org is not None and org.home_tenant == caller.home_tenant


async def require_org(runtime: AuthRuntime, caller: Caller, org_id: str | None) -> Organization | None:
    """The organization ``org_id`` (400 when unknown), 403 unless ``caller`` manages it."""
    org = None
    if org_id is not None:
        org = await runtime.directory.get_organization(org_id)
        if org is None:
            raise BadRequestData(f"no organization {org_id!r}")
    if not await org_in_scope(runtime, caller, org_id):
        raise Forbidden(f"organization {org_id!r} is outside your home tenant")
    return org


async def home_tenant_of(runtime: AuthRuntime, org_id: str | None) -> str:
    org = None if org_id is None else await runtime.directory.get_organization(org_id)
    return "" if org is None else org.home_tenant


async def require_grantable(runtime: AuthRuntime, caller: Caller, roles: set[str] | frozenset[str],
                            home_tenant: str) -> None:
    """400 for unknown roles; 403 when a role's policies allow more than ``caller`` holds."""
    known = {r["name"] for r in await runtime.directory.list_roles()}
    unknown = sorted(set(roles) - known)
    if unknown:
        raise BadRequestData(f"unknown roles {unknown}")
    if caller.platform:
        return
    await runtime.evaluator.refresh(force=True)
    for policy in await runtime.directory.list_policies():
        if (policy.subject_kind == "role" and policy.subject in roles
                and not covers(runtime, caller, policy, home_tenant)):
            raise Forbidden(f"role {policy.subject!r} allows more than you hold "
                                f"(policy {policy.id!r})")


def covers(runtime: AuthRuntime, caller: Caller, policy: Policy, home_tenant: str) -> bool:
    """Whether ``caller``'s own policies allow every action of ``policy`` in each of its tenants
    (``@home`` = ``home_tenant``, the home tenant of whoever the policy is for)."""
    if caller.platform or caller.principal is None:
        return True
    actions = ACTIONS if "*" in policy.actions else policy.actions
    tenants = [home_tenant if t == "@home" else t for t in policy.tenants]
    return all(runtime.evaluator.allows(caller.principal, action, tenant)
               for action in actions for tenant in tenants)


async def require_own_policies_covered(runtime: AuthRuntime, caller: Caller, kind: str,
                                       subject: str, home_tenant: str) -> None:
    """403 when a policy written for this very account or client allows more than ``caller``."""
    if caller.platform:
        return
    await runtime.evaluator.refresh(force=True)
    for policy in await runtime.directory.list_policies():
        if (policy.subject_kind == kind and policy.subject == subject
                and not covers(runtime, caller, policy, home_tenant)):
            raise Forbidden(f"that {kind} holds policy {policy.id!r}, broader than yours")


async def require_account_manageable(runtime: AuthRuntime, caller: Caller, account: Account) -> None:
    """403 unless the account is in ``caller``'s scope and holds no role or policy broader than
    ``caller``'s: an operator must not take over a platform operator's account by resetting its
    password."""
    if not await org_in_scope(runtime, caller, account.organization_id):
        raise Forbidden("that account is outside your home tenant")
    home = await home_tenant_of(runtime, account.organization_id)
    known = {r["name"] for r in await runtime.directory.list_roles()}
    await require_grantable(runtime, caller, account.roles & known, home)
    await require_own_policies_covered(runtime, caller, "account", account.id, home)


# -- values -------------------------------------------------------------------------------------
def parse_time(value: Any, field: str) -> int | None:
    """ISO 8601 with an offset (``2026-04-01T00:00:00+09:00``) or epoch seconds -> epoch seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequestData(f"{field} must be an ISO 8601 time or epoch seconds")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, datetime):            # YAML files hold unquoted times as datetimes
        value = value.isoformat()
    if isinstance(value, str):
        return int(aware_instant(value, field).timestamp())
    raise BadRequestData(f"{field} must be an ISO 8601 time or epoch seconds")


def period(body: dict[str, Any]) -> tuple[int | None, int | None]:
    start = parse_time(body.get("validFrom"), "validFrom")
    end = parse_time(body.get("validUntil"), "validUntil")
    if start is not None and end is not None and end <= start:
        raise BadRequestData("validUntil must be later than validFrom")
    return start, end


def iso(epoch: int | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-03-31T15:00:00Z``)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text(body: dict[str, Any], field: str, *, default: str | None = None, max_len: int = 256,
         required: bool = False) -> str:
    value = body.get(field, default)
    if value is None:
        if required:
            raise BadRequestData(f"{field} is required")
        return ""
    if not isinstance(value, str) or len(value) > max_len or (required and not value.strip()):
        raise BadRequestData(f"{field} must be a non-empty string of at most {max_len} characters"
                             if required else f"{field} must be a string of at most {max_len} "
                             "characters")
    return value


def strings(body: dict[str, Any], field: str, default: list[str] | None = None) -> list[str]:
    value = body.get(field, default if default is not None else [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadRequestData(f"{field} must be a list of non-empty strings")
    return list(dict.fromkeys(value))


def tenant_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not TENANT_NAME.match(value):
        raise BadRequestData(f"{field} must be a tenant name (letters, digits, _ - .)")
    return value


# -- audit --------------------------------------------------------------------------------------
async def audit(runtime: AuthRuntime, caller: Caller, event: str, target: str,
                **detail: Any) -> None:
    """Record an admin change (ADR 0012 §11: ``account.*``, ``policy.*``, ``client.*``)."""
    if runtime.audit is None:
        return
    access = current_access()
    record = AuditRecord(event=event, actor_kind=caller.kind, actor_sub=caller.subject,
                         tenant=caller.home_tenant, targets=(target,), detail=detail,
                         client_id=None if caller.principal is None else caller.principal.client_id,
                         request_id=None if access is None else access.request_id)
    try:
        await runtime.audit.append([record])
    except Exception:  # the change is committed; a lost audit row must not turn it into a 500
        log.exception("could not audit %s of %s", event, target)
