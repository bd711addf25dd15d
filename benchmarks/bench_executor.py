"""Executor overhead: N no-op jobs through the local executor vs a bare process pool.

Each row is a callable returning dict(row, measure, baseline, value, unit, ratio,
target, met, note); ``benchmarks/run.py`` collects ``ROWS`` from every bench file.
Run alone: ``python benchmarks/bench_executor.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import TMPFS, engine_tmpdir
from benchmarks._workflows import timed_execute, wide, write_run
from mlwf_nb.backends.local import LocalBackend

N_JOBS = 500
TARGET = 1.2
REPEATS = 9


def _write_run(root: Path, n: int) -> Path:
    """A run directory of ``n`` independent ``/bin/true`` jobs (the shared benchmark workflow writer)."""
    return write_run(root, *wide(n))


def _bare_pool(n: int, width: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(width) as pool:
        list(pool.map(lambda _: subprocess.run(["/bin/true"], check=True), range(n)))
    return time.perf_counter() - t0


def _bare_pool_with_files(n: int, width: int, root: Path) -> float:
    """The same pool, but each job gets what the contract asks: jobs/<job>/ with stdout and stderr files."""
    def one(i: int) -> None:
        jdir = root / f"j{i}"
        jdir.mkdir(parents=True)
        with open(jdir / "stdout.000", "wb") as out, open(jdir / "stderr.000", "wb") as err:
            subprocess.run(["/bin/true"], stdout=out, stderr=err, check=True, start_new_session=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(width) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - t0


def _executor(tmp: Path, n: int, width: int, tag: str) -> float:
    return timed_execute(_write_run(tmp / tag, n), width)


def _measure() -> dict[str, Any]:
    """Medians of REPEATS interleaved runs (interleaving shares the machine's noise)."""
    width = os.cpu_count() or 1
    got: dict[str, list[float]] = {"bare": [], "files": [], "executor": []}
    with engine_tmpdir() as d:
        tmp = Path(d)
        for i in range(REPEATS):
            got["bare"].append(_bare_pool(N_JOBS, width))
            got["files"].append(_bare_pool_with_files(N_JOBS, width, tmp / f"b{i}"))
            got["executor"].append(_executor(tmp, N_JOBS, width, f"r{i}"))
    out: dict[str, float | str] = {k: statistics.median(v) for k, v in got.items()}
    out["width"] = width
    out["where"] = "tmpfs (/dev/shm)" if os.path.isdir(TMPFS) else "the default temporary directory"
    return out


_CACHE: dict[str, Any] = {}


def _measured() -> dict[str, Any]:
    if not _CACHE:
        _CACHE.update(_measure())
    return _CACHE


def bench_noop_jobs() -> dict[str, object]:
    """500 /bin/true jobs: executor vs a bare pool that writes the same per-job stdout/stderr files."""
    m = _measured()
    ratio = m["executor"] / m["files"]
    return dict(row="local executor: 500 no-op jobs", measure=f"wall time, median of {REPEATS}",
                baseline=round(m["files"], 3), value=round(m["executor"], 3), unit="s", ratio=round(ratio, 3),
                target=TARGET, met=ratio <= TARGET,
                note=f"width {m['width']:.0f}; baseline = ThreadPoolExecutor + subprocess.run with "
                     "jobs/<job>/stdout.000, stderr.000 per job; value includes reading workflow.yml; "
                     f"both on {m['where']}")


def bench_noop_jobs_vs_bare() -> dict[str, object]:
    """Same executor runs against a bare pool with no per-job files at all."""
    m = _measured()
    ratio = m["executor"] / m["bare"]
    per_job = (m["executor"] - m["bare"]) / N_JOBS * 1e3
    return dict(row="local executor: 500 no-op jobs vs bare pool", measure=f"wall time, median of {REPEATS}",
                baseline=round(m["bare"], 3), value=round(m["executor"], 3), unit="s", ratio=round(ratio, 3),
                target=TARGET, met=ratio <= TARGET,
                note=f"per-job overhead {per_job:.2f} ms: jobs/<job>/ and its stdout/stderr files (the row above "
                     "is the pool that makes them too), 7 jobstate.log records and 3 events; bare = "
                     "ThreadPoolExecutor + subprocess.run, output not kept")


def bench_detached_noop_jobs() -> dict[str, object]:
    """Same, through LocalBackend.submit(wait=True): adds interpreter start of the detached executor."""
    width = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        run = _write_run(Path(d) / "run", N_JOBS)
        b = _bare_pool(N_JOBS, width)
        t0 = time.perf_counter()
        st = LocalBackend().submit(run, jobs=width, wait=True)
        v = time.perf_counter() - t0
    ratio = v / b
    return dict(row="local backend submit(wait=True): 500 no-op jobs", measure="wall time",
                baseline=round(b, 3), value=round(v, 3), unit="s", ratio=round(ratio, 3), target=None,
                met=st["mlwf"]["state"] == "Success",
                note="informational: includes python start-up and imports of the detached executor")


ROWS = [bench_noop_jobs, bench_noop_jobs_vs_bare, bench_detached_noop_jobs]


if __name__ == "__main__":
    for row in ROWS:
        print(row())
