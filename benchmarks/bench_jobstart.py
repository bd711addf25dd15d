"""Job start: what one short job pays through the local backend, by what it imports.

Every job of the local backend (as of a Pegasus site) is a fresh ``mlwf step``
process. Rows, each a chain of N jobs at width 1 through the executor, per job
minus a ``/bin/true`` job of the same run:

* light step: ``python -m mlwf_nb.cli step split --help`` (resolves the step,
  imports the package and the land-cover step module: what integrity, split,
  fit-stretch and preprocess pay before their own work);
* Keras step: the package + ``mlwf_nb.ml.train`` (Keras, TensorFlow) + a trivial
  call (what train, evaluate and HPO trials pay before their own work).

``warm`` rows: a real ``warm=True`` step with trivial work (``mlwf step
hpo-propose`` round 0 of a one-trial random search: imports keras-tuner, Keras and
TensorFlow, writes hp.json) as a fresh process (``MLWF_WARM_WORKER=0``) and
forked from the executor's warm worker. Per job: the time from its EXECUTE to its
SUCCESS event in ``events.jsonl`` (millisecond stamps); the worker's one start-up
is the time from the first SUBMIT to the first EXECUTE of the warm run.
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
from mlwf_nb.backends._warm import ENV_WARM
from mlwf_nb.rundir.events import read_events

__all__ = ["ROWS", "bench_job_start"]

LIGHT = [sys.executable, "-m", "mlwf_nb.cli", "step", "split", "--help"]
KERAS = [sys.executable, "-c", "import mlwf_nb.cli, mlwf_nb.steps.landcover, mlwf_nb.ml.train as t; "
         "t.seed_everything(0)"]
TUNER = [sys.executable, "-c", "import mlwf_nb.cli, keras_tuner"]


def _propose_chain(n: int, tmp: Path, tag: str, warm: bool) -> tuple[list[float], float]:
    """Run a chain of ``n`` real hpo-propose jobs: (seconds EXECUTE -> SUCCESS per job, first SUBMIT -> EXECUTE)."""
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.workflow import mlwf_executable

    mlwf = mlwf_executable()
    _, edges = chain(n, [mlwf])
    jobs = [[mlwf, "step", "hpo-propose", "--spec", "spec.yaml", "--hp", f"hp{i}.json", "--state-out",
             f"state{i}.json", "--round", "0"] for i in range(n)]
    run = write_run(tmp / tag, jobs, edges, warm=True)
    RunSpec.from_preset("tiny").with_overrides(
        ["hpo.strategy=random", "hpo.trials=1",
         "hpo.space=[{name: train.learning_rate, type: float, min: 0.001, max: 0.01, log: true}]"]
    ).save(run / "spec.yaml")
    old = os.environ.get(ENV_WARM)
    os.environ[ENV_WARM] = "1" if warm else "0"
    try:
        timed_execute(run, width=1)
    finally:
        if old is None:
            os.environ.pop(ENV_WARM)
        else:
            os.environ[ENV_WARM] = old
    stamps: dict[tuple[str, str], float] = {}
    for e in read_events(run / "events.jsonl"):
        if e.get("type") == "job_state":
            stamps.setdefault((e["name"], e["state"]), e["ts"])
    names = sorted({name for name, _ in stamps})
    per_job = [stamps[(n, "succeeded")] - stamps[(n, "running")] for n in names]
    first = min(stamps[(n, "running")] for n in names) - min(stamps[(n, "queued")] for n in names)
    return per_job, first


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _per_job(argv: list[str], n: int, tmp: Path, tag: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the job processes) per job."""
    jobs, edges = chain(n, argv)
    run = write_run(tmp / tag, jobs, edges, warm=True)
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
        n_warm = 3 if quick else 6
        cold, _ = _propose_chain(2, Path(d), "cold", warm=False)
        warm, startup = _propose_chain(n_warm, Path(d), "warm", warm=True)
    warm_job = statistics.median(warm)
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
        result("job_start", "warm step job forked from the warm worker (real hpo-propose round 0)",
               statistics.median(cold), warm_job, "s/job", "< 1 s/job", warm_job < 1.0,
               note=f"EXECUTE -> SUCCESS per job, median of a chain of {n_warm} at width 1 "
                    f"({', '.join(f'{t:.2f}' for t in warm)} s); baseline: the same job as a fresh process "
                    f"(MLWF_WARM_WORKER=0, {', '.join(f'{t:.2f}' for t in cold)} s)"),
        result("job_start", "warm worker start-up (once per run and job environment)", statistics.median(cold),
               startup, "s", "report", None,
               note="a chain of one warm job: the worker imports Keras, TensorFlow and keras-tuner, then forks "
                    "the job; the first warm job of a run waits for it instead of importing by itself"),
    ]


ROWS = [bench_job_start]
