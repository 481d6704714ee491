"""CPU use of the processes under test, read from ``/proc`` (Linux), to tell whether a scenario
was bound by the broker, by PostgreSQL or by the load generator itself."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by ``pid``; 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICKS


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (a dispatcher process, ADR 0017)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds per live PostgreSQL process working for ``database``: its backends plus the
    cluster's shared writers (WAL writer, checkpointer, background writer), which our writes
    keep busy.  Backends of other databases (other people's tests) are left out."""
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in title or any(w in title for w in ("walwriter", "checkpointer",
                                                                "background writer")):
            used[int(entry.name)] = process_cpu(int(entry.name))
    return used


def machine_cpu() -> float:
    """CPU seconds all cores spent busy so far (``/proc/stat``: everything but idle and iowait)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def self_cpu() -> float:
    """CPU seconds used by this process (the load generator)."""
    t = os.times()
    return t.user + t.system


Reading = Callable[[], "float | dict[int, float]"]


def _as_map(value: float | dict[int, float]) -> dict[int, float]:
    return value if isinstance(value, dict) else {0: value}


class CpuSampler:
    """CPU use, in % of one core, of named processes between :meth:`start` and :meth:`stop`.

    A source gives CPU seconds, or CPU seconds per pid (processes come and go: one that started
    meanwhile counts from zero, one that ended is lost, never negative)."""

    def __init__(self, sources: dict[str, Reading]) -> None:
        self.sources = sources
        self._begin: dict[str, dict[int, float]] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._begin = {name: _as_map(read()) for name, read in self.sources.items()}

    def stop(self) -> dict[str, float]:
        """% of one core per source; with a ``machine`` source also ``other``: the CPU that
        processes outside the benchmark used meanwhile (other people's jobs disturb results)."""
        wall = max(1e-9, time.perf_counter() - self._t0)
        used: dict[str, float] = {}
        for name, read in self.sources.items():
            begin, end = self._begin[name], _as_map(read())
            seconds = sum(max(0.0, v - begin.get(pid, 0.0)) for pid, v in end.items())
            used[name] = round(100.0 * seconds / wall, 1)
        if "machine" in used:
            ours = sum(v for k, v in used.items() if k != "machine")
            used["other"] = round(max(0.0, used["machine"] - ours), 1)
        return used
