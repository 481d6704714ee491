"""``cityos auth …``: accounts, organizations, OAuth clients, policies and roles (AU-UM-1..3).

The commands work on the database directly (``--database``, default from the settings), with the
same validation as the admin API (``cityos/auth/admin``), acting as the trusted local system
``cli``: whoever can open the database administers it.  ``accounts delete`` starts the whole app
in-process, so every erasure hook runs (the data block deletes the account's personal data).
Passwords are read from a hidden prompt, or from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cityos.auth import AuthRuntime, build_auth
from cityos.auth.admin import Caller, ErasureSweep
from cityos.auth.admin import routes_accounts as accounts
from cityos.auth.admin import routes_orgs as orgs
from cityos.auth.directory import Account
from cityos.core.access import Principal
from cityos.core.problems import Problem, ResourceNotFound
from cityos.core.settings import Settings

T = TypeVar("T")
CLI = Caller(Principal.system("cli"))
auth_app = typer.Typer(help="Accounts, organizations, OAuth clients, policies and roles, on the "
                            "local database.", no_args_is_help=True)
accounts_app = typer.Typer(help="User accounts: create, change, lock out, erase.",
                           no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations (municipalities, service and data providers).",
                       no_args_is_help=True)
clients_app = typer.Typer(help="OAuth 2.0 / OpenID Connect clients (applications).",
                          no_args_is_help=True)
policies_app = typer.Typer(help="Access policies (allow-only).", no_args_is_help=True)
roles_app = typer.Typer(help="Roles.", no_args_is_help=True)
for _sub, _name in ((accounts_app, "accounts"), (orgs_app, "orgs"), (clients_app, "clients"),
                    (policies_app, "policies"), (roles_app, "roles")):
    auth_app.add_typer(_sub, name=_name)

Database = Annotated[str | None, typer.Option(
    help="Database URL (sqlite:///path.db or postgresql://…); default: CITYOS_DATABASE_URL.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]


def with_runtime(database: str | None, work: Callable[[AuthRuntime], Awaitable[T]]) -> T:
    """Run ``work`` on a started auth runtime; a problem is printed and exits with code 1."""
    async def go() -> T:
        runtime = build_auth(Settings.load(database_url=database))
        # no sweep here: this runtime lacks the data block's erasure hook (the server finishes)
        runtime.parts = [p for p in runtime.parts if not isinstance(p, ErasureSweep)]
        await runtime.start()
        try:
            return await work(runtime)
        finally:
            await runtime.stop()

    try:
        return asyncio.run(go())
    except Problem as problem:
        Console(stderr=True).print(f"[red]{problem.status}[/] {problem.detail}")
        raise typer.Exit(1) from None


def output(data: Any, as_json: bool, columns: tuple[str, ...], title: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title)
    for i, column in enumerate(columns):
        # the first column is the id people copy: never cut it, let the others fold instead
        table.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else
                        ", ".join(map(str, row[c])) if isinstance(row[c], list) else str(row[c])
                        for c in columns))
    Console().print(table)


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


async def _account(runtime: AuthRuntime, ref: str) -> Account:
    """An account by id or username."""
    account = await runtime.directory.get_account(ref) or await runtime.directory.find_account(ref)
    if account is None or account.status == "deleted":
        raise ResourceNotFound(f"no account {ref!r}")
    return account


ACCOUNT_COLUMNS = ("id", "username", "name", "organization", "roles", "status")


# -- accounts -----------------------------------------------------------------------------------
@accounts_app.command("create")
def accounts_create(
    username: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    org: Annotated[str | None, typer.Option("--org", help="Organization id.")] = None,
    role: Annotated[list[str] | None, typer.Option(
        "--role", "-r", help="Role, repeatable. (default: resident)")] = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="Create without a password (no login until one is set).")] = False,
    database: Database = None, as_json: AsJson = False,
) -> None:
    """Create an account; the password is prompted for (hidden) unless --password-stdin."""
    body: dict[str, Any] = {"username": username, "name": name, "email": email,
                            "organization": org, "roles": role or ["resident"]}
    if not no_password:
        body["password"] = _password(password_stdin)
    account = with_runtime(database, lambda rt: accounts.register_account(rt, body, CLI))
    output(account.public(), as_json, ACCOUNT_COLUMNS, "account created")


@accounts_app.command("list")
def accounts_list(org: Annotated[str | None, typer.Option("--org", help="Only this organization.")]
                  = None, database: Database = None, as_json: AsJson = False) -> None:
    """List accounts (erased ones are not shown)."""
    found = with_runtime(database, lambda rt: accounts.visible_accounts(rt, CLI, org))
    output([a.public() for a in found], as_json, ACCOUNT_COLUMNS, "accounts")


@accounts_app.command("show")
def accounts_show(account: Annotated[str, typer.Argument(help="Account id or username.")],
                  database: Database = None, as_json: AsJson = False) -> None:
    """Show one account."""
    found = with_runtime(database, lambda rt: _account(rt, account))
    output(found.public(), as_json, (*ACCOUNT_COLUMNS, "email", "lockedUntil"), "account")


def _change(database: str | None, ref: str, body: dict[str, Any]) -> Account:
    async def work(rt: AuthRuntime) -> Account:
        return await accounts.change_account(rt, (await _account(rt, ref)).id, body, CLI)
    return with_runtime(database, work)


@accounts_app.command("disable")
def accounts_disable(account: Annotated[str, typer.Argument(help="Account id or username.")],
                     database: Database = None) -> None:
    """Disable an account: no login, its tokens stop working."""
    _change(database, account, {"status": "disabled"})
    Console().print(f"disabled {account}")


@accounts_app.command("enable")
def accounts_enable(account: Annotated[str, typer.Argument(help="Account id or username.")],
                    database: Database = None) -> None:
    """Enable a disabled account again."""
    _change(database, account, {"status": "active"})
    Console().print(f"enabled {account}")


@accounts_app.command("set-password")
def accounts_set_password(account: Annotated[str, typer.Argument(help="Account id or username.")],
                          password_stdin: PasswordStdin = False, database: Database = None) -> None:
    """Set an account's password (10 to 256 characters)."""
    _change(database, account, {"password": _password(password_stdin)})
    Console().print(f"password of {account} set")


@accounts_app.command("unlock")
def accounts_unlock(account: Annotated[str, typer.Argument(help="Account id or username.")],
                    database: Database = None) -> None:
    """End a lockout after too many failed logins."""
    async def work(rt: AuthRuntime) -> Account:
        return await accounts.unlock_account(rt, (await _account(rt, account)).id, CLI)
    with_runtime(database, work)
    Console().print(f"unlocked {account}")


@accounts_app.command("delete")
def accounts_delete(account: Annotated[str, typer.Argument(help="Account id or username.")],
                    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
                    database: Database = None) -> None:
    """Erase an account and its personal data (consents withdrawn, entities deleted)."""
    if not yes:
        typer.confirm(f"Erase {account} and all of its personal data?", abort=True)

    async def go() -> None:
        from cityos.app import create_app  # late: the whole app, for every erasure hook

        # the identity block must be on to erase an identity, whatever the environment says
        app = create_app(Settings.load(database_url=database, systems_poll_interval=0.0,
                                       insecure_no_auth=False))
        async with app.router.lifespan_context(app):
            runtime: AuthRuntime = app.state.auth
            await accounts.delete_account(runtime, (await _account(runtime, account)).id, CLI)

    try:
        asyncio.run(go())
    except Problem as problem:
        Console(stderr=True).print(f"[red]{problem.status}[/] {problem.detail}")
        raise typer.Exit(1) from None
    Console().print(f"erased {account}")


# -- organizations, roles -----------------------------------------------------------------------
ORG_COLUMNS = ("id", "name", "kind", "homeTenant")


@orgs_app.command("create")
def orgs_create(org_id: Annotated[str, typer.Argument(help="Slug id, e.g. kobe-city.")],
                name: Annotated[str, typer.Option(help="Display name (unique).")],
                kind: Annotated[str, typer.Option(
                    help="municipality, service-provider, data-provider, operator or other.")]
                = "other",
                home_tenant: Annotated[str, typer.Option(help="Its home tenant ('' = default).")]
                = "",
                database: Database = None, as_json: AsJson = False) -> None:
    """Create an organization."""
    body = {"id": org_id, "name": name, "kind": kind, "homeTenant": home_tenant}
    org = with_runtime(database, lambda rt: orgs.create_organization(rt, body, CLI))
    output(org.public(), as_json, ORG_COLUMNS, "organization created")


@orgs_app.command("list")
def orgs_list(database: Database = None, as_json: AsJson = False) -> None:
    """List organizations."""
    found = with_runtime(database, lambda rt: orgs.visible_organizations(rt, CLI))
    output([o.public() for o in found], as_json, ORG_COLUMNS, "organizations")


@roles_app.command("list")
def roles_list(database: Database = None, as_json: AsJson = False) -> None:
    """List roles."""
    found = with_runtime(database, lambda rt: rt.directory.list_roles())
    output(found, as_json, ("name", "builtin", "description"), "roles")


@auth_app.command("rotate-keys")
def rotate_keys(database: Database = None) -> None:
    """Rotate the signing key now (e.g. after a suspected leak): a new key signs from now on;
    the old one stays published at /auth/jwks.json, so tokens it signed stay valid until they
    expire. Verifiers that cache the JWKS must refetch it on an unknown key id."""
    kid = with_runtime(database, lambda rt: rt.tokens.rotate_now())
    Console().print(f"new signing key {kid}")


def register(app: typer.Typer) -> None:
    """Add ``cityos auth`` to the ``cityos`` command."""
    from cityos.ops import cli_auth_clients  # noqa: F401  (adds the clients and policies commands)

    app.add_typer(auth_app, name="auth")
