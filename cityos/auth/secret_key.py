"""The installation's secret key: 32 random bytes that key every encrypted or MACed auth secret.

Signing keys (``auth/keys.py``), TOTP secrets and CSRF tokens are protected by keys derived from
this one with HKDF (RFC 5869), one ``info`` label per use, so a key never serves two purposes.
Every node of a PostgreSQL cluster must share the file (``CITYOS_SECRET_KEY_FILE``).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cityos.core.settings import Settings
from cityos.core.storage import engine_of, sqlite_path

log = logging.getLogger("cityos.auth")
KEY_BYTES = 32
_PROCESS_KEY: list[bytes] = []      # the per-process key when there is no file (one per process)


def key_path(settings: Settings) -> Path | None:
    """Where the key lives: the setting, else beside the SQLite database (None: no such place)."""
    if settings.secret_key_file:
        return Path(settings.secret_key_file)
    if engine_of(settings.database_url) == "sqlite":
        db_path = sqlite_path(settings.database_url)
        if db_path:
            return Path(db_path).parent / "secret.key"
    return None


def load_or_create(settings: Settings) -> bytes:
    """The 32-byte secret key, created (mode 0600) on first start."""
    path = key_path(settings)
    if path is None:
        # An in-memory database forgets its encrypted keys anyway; a PostgreSQL cluster without a
        # shared file would have one key per node, which cannot decrypt each other's rows.
        if not _PROCESS_KEY:
            log.warning("no CITYOS_SECRET_KEY_FILE: using a per-process random secret key (signing"
                        " keys do not survive a restart and are not shared between nodes)")
            _PROCESS_KEY.append(secrets.token_bytes(KEY_BYTES))
        return _PROCESS_KEY[0]
    if path.exists():
        data = path.read_bytes()
        if len(data) != KEY_BYTES:
            raise ValueError(f"secret key file {path} must hold exactly {KEY_BYTES} bytes")
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(KEY_BYTES)
    # O_EXCL: two processes starting at once never overwrite each other's key; the loser reads it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create(settings)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    log.info("created secret key file %s", path)
    return data


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose (e.g. ``"signing-keys"``, ``"csrf"``) from the secret key (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=b"cityos:" + purpose.encode())
    return hkdf.derive(secret)
