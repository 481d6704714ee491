"""Password hashing: argon2id (RFC 9106) in a worker thread, at most two at a time.

A hash costs tens of milliseconds and 64 MiB by design; running it on the event loop would stall
every other request, and running many at once would let a burst of logins exhaust memory.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10      # NIST SP 800-63B: length, not composition rules
MAX_LENGTH = 256


def parse_cost(spec: str) -> PasswordHasher:
    """``t=3,m=65536,p=4`` -> an argon2id hasher with those costs."""
    parts = dict(item.split("=", 1) for item in spec.replace(" ", "").split(",") if item)
    return PasswordHasher(time_cost=int(parts.get("t", 3)), memory_cost=int(parts.get("m", 65536)),
                          parallelism=int(parts.get("p", 4)))


def check_policy(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    return None


class Passwords:
    """Hash and verify passwords off the event loop."""

    def __init__(self, cost: str) -> None:
        self._hasher = parse_cost(cost)
        self._slots = asyncio.Semaphore(2)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches; an unknown account verifies a dummy hash (same time)."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash("not-a-password-" + "x" * 16)
            stored = self._dummy
            password = password + "\0"   # never matches the dummy
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
