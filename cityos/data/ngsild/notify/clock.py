"""Cheap UTC time stamps for the notification hot path.

Every notification carries ``notifiedAt`` and every attempt updates the subscription's
``lastNotification``; ``datetime.strftime`` per call showed up in profiles at thousands of
notifications a second, so the date and time up to the second are formatted once per second.
"""

from __future__ import annotations

import time

_second = -1
_prefix = ""


def utc_stamp(digits: int = 6) -> str:
    """Now as ``YYYY-MM-DDTHH:MM:SS.fffZ`` with ``digits`` (3 or 6) fractional digits."""
    global _second, _prefix
    now = time.time()
    second = int(now)
    if second != _second:
        _prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _second = second
    fraction = int((now - second) * 1_000_000)
    if digits == 3:
        return f"{_prefix}{fraction // 1000:03d}Z"
    return f"{_prefix}{fraction:06d}Z"
