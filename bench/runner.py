"""Runs the chosen scenarios on one engine: start the server, load data, measure, clean up."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.data import upsert_batches
from bench.loadgen import Req, Stats, arun, run_load, send_all
from bench.procstat import (
    CpuSampler,
    Reading,
    machine_cpu,
    postgres_cpu,
    process_cpu,
    self_cpu,
)
from bench.report import Result, results_table
from bench.scenarios import Dataset, Scenario
from bench.servers import Server, postgres_analyze

LOAD_BATCH = 1000      # entities per upsert while loading (the default max batch size)
LOAD_CONCURRENCY = 2   # upserts in flight while loading: one parsed while one is written


@dataclass
class Options:
    """What the command line asked for."""

    scale: int
    query_scale: int
    duration: float
    warmup: float
    max_requests: int
    concurrency: int | None
    seed: int
    profile_dir: Path | None
    quiet_wait: float = 120.0   # seconds to wait at most for other jobs to leave the CPU
    quiet_below: float = 25.0   # "quiet": other processes use less than this % of one core
    analyze: bool = True        # PostgreSQL: ANALYZE after loading, as autovacuum would
    retries: int = 1            # re-measure a scenario disturbed by other processes


class LoadFailed(RuntimeError):
    """Data loading got an answer other than 201/204."""


def new_progress(console: Console | None = None) -> Progress:
    """Progress bars for loading and for each scenario (4 refreshes a second: cheap)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}", style="bold"),
                    BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), refresh_per_second=4,
                    console=console)


class EngineRun:
    """The scenarios of one engine against one running server."""

    def __init__(self, engine: str, server: Server, options: Options, progress: Progress,
                 run_id: str) -> None:
        self.engine, self.server, self.options, self.progress = engine, server, options, progress
        self.run_id = run_id
        self.dataset = Dataset()
        self.loads: list[dict[str, Any]] = []
        sources: dict[str, Reading] = {"server": lambda: process_cpu(server.pid),
                                                   "client": self_cpu, "machine": machine_cpu}
        if engine == "postgresql":
            database = server.database_url.rsplit("/", 1)[-1]
            sources["postgres"] = lambda: postgres_cpu(database)
        self.sources = sources

    # -- data loading ----------------------------------------------------------------------------
    def load(self, kind: str, start: int, stop: int) -> None:
        if stop <= start:
            return
        count = stop - start
        task = self.progress.add_task(f"{self.engine}: load {count:,} {kind}", total=count, info="")
        done = 0
        t0 = time.perf_counter()
        failures: list[str] = []

        def on_done(req: Req, status: int, payload: bytes) -> None:
            nonlocal done
            if status not in (201, 204):
                failures.append(f"{status} {payload[:300]!r}")
                raise LoadFailed(f"loading {kind} failed: {failures[0]}")
            done += req.items
            rate = done / max(1e-9, time.perf_counter() - t0)
            self.progress.update(task, completed=done, info=f"{rate:,.0f} entities/s")

        batches = upsert_batches(kind, start, stop, LOAD_BATCH, self.options.seed)
        arun(send_all(self.server.base, batches, concurrency=LOAD_CONCURRENCY,
                             on_done=on_done))
        seconds = time.perf_counter() - t0
        self.loads.append({"kind": kind, "entities": count, "seconds": round(seconds, 1),
                           "entities_per_s": round(count / seconds, 1)})
        self.progress.update(task, info=f"{count / seconds:,.0f} entities/s in {seconds:,.0f} s")
        if self.engine == "postgresql" and self.options.analyze:
            self.progress.update(task, info=f"{count / seconds:,.0f} entities/s in {seconds:,.0f} s"
                                            ", ANALYZE")
            postgres_analyze(self.server.database_url)

    def ensure(self, need: str) -> None:
        o, ds = self.options, self.dataset
        if need in ("query", "scale") and ds.spots < o.query_scale:
            self.load("ParkingSpot", ds.spots, o.query_scale)
            ds.spots = ds.total = o.query_scale
        if need == "scale" and ds.total < o.scale:
            self.load("Device", ds.total, o.scale)
            ds.total = o.scale

    # -- one scenario ----------------------------------------------------------------------------
    def run(self, scenario: Scenario) -> Result:
        """Measure ``scenario``; measure again (at most ``retries`` times) when processes outside
        the benchmark took the CPU meanwhile, and keep the least disturbed measurement."""
        self.ensure(scenario.needs)
        best: Result | None = None
        for attempt in range(self.options.retries + 1):
            result = self._measure(scenario, attempt)
            if best is None or result.stats.cpu.get("other", 0) < best.stats.cpu.get("other", 0):
                best = result
            if best.stats.cpu.get("other", 0) < self.options.quiet_below or \
                    self.server.process.poll() is not None:
                break
        assert best is not None
        best.note = "; ".join(filter(None, [best.note, f"best of {attempt + 1} run(s)"
                                             if attempt else ""]))
        return best

    def _measure(self, scenario: Scenario, attempt: int) -> Result:
        o = self.options
        concurrency = o.concurrency or scenario.concurrency
        # writes of a retry must not collide with the ids the earlier attempt created
        make = scenario.build(self.dataset, f"{self.run_id}{attempt or ''}", o.seed + attempt)
        label = f"{self.engine}: {scenario.title}" + (f" (retry {attempt})" if attempt else "")
        task = self.progress.add_task(label, total=o.duration, info="warming up")

        def on_tick(elapsed: float, requests: int) -> None:
            rate = requests / elapsed if elapsed else 0.0
            self.progress.update(task, completed=round(elapsed, 1),
                                 info=f"{requests:,} req, {rate:,.0f}/s")

        self.wait_quiet(task)
        profiler = self._start_profiler(scenario)
        try:
            stats: Stats = arun(run_load(
                self.server.base, make, concurrency=concurrency, duration=o.duration,
                max_requests=o.max_requests, warmup=o.warmup, on_tick=on_tick,
                cpu=CpuSampler(self.sources)))
        finally:
            self._stop_profiler(profiler)
        other = stats.cpu.get("other", 0.0)
        self.progress.update(task, completed=o.duration,
                             info=f"{stats.requests:,} req, {stats.rate:,.0f}/s, "
                                  f"{stats.errors} errors, other jobs {other:.0f}% CPU")
        result = Result(self.engine, scenario, stats, concurrency)
        if scenario.needs != "none":
            result.note = (f"{self.dataset.total:,} entities stored "
                           f"({self.dataset.spots:,} ParkingSpots with a location)")
        if stats.errors:
            for sample in stats.error_samples:
                self.progress.console.print(f"[red]  error:[/] {sample}")
        return result

    def wait_quiet(self, task: TaskID) -> float:
        """Wait (bounded) until processes outside the benchmark leave the CPU: the machine may
        be shared with other people's test runs, which would make the numbers meaningless."""
        deadline = time.monotonic() + self.options.quiet_wait
        while True:
            sampler = CpuSampler(self.sources)
            sampler.start()
            time.sleep(1.0)
            other = sampler.stop().get("other", 0.0)
            if other < self.options.quiet_below or time.monotonic() >= deadline:
                return other
            self.progress.update(task, info=f"waiting for a quiet machine: other processes use "
                                            f"{other:.0f}% CPU")

    def _start_profiler(self, scenario: Scenario) -> subprocess.Popen[bytes] | None:
        if self.options.profile_dir is None:
            return None
        exe = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
        out = self.options.profile_dir / f"{self.engine}-{scenario.name}.txt"
        seconds = int(self.options.warmup + self.options.duration)
        return subprocess.Popen(
            [exe, "record", "--pid", str(self.server.pid), "--format", "raw", "--output",
             str(out), "--duration", str(seconds), "--nonblocking", "--threads"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _stop_profiler(self, profiler: subprocess.Popen[bytes] | None) -> None:
        if profiler is None:
            return
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.terminate()
            profiler.wait()


def run_engine(engine: str, server: Server, scenarios: list[Scenario], options: Options,
               progress: Progress, run_id: str) -> tuple[list[Result], list[dict[str, Any]]]:
    """Run ``scenarios`` in order on one server; print the table when done."""
    run = EngineRun(engine, server, options, progress, run_id)
    results: list[Result] = []
    for scenario in scenarios:
        results.append(run.run(scenario))
        if server.process.poll() is not None:
            progress.console.print(f"[red]the server died:[/]\n{server.log_tail()}")
            break
    progress.console.print(results_table(engine, results))
    return results, run.loads
