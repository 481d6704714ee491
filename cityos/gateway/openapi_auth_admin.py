"""``/admin/*``, ``/me*`` and ``/audit*`` in the OpenAPI document, from their route modules
(``cityos.auth.admin``, ``.consent``, ``.login``, ``cityos.security``); operation ids are the route
names, times ISO 8601, errors RFC 7807 problems (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from cityos.core.access import ACTIONS, PD_CATEGORIES

Schema = dict[str, Any]
JSON = "application/json"
PROBLEM = "application/problem+json"
STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIME = {"type": ["string", "null"], "format": "date-time"}
NAMES = {"type": "array", "items": STR}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    return {"type": "object", "properties": props,
            **({"required": list(required)} if required else {}), **extra}


def _problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("AuthProblem")}}}


def _ok(schema: Schema, description: str = "OK", example: Any = None) -> Schema:
    content: Schema = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {JSON: content}}


def _body(schema: Schema, example: Any) -> Schema:
    return {"required": True, "content": {JSON: {"schema": schema, "example": example}}}


def _op(op_id: str, tag: str, summary: str, responses: Schema, **extra: Any) -> Schema:
    errors = {"400": _problem("Bad request data (BadRequestData)"),
              "404": _problem("No such resource (ResourceNotFound)"),
              "409": _problem("Already exists, or its state forbids this")}
    wanted = extra.pop("errors", ("400",))
    return {"operationId": op_id, "tags": [tag], "summary": summary, **extra,
            "responses": {**responses, **{s: errors[s] for s in wanted}}}


def _list_of(name: str) -> Schema:
    return {"type": "array", "items": _ref(name)}


def _path_param(name: str, description: str) -> list[Schema]:
    return [{"name": name, "in": "path", "required": True, "schema": STR,
             "description": description}]


def _query(*names: str) -> list[Schema]:
    texts = {"organization": "organization id", "ownerId": "urn:cityos:account:<uuid>",
             "actor": "subject of the caller (account id or client id)", "purpose": "purpose id",
             "event": "e.g. pd.read, consent.given, auth.login", "tenant": "tenant name",
             "from": "ISO 8601 time with offset", "to": "ISO 8601 time with offset",
             "limit": "1-1000 (default 100)", "offset": "records to skip"}
    return [{"name": n, "in": "query", "required": False, "description": texts[n],
             "schema": INT if n in ("limit", "offset") else STR} for n in names]


PERIOD = {"validFrom": TIME, "validUntil": TIME}
EXAMPLE_POLICY = {"id": "dev-open-data", "subject": {"role": "developer"},
                  "actions": ["entity.read"], "tenants": ["@home"], "types": ["*"],
                  "attributes": ["*"], "validFrom": "2026-04-01T00:00:00+09:00",
                  "validUntil": "2027-04-01T00:00:00+09:00"}
EXAMPLE_CLIENT = {"clientId": "demo-app", "name": "Demo App", "organization": "demo-services",
                  "tokenEndpointAuthMethod": "client_secret_basic",
                  "redirectUris": ["http://127.0.0.1:8765/callback"],
                  "grantTypes": ["authorization_code", "refresh_token", "client_credentials"],
                  "scopes": ["openid", "profile", "entities:read", "pd:location"],
                  "roles": ["developer"],
                  "purposes": [{"id": "demo-navigation", "text": "経路案内 / route guidance"}]}


def admin_schemas() -> dict[str, Schema]:
    account = {"id": STR, "username": STR, "name": STR, "email": STR,
               "organization": {"type": ["string", "null"]},
               "status": {"type": "string", "enum": ["active", "disabled", "erasing"]},
               "roles": NAMES, "attributes": {"type": "object"},
               "lockedUntil": {"type": ["integer", "null"]}, "createdAt": INT, "updatedAt": INT}
    purpose = _obj({"id": STR, "text": STR, "category": STR}, ("id",))
    client = {"clientId": STR, "name": STR, "organization": {"type": ["string", "null"]},
              "tokenEndpointAuthMethod": {"type": "string", "enum": [
                  "client_secret_basic", "client_secret_post", "none"]},
              "redirectUris": NAMES, "postLogoutRedirectUris": NAMES,
              "grantTypes": {"type": "array", "items": {"type": "string", "enum": [
                  "authorization_code", "refresh_token", "client_credentials"]}},
              "scopes": NAMES, "roles": NAMES, "purposes": {"type": "array", "items": purpose},
              "trusted": BOOL, "status": {"type": "string", "enum": ["active", "disabled"]},
              "jwks": {"type": "object"}, **PERIOD}
    subject = _obj({k: STR for k in ("role", "account", "client", "organization")},
                   minProperties=1, maxProperties=1)
    policy = {"id": STR, "subject": subject,
              "actions": {"type": "array", "items": {"enum": [*ACTIONS, "*"]}},
              "tenants": {**NAMES, "description": "names, '@home' or '*'"},
              "types": {"type": ["array", "null"], "items": STR},
              "attributes": {"type": ["array", "null"], "items": STR}, **PERIOD,
              "description": STR}
    categories = {"type": "string", "enum": list(PD_CATEGORIES)}
    return {
        "Organization": _obj({"id": STR, "name": STR, "kind": {"type": "string", "enum": [
            "municipality", "service-provider", "data-provider", "operator", "other"]},
                              "homeTenant": STR, "createdAt": INT}, ("id", "name")),
        "Account": _obj(account, ("id", "username", "status", "roles")),
        "AccountInput": _obj({**{k: account[k] for k in ("username", "name", "email",
                                                          "organization", "roles",
                                                          "attributes")},
                              "password": {"type": "string", "minLength": 10, "maxLength": 256}},
                             ("username",)),
        "AccountChange": _obj({**{k: account[k] for k in ("name", "email", "organization",
                                                           "roles", "attributes")},
                               "status": {"type": "string", "enum": ["active", "disabled"]},
                               "password": {"type": "string", "minLength": 10}},
                              additionalProperties=False),
        "Role": _obj({"name": STR, "description": STR, "builtin": BOOL}, ("name",)),
        "Policy": _obj({**policy, "builtin": BOOL}, ("id", "subject", "actions")),
        "PolicyInput": _obj(policy, ("subject", "actions")),
        "Client": _obj({**client, "createdAt": INT,
                        "clientSecret": {"type": "string", "description": "only in the answer "
                                         "that created or rotated it"}}, ("clientId", "name")),
        "ClientInput": _obj(client, ("name",)),
        "Me": _obj({**account, "organization": {"oneOf": [_ref("Organization"),
                                                          {"type": "null"}]}}, ("id",)),
        "MeChange": _obj({"name": STR, "email": STR, "password": STR, "currentPassword": STR},
                         additionalProperties=False),
        "Sessions": _obj({"sessions": {"type": "array", "items": _obj({
            "sid": STR, "authTime": INT, "acr": STR, "amr": NAMES,
            "mfaAt": {"type": ["integer", "null"]}, "createdAt": INT, "lastSeen": INT,
            "expiresAt": INT, "current": BOOL})}}),
        "Consent": _obj({"id": STR, "ownerId": STR, "category": categories,
                         "organization": STR, "purpose": STR,
                         "state": {"type": "string", "enum": ["given", "withdrawn", "expired",
                                                              "refused"]},
                         "givenAt": TIME, "expiresAt": TIME, "withdrawnAt": TIME,
                         "updatedAt": TIME, "jurisdiction": STR, "collectionMethod": STR,
                         "policyUrl": {"type": ["string", "null"]},
                         "noticeVersion": {"type": ["string", "null"]}, "sensitive": BOOL,
                         "receipt": STR}, ("id", "category", "organization", "purpose",
                                           "state")),
        "ConsentInput": _obj({"category": categories, "organization": STR, "purpose": STR,
                              "expiresAt": {"type": "string", "format": "date-time"},
                              "durationDays": {"type": "integer", "minimum": 1,
                                               "maximum": 3650},
                              "policyUrl": STR, "noticeVersion": STR},
                             ("category", "organization", "purpose")),
        "AuditRecord": _obj({"seq": INT, "id": STR, "at": STR, "event": STR, "actorKind": STR,
                             "actor": STR, "clientId": {"type": ["string", "null"]},
                             "organization": {"type": ["string", "null"]},
                             "purpose": {"type": ["string", "null"]}, "tenant": STR,
                             "ownerId": {"type": ["string", "null"]},
                             "category": {"type": ["string", "null"]}, "targets": NAMES,
                             "requestId": {"type": ["string", "null"]}, "outcome": STR,
                             "detail": {"type": "object"}}, ("id", "at", "event")),
        "AuditReport": _obj({"events": NAMES, "timeZone": STR, "rows": {
            "type": "array", "items": _obj({"month": STR, "organization": STR, "purpose": STR,
                                             "category": STR, "records": INT, "owners": INT})}}),
    }


def _crud(base: str, key: str, label: str, names: tuple[str, str, str, str],
          schema: str, example: Any, change: tuple[str, str, str] | None = None) -> dict[str, Schema]:
    """Create/list on ``base``, get/change/delete on ``base/{key}`` (names: post, list, get, del)."""
    post, listing, get, delete = names
    item: Schema = {"parameters": _path_param(key, f"the {label}'s id"),
                    "get": _op(get, "Admin", f"Read one {label}", {"200": _ok(_ref(schema))},
                               errors=("404",)),
                    "delete": _op(delete, "Admin", f"Delete the {label}",
                                  {"204": {"description": "Deleted"}}, errors=("404", "409"))}
    if change is not None:
        method, op_id, input_schema = change
        item[method] = _op(op_id, "Admin", f"Change the {label}", {"200": _ok(_ref(schema))},
                           requestBody=_body(_ref(input_schema), {}), errors=("400", "404"))
    return {
        base: {"post": _op(post, "Admin", f"Create a {label}", {
                   "201": {**_ok(_ref(schema), "Created"),
                           "headers": {"Location": {"schema": STR}}}},
                   requestBody=_body(_ref(schema + "Input") if schema != "Organization"
                                     else _ref(schema), example), errors=("400", "409")),
               "get": _op(listing, "Admin", f"List {label}s", {"200": _ok(_list_of(schema))},
                          parameters=_query("organization") if schema != "Organization" else [])},
        f"{base}/{{{key}}}": item,
    }


def admin_paths() -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    paths.update(_crud("/admin/organizations", "org_id", "organization",
                       ("post_org", "list_orgs", "get_org", "delete_org"), "Organization",
                       {"id": "kobe-city", "name": "Kobe City", "kind": "municipality",
                        "homeTenant": ""}))
    paths.update(_crud("/admin/accounts", "account_id", "account",
                       ("post_account", "list_accounts", "get_account", "delete_account_route"),
                       "Account", {"username": "tanaka", "name": "田中 花子",
                                   "organization": "kobe-city", "roles": ["operator"],
                                   "password": "a long passphrase"},
                       ("patch", "patch_account", "AccountChange")))
    paths["/admin/accounts/{account_id}"]["delete"]["summary"] = "Erase, with its personal data"
    paths["/admin/accounts/{account_id}/unlock"] = {
        "parameters": _path_param("account_id", "the account's id"),
        "post": _op("post_unlock", "Admin", "End a password lockout", {"200": _ok(_ref("Account"))},
                    errors=("404",))}
    paths.update(_crud("/admin/policies", "policy_id", "policy",
                       ("post_policy", "list_policies", "get_policy", "delete_policy_route"),
                       "Policy", EXAMPLE_POLICY, ("put", "put_policy_route", "PolicyInput")))
    paths["/admin/policies/{policy_id}"]["put"]["responses"]["201"] = _ok(_ref("Policy"), "Created")
    paths.update(_crud("/admin/clients", "client_id", "client",
                       ("post_client", "list_clients", "get_client", "delete_client_route"),
                       "Client", EXAMPLE_CLIENT, ("patch", "patch_client", "ClientInput")))
    paths["/admin/clients/{client_id}/secret"] = {
        "parameters": _path_param("client_id", "the client's id"),
        "post": _op("post_secret", "Admin", "Rotate the client secret (shown once)", {
            "200": _ok(_obj({"clientId": STR, "clientSecret": STR}))}, errors=("404", "409"))}
    paths["/admin/roles"] = {
        "get": _op("list_roles", "Admin", "List roles", {"200": _ok(_list_of("Role"))}),
        "post": _op("post_role", "Admin", "Create a role (platform operators)",
                    {"201": _ok(_ref("Role"), "Created")},
                    requestBody=_body(_ref("Role"), {"name": "bus-operator",
                                                     "description": "Runs the city buses"}),
                    errors=("400", "409"))}
    paths["/admin/roles/{name}"] = {
        "parameters": _path_param("name", "the role's name"),
        "delete": _op("delete_role", "Admin", "Delete a role and its policies",
                      {"204": {"description": "Deleted"}}, errors=("404", "409"))}
    paths.update(_me_paths())
    paths.update(_audit_paths())
    return paths


def _me_paths() -> dict[str, Schema]:
    consent_id = _path_param("consent_id", "the consent's id")
    html = {"description": "HTML page", "content": {"text/html": {"schema": STR}}}
    return {
        "/me": {"get": _op("get_me", "Me", "My account", {"200": _ok(_ref("Me"))}, errors=()),
                "patch": _op("patch_me", "Me", "Change my name, e-mail or password",
                             {"200": _ok(_ref("Me"))}, requestBody=_body(_ref("MeChange"), {
                                 "password": "a new long passphrase",
                                 "currentPassword": "the old one"}))},
        "/me/sessions": {
            "get": _op("my_sessions", "Me", "My sign-in sessions", {"200": _ok(_ref("Sessions"))},
                       errors=()),
            "delete": _op("my_sessions_delete", "Me", "Sign out everywhere (every session and "
                          "token)", {"204": {"description": "Signed out"}}, errors=())},
        "/me/consents": {
            "get": _op("list_consents", "Me", "My consents (needs scope consent)",
                       {"200": _ok(_list_of("Consent"))}, errors=()),
            "post": _op("give_consent", "Me", "Give consent to a purpose of a service provider",
                        {"201": {**_ok(_ref("Consent"), "Given"),
                                 "headers": {"Location": {"schema": STR}}}},
                        requestBody=_body(_ref("ConsentInput"), {
                            "category": "location", "organization": "demo-services",
                            "purpose": "demo-navigation", "durationDays": 365}))},
        "/me/consents/page": {"get": _op("consent_page", "Me", "My consents as a page (ja/en)",
                                         {"200": html}, errors=())},
        "/me/consents/{consent_id}": {
            "parameters": consent_id,
            "get": _op("get_consent", "Me", "One of my consents", {"200": _ok(_ref("Consent"))},
                       errors=("404",)),
            "delete": _op("delete_consent", "Me", "Withdraw (the record stays as evidence)",
                          {"204": {"description": "Withdrawn"}}, errors=("404",))},
        "/me/consents/{consent_id}/withdraw": {
            "parameters": consent_id,
            "post": _op("withdraw_form", "Me", "Withdraw from the consent page",
                        {"303": {"description": "Back to /me/consents/page"}}, errors=("404",))},
        "/me/consents/{consent_id}/receipt": {
            "parameters": consent_id,
            "get": _op("consent_receipt", "Me", "Kantara Consent Receipt v1.1", {"200": {
                "description": "A signed JWT (`application/jwt`), or JSON with "
                               "`Accept: application/json`",
                "content": {"application/jwt": {"schema": STR},
                            JSON: {"schema": {"type": "object"}}}}}, errors=("404",))},
        "/me/audit": {"get": _op("my_audit", "Me", "Who used my personal data, for what, when",
                                 {"200": _ok(_list_of("AuditRecord"))},
                                 parameters=_query("from", "to", "limit", "offset"))},
    }


def _audit_paths() -> dict[str, Schema]:
    filters = _query("ownerId", "actor", "organization", "purpose", "event", "tenant", "from",
                     "to")
    return {
        "/audit": {"get": _op("search_audit", "Audit", "Search the audit log (auditors)", {
            "200": {**_ok(_list_of("AuditRecord")),
                    "headers": {"Link": {"description": 'rel="next" page', "schema": STR}}}},
            parameters=[*filters, *_query("limit", "offset")])},
        "/audit/report": {"get": _op(
            "audit_report", "Audit", "Provisions per processor, purpose, category and month", {
                "200": {"description": "JSON, or CSV with `Accept: text/csv`", "content": {
                    JSON: {"schema": _ref("AuditReport")}, "text/csv": {"schema": STR}}}},
            parameters=filters)},
    }
