"""The frames the server and its dispatcher process exchange over their socket pair (ADR 0017).

A frame is a 4-byte big-endian length, then one byte naming its kind, then the payload.  Payloads
are orjson, except the start-up frame and subscription changes, which carry Python objects
(settings, parsed subscriptions with their term maps) pickled: both ends are the same program,
started by the server itself, and parsing a subscription again would need its remote
``@context``, which may be down.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

import orjson

HEADER = struct.Struct(">IB")
MAX_FRAME = 256 * 1024 * 1024      # a corrupt length must not make a reader allocate gigabytes

# server -> dispatcher
START = ord("I")          # pickle: (settings, [(wire form, counters doc)], watermark, extras)
ROWS = ord("R")           # orjson: [[pairs, ...], [[id, tenant, pairs index, entity, previous, at], ...]]
PUT = ord("S")            # pickle: a created or changed subscription's wire form:
#                           ("sub", subscription) or ("form", face, that face's own form)
REMOVE = ord("X")         # orjson: [tenant, subscription id]
DONE_ACK = ord("A")       # orjson: [request number, deleted (bool)]
STOP = ord("Q")           # empty: finish and exit
WATERMARK = ord("W")      # orjson: server time (epoch µs); every earlier change was sent before
# dispatcher -> server
DONE = ord("D")           # orjson: [request number, [row id, ...]] rows finished, to delete
COUNTERS = ord("C")       # orjson: [[tenant, subscription id, counters document], ...]
METRICS = ord("M")        # orjson: the notifier's metrics
FIRED = ord("F")          # orjson: [face, tenant, subscription id] a oneshot subscription fired


def frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame of ``kind``."""
    return HEADER.pack(len(payload) + 1, kind) + payload


def json_frame(kind: int, value: Any) -> bytes:
    return frame(kind, orjson.dumps(value))


def pickle_frame(kind: int, value: Any) -> bytes:
    return frame(kind, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def write(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write frames; False when the other end is already gone (its reader sees the end of the
    stream next, which is where the loss of the other process is handled)."""
    if writer.is_closing():
        return False
    try:
        writer.write(data)
    except (OSError, RuntimeError):      # uvloop raises once the transport has failed
        return False
    return True


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame's kind and payload (``asyncio.IncompleteReadError`` at the end)."""
    size, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
    if not 1 <= size <= MAX_FRAME:
        raise ValueError(f"frame of {size} bytes: the stream is corrupt")
    return kind, await reader.readexactly(size - 1)
