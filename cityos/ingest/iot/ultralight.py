"""UltraLight 2.0, the FIWARE text payload for constrained devices (ED-DT-1).

A measure payload is ``key|value|key|value``; several measure groups are separated by ``#`` and
each may carry its own timestamp, first in the group (``2026-11-26T09:00:00+09:00|t|21.5``) or
as a ``TimeInstant|...`` / ``t|...`` measure (``t`` only when it holds a time).  Commands go to the device as
``device@command|param|param`` and come back (``cmdexe``) as ``device@command|result``.
"""

from __future__ import annotations

from typing import Any


class UltraLightError(ValueError):
    """The payload is not valid UltraLight 2.0."""


def parse_measures(text: str) -> list[dict[str, str]]:
    """The measure groups of an UltraLight payload, each a mapping of key to raw text value."""
    groups: list[dict[str, str]] = []
    for raw_group in text.strip().split("#"):
        raw_group = raw_group.strip()
        if not raw_group:
            continue
        parts = [p.strip() for p in raw_group.split("|")]
        group: dict[str, str] = {}
        if len(parts) % 2 and _looks_like_time(parts[0]):
            # UltraLight 2.0: an optional timestamp opens the group ("2026-...|t|21.5")
            group["TimeInstant"] = parts.pop(0)
        if len(parts) % 2:
            raise UltraLightError(f"measure group {raw_group[:60]!r} has a key without a value")
        for key, value in zip(parts[0::2], parts[1::2], strict=True):
            if not key:
                raise UltraLightError(f"measure group {raw_group[:60]!r} has an empty key")
            group[key] = value
        groups.append(group)
    if not groups:
        raise UltraLightError("the payload holds no measure")
    return groups


def _looks_like_time(text: str) -> bool:
    return len(text) >= 10 and text[:4].isdigit() and text[4] == "-"


def format_command(device_id: str, command: str, value: Any) -> str:
    """The UltraLight text sent to a device for ``command`` with ``value`` as parameters."""
    if value is None or value == "":
        return f"{device_id}@{command}"
    if isinstance(value, dict):
        params = "|".join(f"{k}|{v}" for k, v in value.items())
    elif isinstance(value, list):
        params = "|".join(str(v) for v in value)
    else:
        params = str(value)
    return f"{device_id}@{command}|{params}"


def parse_command_result(text: str) -> tuple[str, str, str]:
    """(device id, command, result) of an UltraLight ``cmdexe`` payload."""
    head, _, result = text.strip().partition("|")
    device_id, at, command = head.partition("@")
    if not at or not device_id or not command:
        raise UltraLightError(f"a command result must read device@command|result, got {text[:60]!r}")
    return device_id, command, result
