"""The consent records' table (ISO/IEC TS 27560:2023, Kantara Consent Receipt v1.1; ADR 0012 §10).

One row per consent *given*; withdrawing or expiring changes its ``state`` and keeps the row (and
its receipt) as evidence.  The partial unique index allows one live (``given``) consent per
owner, category, processor organization and purpose; both engines support ``WHERE`` on an index.
Times are epoch seconds; ``receipt`` is the Kantara receipt as JSON text.
"""

CONSENT_STATES = ("given", "withdrawn", "expired", "refused")

CONSENT_DDL = """
CREATE TABLE IF NOT EXISTS auth_consents (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    category TEXT NOT NULL,
    processor_org TEXT NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    given_at BIGINT NOT NULL,
    expires_at BIGINT,
    withdrawn_at BIGINT,
    updated_at BIGINT NOT NULL,
    jurisdiction TEXT NOT NULL DEFAULT 'JP',
    collection_method TEXT NOT NULL DEFAULT '',
    policy_url TEXT,
    notice_version TEXT,
    receipt TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS auth_consents_live
    ON auth_consents (owner_id, category, processor_org, purpose) WHERE state = 'given';
CREATE INDEX IF NOT EXISTS auth_consents_owner ON auth_consents (owner_id, given_at);
CREATE INDEX IF NOT EXISTS auth_consents_processor
    ON auth_consents (processor_org, purpose, category) WHERE state = 'given';
"""
