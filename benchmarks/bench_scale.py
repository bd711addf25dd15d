"""Scale: the `cpu` preset's data jobs on the local backend at 1, 2, ... all cores.

The run is planned from the ``cpu`` preset (12 scenes of 384 x 384); the executor
runs integrity, split, histogram, fit-stretch and the 12 preprocess jobs (the fan-out; train
and evaluate are left out: they are one job each). The row reports the preprocess
phase (first preprocess start to last preprocess end, from ``events.jsonl``) at
each width against width 1.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import result, row
from benchmarks._workflows import in_run_dir

__all__ = ["ROWS", "bench_scale"]

PHASE = "preprocess"


def _subplan(run: Path) -> Any:
    """The run's plan restricted to the preprocess jobs and everything they need."""
    from mlwf_nb.backends.local import Plan, read_plan

    plan = read_plan(run)
    keep = {n for n, j in plan.jobs.items() if j.step == PHASE}
    todo = list(keep)
    while todo:
        for parent in plan.parents.get(todo.pop(), ()):
            if parent not in keep:
                keep.add(parent)
                todo.append(parent)
    return Plan(plan.name, {n: plan.jobs[n] for n in plan.jobs if n in keep},
                {n: [p for p in v if p in keep] for n, v in plan.parents.items() if n in keep},
                {n: [c for c in v if c in keep] for n, v in plan.children.items() if n in keep})


def _phase_seconds(run: Path) -> float:
    starts, ends = [], []
    for line in (run / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("type") == "job_state" and ev.get("step") == PHASE:
            (starts if ev["state"] == "running" else ends if ev["state"] in ("succeeded", "failed") else []).append(
                ev["ts"])
    return max(ends) - min(starts)


@row("scale")
def bench_scale(quick: bool) -> list[dict[str, Any]]:
    """Preprocess fan-out wall time at each width, against width 1."""
    from mlwf_nb.backends._executor import Executor
    from mlwf_nb.runs import plan
    from mlwf_nb.spec import RunSpec

    cores = os.cpu_count() or 1
    widths = sorted({1, 2, cores})
    spec = RunSpec.from_preset("tiny" if quick else "cpu")
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as d:
        for w in widths:
            run = plan(spec, Path(d) / f"w{w}", generate=True)
            with in_run_dir(run):
                code = Executor(run, jobs=w, plan=_subplan(run)).execute()
            if code != 0:
                raise RuntimeError(f"scale run at width {w} failed (exit {code}); see {run}/jobs")
            times[w] = _phase_seconds(run)
    out = []
    for w in widths:
        speedup = times[1] / times[w]
        out.append(result("scale", f"{spec.name} preset preprocess fan-out, {w} of {cores} cores", times[1],
                          times[w], "s", "report", None, ratio=speedup,
                          note=f"ratio column = speedup over 1 core (ideal {w}); load average "
                               f"{os.getloadavg()[0]:.1f}: the machine is shared, so speedups are lower bounds"))
    return out


ROWS = [bench_scale]
