"""Erasing an account (AU-UM-1, ADR 0012 §12) and finishing erasures a stop interrupted.

The steps run in an order that can be repeated: the account is first marked ``erasing`` (it can no
longer log in and its tokens are void), then its tokens are revoked, its consents withdrawn and
every erasure hook run (the data block's deletes the entities whose ``dataOwner`` is the account),
and only then is the row tombstoned.  A crash in between leaves the account ``erasing``; the sweep
finds it and runs every step again, so each hook must be idempotent.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from cityos.auth.runtime import AuthRuntime
from cityos.core.access import ACCOUNT_URN
from cityos.core.tasks import Repeating

log = logging.getLogger("cityos.auth.erasure")
RETRY_INTERVAL = 60.0


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def revoke_tokens(runtime: AuthRuntime, account_id: str) -> None:
    """Void the account's tokens at once on every node, when a token service is installed."""
    revoke = getattr(runtime.tokens, "revoke_subject", None)
    if revoke is not None:
        await _maybe_await(revoke(account_id))


async def erase_account(runtime: AuthRuntime, account_id: str) -> bool:
    """Erase ``account_id``; False when there is no such (undeleted) account."""
    account = await runtime.directory.get_account(account_id)
    if account is None or account.status == "deleted":
        return False
    if account.status != "erasing":
        await runtime.directory.update_account(account_id, status="erasing")
    await revoke_tokens(runtime, account_id)
    withdraw = getattr(runtime.consents, "withdraw_all", None)
    if withdraw is not None:
        await _maybe_await(withdraw(ACCOUNT_URN + account_id))
    for hook in list(runtime.erasure_hooks):
        await hook(account_id)
    await runtime.directory.tombstone_account(account_id)
    log.info("account %s erased", account_id)
    return True


class ErasureSweep:
    """A part of the auth runtime: finishes erasures left ``erasing`` by a stop or a failed hook.

    It runs in the background (the hooks may need blocks that start after the auth runtime) and,
    while some erasure keeps failing, tries again every ``interval`` seconds.  It also finishes
    erasures the local CLI only marked (``cityos auth accounts delete`` without the data block).
    """

    def __init__(self, runtime: AuthRuntime, interval: float = RETRY_INTERVAL) -> None:
        self.runtime = runtime
        self.interval = interval
        self._sweeper: Repeating | None = None

    async def sweep(self) -> int:
        """Finish every pending erasure now; the number still pending (failed) afterwards."""
        pending = await self.runtime.directory.account_ids_with_status("erasing")
        failed = 0
        for account_id in pending:
            try:
                await erase_account(self.runtime, account_id)
            except Exception:
                failed += 1
                log.exception("erasure of account %s failed; it will be retried", account_id)
        return failed

    async def start(self) -> None:
        self._sweeper = Repeating("erasure sweep", self.sweep, self.interval, log=log)
        self._sweeper.start()

    async def stop(self) -> None:
        if self._sweeper is not None:
            await self._sweeper.stop()
