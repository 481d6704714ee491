"""Keys of the login block, all derived from one secret (ADR 0012 §2).

The CSRF HMAC key and the TOTP encryption key are HKDF-SHA256 outputs of the node's secret key
(``cityos.auth.secret_key.load_or_create``), so every node of a cluster derives the same keys.
Until that module exists the fallback is a per-process random secret: forms and TOTP secrets then
do not survive a restart (development only).
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("cityos.auth.login")

_PROCESS_SECRET = secrets.token_bytes(32)


def master_secret(settings: Any) -> bytes:
    """The node's secret key, or a per-process random one when the key module is absent."""
    try:
        module = importlib.import_module("cityos.auth.secret_key")
    except ImportError:
        log.warning("cityos.auth.secret_key missing: login keys are per-process (development only)")
        return _PROCESS_SECRET
    key = module.load_or_create(settings)
    return key.encode() if isinstance(key, str) else bytes(key)


def derive(secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose (RFC 5869), so one leaked use cannot forge another."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"cityos-login:" + purpose.encode()).derive(secret)


class Sealer:
    """AES-256-GCM with the associated data binding a ciphertext to its owner (account id)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, owner: str) -> str:
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, plain, owner.encode())
        return base64.urlsafe_b64encode(blob).decode()

    def open(self, sealed: str, owner: str) -> bytes | None:
        """The plaintext, or None when tampered with, sealed for another owner or malformed."""
        try:
            blob = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(blob[:12], blob[12:], owner.encode())
        except Exception:   # InvalidTag, bad base64, short blob: all mean "not ours"
            return None
