"""Job start: what one short job pays through the local backend, by what it imports.

Every job of the local backend (as of a Pegasus site) is a fresh ``mlwf step``
process. Rows, each a chain of N jobs at width 1 through the executor, per job
minus a ``/bin/true`` job of the same run:

* light step: ``python -m mlwf_nb.cli step split --help`` (resolves the step,
  imports the package and the land-cover step module: what integrity, split,
  fit-stretch and preprocess pay before their own work);
* Keras step: the package + ``mlwf_nb.ml.train`` (Keras, TensorFlow) + a trivial
  call (what train, evaluate and HPO trials pay before their own work).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import result, row
from benchmarks._workflows import chain, timed_execute, write_run

__all__ = ["ROWS", "bench_job_start"]

LIGHT = [sys.executable, "-m", "mlwf_nb.cli", "step", "split", "--help"]
KERAS = [sys.executable, "-c", "import mlwf_nb.cli, mlwf_nb.steps.landcover, mlwf_nb.ml.train as t; "
         "t.seed_everything(0)"]
TUNER = [sys.executable, "-c", "import mlwf_nb.cli, keras_tuner"]


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _per_job(argv: list[str], n: int, tmp: Path, tag: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the job processes) per job."""
    jobs, edges = chain(n, argv)
    run = write_run(tmp / tag, jobs, edges)
    c0 = _cpu_children()
    wall = timed_execute(run, width=1)
    return wall / n, (_cpu_children() - c0) / n


@row("job_start")
def bench_job_start(quick: bool) -> list[dict[str, Any]]:
    """Seconds per job: light step, Keras step, keras-tuner import, against a no-op job."""
    n, repeats = (1, 1) if quick else (2, 2)
    got: dict[str, list[tuple[float, float]]] = {"noop": [], "light": [], "keras": [], "tuner": []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeats):  # interleaved: the machine's noise hits every kind alike
            for kind, argv in (("noop", ["/bin/true"]), ("light", LIGHT), ("keras", KERAS), ("tuner", TUNER)):
                got[kind].append(_per_job(argv, n, Path(d), f"{kind}{i}"))
    m = {k: statistics.median(w for w, _ in v) for k, v in got.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in got.items()}
    env = "KERAS_BACKEND=" + os.environ.get("KERAS_BACKEND", "(unset)")
    load = os.getloadavg()[0]
    note = (f"chain of {n} jobs at width 1, median of {repeats}; value = wall per job, baseline = a "
            f"/bin/true job through the same executor; {env}; load average {load:.1f} on "
            f"{os.cpu_count()} cores")
    return [
        result("job_start", "light step job (mlwf step split --help)", m["noop"], m["light"], "s/job",
               "< 1 s/job", m["light"] < 1.0,
               note=note + f"; CPU {cpu['light']:.2f} s/job; integrity/split/fit-stretch/preprocess never import Keras "
                           "(tests/ml/test_no_tensorflow.py)"),
        result("job_start", "Keras step job (package + Keras + TF, trivial work)", m["noop"], m["keras"], "s/job",
               "report", None,
               note=f"CPU {cpu['keras']:.2f} s/job; what train/evaluate/HPO-trial jobs pay before their own "
                    "work; the answer for many short jobs on a cluster is Pegasus job clustering (docs/benchmarks.md)"),
        result("job_start", "keras-tuner import job (hpo-propose/hpo-select)", m["noop"], m["tuner"], "s/job",
               "report", None,
               note=f"CPU {cpu['tuner']:.2f} s/job; keras_tuner imports Keras and TensorFlow: the HPO "
                    "steps that drive an oracle pay it"),
    ]


ROWS = [bench_job_start]
