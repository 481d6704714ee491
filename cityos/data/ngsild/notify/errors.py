"""The one exception senders raise: a delivery attempt failed."""

from __future__ import annotations


class DeliveryFailed(Exception):
    """One attempt to deliver a notification did not succeed.

    ``retry`` is False when trying again cannot help (the endpoint is refused by the SSRF policy,
    the notification could not be rendered): the dispatcher then gives up at once instead of
    spending the retry schedule on it.
    """

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
