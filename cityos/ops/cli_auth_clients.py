"""``cityos auth clients …`` and ``cityos auth policies …`` (see ``cli_auth.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from cityos.auth import AuthRuntime
from cityos.auth.admin import routes_clients as clients
from cityos.auth.admin import routes_policies as policies
from cityos.ops.cli_auth import CLI, AsJson, Database, clients_app, output, policies_app, with_runtime

# -- clients, policies --------------------------------------------------------------------------
CLIENT_COLUMNS = ("clientId", "name", "organization", "tokenEndpointAuthMethod", "grantTypes",
                  "status")


@clients_app.command("create")
def clients_create(
    name: str,
    org: Annotated[str | None, typer.Option("--org", help="Organization id.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Client id (default: generated).")] = None,
    auth_method: Annotated[str, typer.Option(
        help="client_secret_basic, client_secret_post or none (public).")]
    = "client_secret_basic",
    redirect_uri: Annotated[list[str] | None, typer.Option(help="Redirect URI, repeatable.")] = None,
    grant_type: Annotated[list[str] | None, typer.Option(
        help="authorization_code, refresh_token or client_credentials, repeatable. "
             "(default: authorization_code + refresh_token)")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Scope it may ask for, repeatable.")]
    = None,
    role: Annotated[list[str] | None, typer.Option(help="Role of its client-credentials tokens.")]
    = None,
    trusted: Annotated[bool, typer.Option("--trusted", help="First-party: no approval page.")]
    = False,
    valid_until: Annotated[str | None, typer.Option(
        help="End of its service period, ISO 8601 (e.g. 2027-03-31T23:59:59+09:00).")] = None,
    database: Database = None, as_json: AsJson = False,
) -> None:
    """Register a client; its secret is printed once."""
    body: dict[str, Any] = {"name": name, "organization": org, "clientId": client_id,
                            "tokenEndpointAuthMethod": auth_method,
                            "redirectUris": redirect_uri or [], "roles": role or [],
                            "trusted": trusted, "validUntil": valid_until}
    if grant_type:
        body["grantTypes"] = grant_type
    if scope:
        body["scopes"] = scope
    client, secret = with_runtime(database, lambda rt: clients.register_client(rt, body, CLI))
    output(clients.show(client, secret), as_json, (*CLIENT_COLUMNS, "clientSecret"),
           "client created (the secret is shown only now)")


@clients_app.command("list")
def clients_list(database: Database = None, as_json: AsJson = False) -> None:
    """List clients."""
    found = with_runtime(database, lambda rt: clients.visible_clients(rt, CLI))
    output([clients.show(c) for c in found], as_json, CLIENT_COLUMNS, "clients")


@clients_app.command("rotate-secret")
def clients_rotate(client_id: str, database: Database = None, as_json: AsJson = False) -> None:
    """Give a client a new secret (printed once); the old one stops working."""
    secret = with_runtime(database, lambda rt: clients.rotate_secret(rt, client_id, CLI))
    output({"clientId": client_id, "clientSecret": secret}, as_json, ("clientId", "clientSecret"),
           "new secret (shown only now)")


@clients_app.command("delete")
def clients_delete(client_id: str, database: Database = None) -> None:
    """Delete a client."""
    with_runtime(database, lambda rt: clients.delete_client(rt, client_id, CLI))
    Console().print(f"deleted {client_id}")


POLICY_COLUMNS = ("id", "subject", "actions", "tenants", "validFrom", "validUntil")


@policies_app.command("list")
def policies_list(database: Database = None, as_json: AsJson = False) -> None:
    """List policies."""
    found = with_runtime(database, lambda rt: policies.visible_policies(rt, CLI))
    docs = [policies.show(p) for p in found]
    if not as_json:
        for doc in docs:
            doc["subject"] = " ".join(f"{k}={v}" for k, v in doc["subject"].items())
    output(docs, as_json, POLICY_COLUMNS, "policies")


@policies_app.command("put")
def policies_put(file: Annotated[Path, typer.Argument(
                     help="JSON or YAML file: one policy or a list, as the admin API takes them.",
                     exists=True, dir_okay=False)],
                 database: Database = None) -> None:
    """Create or replace policies from a file."""
    data = yaml.safe_load(file.read_text(encoding="utf-8"))   # YAML is a superset of JSON
    docs = data if isinstance(data, list) else [data]
    if not all(isinstance(d, dict) for d in docs):
        raise typer.BadParameter("the file must hold a policy object or a list of them")

    async def work(rt: AuthRuntime) -> list[str]:
        parsed = [await policies.parse_policy(rt, doc) for doc in docs]
        return [(await policies.put_policy(rt, p, CLI))[0].id for p in parsed]

    for policy_id in with_runtime(database, work):
        Console().print(f"stored policy {policy_id}")


@policies_app.command("delete")
def policies_delete(policy_id: str, database: Database = None) -> None:
    """Delete a policy (built-in ones can only be changed)."""
    with_runtime(database, lambda rt: policies.delete_policy(rt, policy_id, CLI))
    Console().print(f"deleted {policy_id}")
