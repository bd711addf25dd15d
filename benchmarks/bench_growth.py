"""Growth: the local backend on 1,000 and 10,000 no-op jobs; status and monitor at 100,000 lines.

Rows:
    growth: per-job cost of a wide fan-out and of a long chain of ``/bin/true``
        jobs at 10,000 against the same at 1,000 (flat: ratio near 1); then
        ``mlwf status`` (a fresh process) and the RunMonitor's replay on a run
        whose ``jobstate.log`` and ``events.jsonl`` hold 100,000 lines each
        (time, and the monitor's peak memory against a 1,000-line run).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import MB, child_peak_rss, engine_tmpdir, result, row
from benchmarks._workflows import chain, timed_execute, wide, write_run
from mlwf_nb.rundir.states import PEGASUS_STATES

__all__ = ["ROWS", "bench_growth", "synth_run"]

STATES = ("SUBMIT", "EXECUTE", "JOB_TERMINATED", "JOB_SUCCESS", "POST_SCRIPT_STARTED",
          "POST_SCRIPT_TERMINATED", "POST_SCRIPT_SUCCESS")


def synth_run(root: Path, lines: int) -> Path:
    """A finished run of ``lines / 7`` no-op jobs whose logs hold about ``lines`` lines each.

    ``workflow.yml`` is real (Pegasus API); ``jobstate.log`` is written in
    Pegasus's format (7 records a job) and ``events.jsonl`` has one event a
    record, as the executor would have written them.
    """
    n = max(1, lines // len(STATES))
    jobs, edges = wide(n)
    run = write_run(root, jobs, edges)
    (run / "run.json").write_text(json.dumps({"version": 1, "name": root.name, "backend": "local",
                                              "pipeline": "landcover", "jobs": []}))
    from mlwf_nb.backends.local import read_plan

    names = list(read_plan(run).jobs)
    t = int(time.time()) - 3600
    with open(run / "jobstate.log", "w") as js, open(run / "events.jsonl", "w") as ev:
        js.write(f"{t} INTERNAL *** DAGMAN_STARTED 1.0 ***\n")
        seq = 0
        for i, name in enumerate(names):
            for state in STATES:
                info = "0" if state.endswith("SUCCESS") else f"{i + 2}.0"
                js.write(f"{t} {name} {state} {info} local - {i + 1}\n")
                seq += 1
                ev.write(json.dumps({"v": 1, "seq": seq, "ts": t, "job": name, "name": name, "type": "job_state",
                                     "state": PEGASUS_STATES[state], "exit_code": 0, "try": 1}) + "\n")
        js.write(f"{t} INTERNAL *** DAGMAN_FINISHED 0 ***\n")
        ev.write(json.dumps({"v": 1, "seq": seq + 1, "ts": t, "type": "run_finished", "state": "Success",
                             "failed_jobs": []}) + "\n")
    (run / "executor.log").write_text("")
    return run


def _status_seconds(run: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlwf_nb.cli", "status", str(run)], capture_output=True,
                          text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if "Success" not in proc.stdout:
        raise RuntimeError(f"mlwf status {run} did not report Success: {proc.stdout[:300]} {proc.stderr[-500:]}")
    return elapsed


_MONITOR = ("import time; from mlwf_nb.widgets import RunMonitor; t0 = time.perf_counter(); "
            "m = RunMonitor({run!r}); state = m.wait(300, show=False); "
            "print('REPLAY', time.perf_counter() - t0, state)")


def _monitor(run: Path) -> tuple[float, int]:
    """(replay seconds, peak RSS bytes) of a fresh process whose RunMonitor replays ``run``."""
    code = _MONITOR.format(run=str(run))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    got = [line.split() for line in proc.stdout.splitlines() if line.startswith("REPLAY")]
    if not got:
        raise RuntimeError(f"monitor replay failed: {proc.stderr[-1000:]}")
    return float(got[0][1]), child_peak_rss(code)


@row("growth")
def bench_growth(quick: bool) -> list[dict[str, Any]]:
    """Per-job cost at 10x the jobs (wide and chain); status and monitor at 100k lines."""
    small, big = (100, 1000) if quick else (1000, 10000)
    lines = 10_000 if quick else 100_000
    width = os.cpu_count() or 1
    out = []
    with engine_tmpdir() as d:
        tmp = Path(d)
        for shape, make in (("wide fan-out", wide), ("chain", chain)):
            per: dict[int, float] = {}
            for n in (small, big):
                jobs, edges = make(n)
                repeats = 3 if n == small else 1  # the short run is the noisier one
                per[n] = statistics.median(
                    timed_execute(write_run(tmp / f"{shape[:4]}{n}-{i}", jobs, edges), width) / n
                    for i in range(repeats))
            out.append(result("growth", f"{shape}: per-job cost at {big:,} jobs", per[small] * 1e3,
                              per[big] * 1e3, "ms/job", "<= 1.5x (flat)", per[big] <= 1.5 * per[small],
                              note=f"/bin/true jobs through the executor at width {width}, run directories on "
                                   f"tmpfs as in the executor rows; baseline: the same at {small:,} jobs, "
                                   "median of 3"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base_run, big_run = synth_run(tmp / "s1k", 1000), synth_run(tmp / "s100k", lines)
        s_small, s_big = _status_seconds(base_run), _status_seconds(big_run)
        out.append(result("growth", f"mlwf status, {lines:,}-line jobstate.log + events.jsonl", s_small, s_big,
                          "s", "< 1 s", s_big < 1.0,
                          note="a fresh `mlwf status RUN` process (interpreter start and imports included); "
                               "baseline: the same on a 1,000-line run"))
        (r_small, m_small), (r_big, m_big) = _monitor(base_run), _monitor(big_run)
        out.append(result("growth", f"RunMonitor replay, {lines:,} lines", r_small, r_big, "s", "report", None,
                          note="fresh process: RunMonitor(run).wait() until run_finished; baseline 1,000 lines"))
        out.append(result("growth", f"RunMonitor peak memory, {lines:,} lines", m_small / MB, m_big / MB, "MB",
                          "bounded (<= 1.5x)", m_big <= 1.5 * m_small,
                          note="peak RSS (VmHWM) of the replaying process; baseline: 1,000 lines"))
    return out


ROWS = [bench_growth]
