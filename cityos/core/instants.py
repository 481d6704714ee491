"""Times that callers give the identity, consent and audit APIs: ISO 8601 with a UTC offset
(``Z`` or ``+09:00``; a time without one is ambiguous between the city's and the server's zone)."""

from __future__ import annotations

from datetime import datetime

from cityos.core.problems import BadRequestData


def aware_instant(text: str, field: str) -> datetime:
    """``text`` as an aware datetime; a precise 400 naming ``field`` otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestData(f"{field} {text[:40]!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BadRequestData(f"{field} {text[:40]!r} needs a UTC offset (Z or +09:00)")
    return moment
