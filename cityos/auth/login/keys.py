"""Sealing of the login block's secrets (TOTP secrets, enrolment tokens) with AES-256-GCM.

Its keys are HKDF outputs of the node's secret key (``cityos.auth.secret_key``), one per use, so
every node of a cluster derives the same ones (ADR 0012 §2).
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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
