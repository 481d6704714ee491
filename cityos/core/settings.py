"""Every setting of CityOS, declared in one place with its default and its meaning.

A setting is read, in order of precedence, from a keyword given to :meth:`Settings.load` (the CLI
passes its flags this way), from the environment variable ``CITYOS_<NAME>`` (upper case), and
finally from the default below.  ``cityos settings`` prints the table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of one CityOS process."""

    database_url: str = _setting(
        "sqlite:///cityos-data/cityos.db",
        "Storage: sqlite:///path.db (embedded default), sqlite:// (in memory) or "
        "postgresql://user@host:port/db.")
    host: str = _setting("127.0.0.1", "Address the HTTP server listens on.")
    port: int = _setting(8080, "Port the HTTP server listens on.")
    demo: bool = _setting(False, "Load the demo city (Kobe) into an empty database at start-up.")
    default_page_size: int = _setting(20, "Entities per page when a query gives no limit.")
    max_page_size: int = _setting(1000, "Largest limit a query may ask for (else 403 TooManyResults).")
    max_batch_size: int = _setting(
        1000, "Most entities in one /entityOperations request (else 400 BadRequestData).")
    max_body_bytes: int = _setting(8 * 1024 * 1024, "Largest request body accepted (else 413).")
    context_fetch_timeout: float = _setting(5.0, "Seconds to wait for a remote @context.")
    context_fetch_enabled: bool = _setting(
        True, "Fetch @context URLs named by callers. Off: only the core, stored and preloaded ones.")
    context_cache_ttl: float = _setting(3600.0, "Seconds a fetched remote @context stays cached.")
    v2_context: str = _setting(
        "", "NGSI v2 face (/v2): comma-separated @context URLs (hosted /ngsi-ld/v1/jsonldContexts/"
        "... paths, preloaded or fetchable URLs) through which v2 type, attribute and metadata "
        "names expand and compact, in order, the core context last; resolved once at start-up "
        "(one that cannot be resolved stops start-up). Empty: the core context alone, except "
        "with --demo, where the demo's hosted context (kobe-demo) is used so /v2 shows the demo "
        "city's short names.")
    sqlite_synchronous: str = _setting(
        "FULL", "SQLite synchronous pragma: FULL makes every acknowledged write durable.")
    pg_pool_min: int = _setting(2, "PostgreSQL: connections opened at start-up.")
    pg_pool_max: int = _setting(10, "PostgreSQL: most connections in the pool.")
    pg_self_vacuum: str = _setting(
        "auto", "PostgreSQL: vacuum and analyze CityOS's tables itself, by autovacuum's "
        "thresholds, checked every 5 s. auto: only when the server's autovacuum is off (dead "
        "rows of attribute updates would otherwise slow every write down by the minute); on; off.")
    history_enabled: bool = _setting(
        True, "Keep the temporal history of every attribute change (/temporal/entities).")
    history_retention: str = _setting(
        "", "History kept per entity type, e.g. 'WeatherObserved=P30D,*=P5Y' (ISO 8601 durations;"
        " '*' for every other type). Empty: keep everything.")
    gc_young_threshold: int = _setting(
        20_000, "Allocations between collections of the garbage collector's young generation "
        "(Python's default is 700, which promoted short-lived objects and caused full "
        "collections of 50-100 ms under load; ADR 0014). 0 keeps Python's default.")
    notification_timeout: float = _setting(5.0, "Seconds one notification attempt may take.")
    notification_retries: int = _setting(
        6, "Attempts after the first before a notification is given up (and counted as failed).")
    notification_backoff: float = _setting(
        0.5, "Seconds before the first retry; doubles with every further attempt (capped at 60).")
    notification_linger: float = _setting(
        0.01, "Seconds a subscription that has just been notified waits before its next "
        "notification, so changes arriving meanwhile go out together (fewer, larger requests).")
    notification_send_rate: float = _setting(
        3000.0, "Notification requests per second the notifier aims at in total: each "
        "subscription with changes waiting holds them at least (busy subscriptions / this rate) "
        "seconds after its last notification, so fan-out to many subscriptions goes out in "
        "fewer, larger requests. Below that the linger applies.")
    notification_failing_backlog: int = _setting(
        10_000, "Changes a failing subscription (its last notification given up) keeps queued "
        "while its receiver is down; older ones are given up and counted. Bounds the memory "
        "and outbox rows a dead receiver holds (the soak measured about 2.5 KB of heap per change).")
    notifier: str = _setting(
        "inline", "Where notifications are rendered and sent: inline (in the server process) or "
        "process (a dispatcher process of its own, started and restarted by the server, so "
        "fan-out to many subscriptions uses the machine's other core; needs a database file or "
        "PostgreSQL; ADR 0017).")
    notification_ca_file: str = _setting(
        "", "PEM file of extra certificate authorities trusted for https:// notification "
        "endpoints (e.g. the city's own CA), besides the system's.")
    notification_allow: str = _setting(
        "", "Comma-separated hosts or CIDR networks notifications may always go to "
        "(e.g. '127.0.0.1,10.1.0.0/16,receiver.example.jp').")
    notification_deny: str = _setting(
        "private", "Comma-separated hosts or CIDR networks notifications must not go to; "
        "'private' = loopback, link-local, private and reserved ranges. The allow list wins.")
    systems_poll_interval: float = _setting(
        5.0, "Seconds between checks for external systems (/assets/v1/systems) due to be pulled; "
        "0 switches the scheduler off. Outgoing pulls obey CITYOS_NOTIFICATION_ALLOW / _DENY.")
    federation_timeout: float = _setting(
        3.0, "Seconds a request forwarded to a registered context source may take before it is "
        "given up (the answer then carries an NGSILD-Warning).")
    federation_max_answer_bytes: int = _setting(
        32 * 1024 * 1024, "Largest answer (bytes) read from a registered context source; a larger "
        "one is cut off and the source counts as failed (NGSILD-Warning 111).")
    federation_id: str = _setting(
        "", "This broker's name in Via headers of forwarded requests (loop detection). "
        "Empty: cityos-<host>-<port>.")
    iot_mqtt_url: str = _setting(
        "", "IoT agent: MQTT broker for device messages, e.g. mqtt://127.0.0.1:1883. Empty "
        "(the embedded default): the agent takes HTTP only (/iot/json, /iot/d).")
    iot_mqtt_client_id: str = _setting(
        "cityos-iot-agent", "IoT agent: fixed MQTT client id of its persistent session (one per "
        "node: messages published while the node is down wait for it under this id).")
    iot_batch_size: int = _setting(
        500, "IoT agent: most measurements written in one store transaction "
        "(capped by CITYOS_MAX_BATCH_SIZE).")
    iot_offline_factor: float = _setting(
        3.0, "IoT agent: a device with an expected_interval that sends nothing for this many "
        "intervals is marked deviceState=offline.")
    iot_command_timeout: float = _setting(
        30.0, "IoT agent: seconds a device has to report a command's result before its status "
        "becomes EXPIRED.")
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    insecure_no_auth: bool = _setting(
        False, "DEVELOPMENT ONLY: switch off authentication and access control (every caller may "
        "do everything; start-up logs a warning and /health says auth=disabled). Refused with a "
        "non-loopback --host unless CITYOS_INSECURE_ALLOW_REMOTE is also set.")
    insecure_allow_remote: bool = _setting(
        False, "Allow CITYOS_INSECURE_NO_AUTH on a non-loopback address (never in production).")
    public_url: str = _setting(
        "", "The URL callers reach this CityOS at (OAuth issuer, redirect and cookie origin), e.g. "
        "https://cityos.example.lg.jp. Empty: http://<host>:<port>.")
    secret_key_file: str = _setting(
        "", "File of 32 random bytes keying encrypted secrets (signing keys, TOTP) and CSRF "
        "tokens; created 0600 at first start. Every node of a cluster must share it. Empty: "
        "<directory of the SQLite database>/secret.key (cityos-data/secret.key).")
    auth_access_ttl: int = _setting(300, "Seconds an access token is valid.")
    auth_grant_ttl: int = _setting(
        30 * 86400, "Seconds a refresh-token family (one login of one application) lives at most.")
    auth_key_rotation: int = _setting(
        30 * 86400, "Seconds between signing-key rotations (the next key is published 2 days "
        "before it signs).")
    auth_pd_max_age: int = _setting(
        12 * 3600, "Seconds after a multi-factor login within which tokens may carry personal-data "
        "(pd:*) scopes; older logins must step up.")
    auth_self_registration: bool = _setting(
        False, "Let residents create their own accounts at /auth/register (off: operators "
        "create accounts).")
    password_hash: str = _setting(
        "t=3,m=65536,p=4", "argon2id cost: time cost t, memory m (KiB), parallelism p.")
    audit_retention: str = _setting(
        "P3Y", "How long audit records are kept (ISO 8601 duration).")

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from keywords, then ``CITYOS_*`` environment variables, then defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if overrides.get(f.name) is not None:
                values[f.name] = overrides[f.name]
                continue
            raw = os.environ.get(f"CITYOS_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _convert(raw, f.default, f.name)
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(environment variable, default, meaning) for every setting, for docs and the CLI."""
        return [(f"CITYOS_{f.name.upper()}", repr(f.default), f.metadata["doc"]) for f in fields(cls)]


def _convert(raw: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"CITYOS_{name.upper()} must be true or false, got {raw!r}")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
