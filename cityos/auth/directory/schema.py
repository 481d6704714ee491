"""Tables of the directory: organizations, accounts, roles, policies and OAuth clients.

Portable SQL for both engines (``core/sqldb.py``): times are integer epoch seconds, lists and
objects are JSON in ``TEXT`` columns, flags are ``INTEGER`` 0/1.
"""

DIRECTORY_DDL = """
CREATE TABLE IF NOT EXISTS auth_organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    home_tenant TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_norm TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    organization_id TEXT,
    status TEXT NOT NULL,
    password_hash TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    lock_count INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL DEFAULT '{}',
    not_before BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_accounts_org ON auth_accounts (organization_id);
CREATE TABLE IF NOT EXISTS auth_account_roles (
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (account_id, role)
);
CREATE INDEX IF NOT EXISTS auth_account_roles_role ON auth_account_roles (role);
CREATE TABLE IF NOT EXISTS auth_roles (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    builtin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_policies (
    id TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    actions TEXT NOT NULL,
    tenants TEXT NOT NULL,
    types TEXT,
    attributes TEXT,
    valid_from BIGINT,
    valid_until BIGINT,
    description TEXT NOT NULL DEFAULT '',
    builtin INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    organization_id TEXT,
    secret_hash TEXT,
    auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    scopes TEXT NOT NULL DEFAULT '[]',
    roles TEXT NOT NULL DEFAULT '[]',
    purposes TEXT NOT NULL DEFAULT '[]',
    jwks TEXT,
    trusted INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    valid_from BIGINT,
    valid_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_clients_org ON auth_clients (organization_id);
CREATE TABLE IF NOT EXISTS auth_config_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO auth_config_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""
