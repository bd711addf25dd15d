"""Synthetic workflows for the backend rows: run directories of no-op, sleep or Python jobs.

:func:`write_run` writes ``workflow.yml`` + ``transformations.yml`` for a list of
job argument lists and edges (Pegasus API), exactly what the local executor reads;
:func:`timed_execute` runs one through :class:`~mlwf_nb.backends._executor.Executor`
in this process and checks every job succeeded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["write_run", "wide", "chain", "rounds", "in_run_dir", "timed_execute"]


def write_run(root: Path, jobs: Sequence[Sequence[str]], edges: Sequence[tuple[int, int]] = (), *,
              warm: bool = False) -> Path:
    """A run directory whose job ``i`` runs ``jobs[i]`` (argv); ``edges`` are (parent, child) indices.

    ``warm``: mark every job warm in its metadata, as the workflow builder does for Keras steps.
    """
    from Pegasus.api import Job, Transformation, TransformationCatalog, Workflow

    root.mkdir(parents=True)
    trs: dict[str, Transformation] = {}
    tc = TransformationCatalog()
    wf = Workflow(root.name)
    made = []
    for argv in jobs:
        exe = argv[0]
        if exe not in trs:
            trs[exe] = Transformation(f"t{len(trs)}", site="local", pfn=exe, is_stageable=False)
            tc.add_transformations(trs[exe])
        job = Job(trs[exe])
        if len(argv) > 1:
            job.add_args(*argv[1:])
        if warm:
            job.add_metadata(**{"mlwf.warm": "true"})
        made.append(job)
    wf.add_jobs(*made)
    for parent, child in edges:
        wf.add_dependency(made[child], parents=[made[parent]])
    cwd = os.getcwd()
    os.chdir(root)
    try:
        wf.write("workflow.yml")
        tc.write("transformations.yml")
    finally:
        os.chdir(cwd)
    return root


def wide(n: int, argv: Sequence[str] = ("/bin/true",)) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """``n`` independent jobs (fan-out)."""
    return [list(argv)] * n, []


def chain(n: int, argv: Sequence[str] = ("/bin/true",)) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """``n`` jobs, each the child of the one before."""
    return [list(argv)] * n, [(i, i + 1) for i in range(n - 1)]


def rounds(trials: int, k: int, trial_argv: Sequence[str]) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """HPO shape: propose -> K trials -> propose -> ... -> select (no-op propose/select jobs)."""
    jobs: list[list[str]] = [["/bin/true"]]
    edges: list[tuple[int, int]] = []
    prev = 0
    for start in range(0, trials, k):
        members = []
        for _ in range(min(k, trials - start)):
            jobs.append(list(trial_argv))
            members.append(len(jobs) - 1)
            edges.append((prev, len(jobs) - 1))
        jobs.append(["/bin/true"])
        prev = len(jobs) - 1
        edges.extend((m, prev) for m in members)
    return jobs, edges


@contextlib.contextmanager
def in_run_dir(run: Path) -> Iterator[None]:
    """Work in ``run`` for the block: the executor runs jobs in its own working directory,
    which is the run directory when LocalBackend starts it; in-process benchmarks do the same."""
    cwd = os.getcwd()
    os.chdir(run)
    try:
        yield
    finally:
        os.chdir(cwd)


def timed_execute(run: Path, width: int) -> float:
    """Seconds to execute ``run`` with ``width`` parallel jobs (in this process).

    Raises:
        RuntimeError: The run failed or a job did not succeed.
    """
    from mlwf_nb.backends._executor import Executor
    from mlwf_nb.backends.local import read_plan
    from mlwf_nb.rundir.jobstate import parse_jobstate

    with in_run_dir(run):
        t0 = time.perf_counter()
        code = Executor(run, jobs=width).execute()
        elapsed = time.perf_counter() - t0
    ok = sum(r.state == "POST_SCRIPT_SUCCESS" for r in parse_jobstate(run / "jobstate.log"))
    n = len(read_plan(run).jobs)
    if code != 0 or ok != n:
        raise RuntimeError(f"run {run} failed: exit {code}, {ok}/{n} jobs succeeded")
    return elapsed
