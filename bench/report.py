"""Results: one record per (engine, scenario), printed as rich tables and written as JSON."""

from __future__ import annotations

import getpass
import os
import platform
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.loadgen import Stats
from bench.scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One scenario on one engine."""

    engine: str
    scenario: Scenario
    stats: Stats
    concurrency: int
    verdict: str = ""
    ratios: list[str] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        self.verdict, self.ratios = self.scenario.target.judge(self.stats)

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "engine": self.engine, "scenario": self.scenario.name, "title": self.scenario.title,
            "request": self.scenario.detail, "concurrency": self.concurrency,
            "requests": s.requests, "errors": s.errors, "seconds": round(s.elapsed, 2),
            "req_per_s": round(s.rate, 1), "entities_per_s": round(s.item_rate, 1),
            "p50_ms": round(s.percentile(50), 2), "p95_ms": round(s.percentile(95), 2),
            "p99_ms": round(s.percentile(99), 2),
            "max_ms": round(max(s.latencies) * 1000, 2) if s.latencies else None,
            "target": self.scenario.target.describe(), "verdict": self.verdict,
            "ratios": self.ratios, "cpu_percent_of_one_core": s.cpu,
            "status_counts": {str(k): v for k, v in s.status_counts.items()},
            "error_samples": s.error_samples, "note": self.note,
        }


def _cpu_text(cpu: dict[str, float]) -> str:
    """CPU % of one core: server / PostgreSQL / load generator / everything else on the machine."""
    return "/".join(f"{cpu[k]:.0f}" if k in cpu else "-"
                    for k in ("server", "postgres", "client", "other"))


def _fmt_rate(value: float) -> str:
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def _fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def results_table(engine: str, results: list[Result]) -> Table:
    """The per-engine table shown on the terminal."""
    table = Table(title=f"CityOS on {engine}", title_justify="left")
    for column in ("scenario", "conc", "req/s", "entities/s", "p50 ms", "p95 ms", "p99 ms",
                   "errors", "target", "result", "achieved/target", "CPU % srv/pg/cli/other"):
        table.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for r in results:
        s = r.stats
        colour = {"PASS": "green", "MISS": "red"}.get(r.verdict, "yellow")
        cpu_text = _cpu_text(r.stats.cpu)
        table.add_row(r.scenario.title, str(r.concurrency), _fmt_rate(s.rate),
                      f"{s.item_rate:,.0f}" if r.scenario.name == "batch" else "",
                      _fmt_ms(s.percentile(50)), _fmt_ms(s.percentile(95)),
                      _fmt_ms(s.percentile(99)), str(s.errors), r.scenario.target.describe(),
                      f"[{colour}]{r.verdict}[/]", ", ".join(r.ratios), cpu_text)
    return table


def markdown_table(results: list[Result]) -> str:
    """The same table in Markdown, for RESULTS.md."""
    lines = ["| scenario | conc | req/s | entities/s | p50 ms | p95 ms | p99 ms | errors | target "
             "| result | achieved/target | CPU % srv/pg/cli/other |",
             "|---|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|"]
    for r in results:
        s = r.stats
        cpu_text = _cpu_text(s.cpu)
        lines.append(
            f"| {r.scenario.title} | {r.concurrency} | {_fmt_rate(s.rate)} | "
            f"{f'{s.item_rate:,.0f}' if r.scenario.name == 'batch' else ''} | "
            f"{_fmt_ms(s.percentile(50))} | {_fmt_ms(s.percentile(95))} | "
            f"{_fmt_ms(s.percentile(99))} | {s.errors} | {r.scenario.target.describe()} | "
            f"**{r.verdict}** | {', '.join(r.ratios)} | {cpu_text} |")
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip()
    except OSError:
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def environment(argv: list[str]) -> dict[str, Any]:
    """Machine, software and revision facts for the report."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "worktree_modified": bool(dirty),
        "command": " ".join(["python -m bench", *argv]),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": round(_memory_gib(), 1),
        "kernel": platform.release(), "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "packages": {d: _version(d) for d in ("uvicorn", "starlette", "uvloop", "httptools",
                                              "orjson", "asyncpg", "aiohttp")},
        "user": getpass.getuser(),
        # a broker other than the work tree's, for A/B runs: PYTHONPATH=/path/to/old/tree
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }
