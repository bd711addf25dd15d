"""Warm workers (mlwf_nb.backends._warm): jobs of warm=True steps fork from a process with Keras loaded.

Real processes throughout: the detached executor, the worker and its forked jobs.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest
from Pegasus.api import Job

from mlwf_nb.backends import _warm
from mlwf_nb.backends._leftovers import start_records
from mlwf_nb.backends.local import LocalBackend, _wait_unlocked, local_status
from mlwf_nb.steps.registry import get_step
from mlwf_nb.workflow import WARM_METADATA, mlwf_executable


def _jobs(b):
    """Two warm help jobs, a warm job with a bad option, a light job: every kind of outcome.

    Warm or not is the plan's word (job metadata ``mlwf.warm``, as the workflow builder writes it).
    """
    tr = b.transformation("mlwf", pfn=mlwf_executable())
    warm = {WARM_METADATA: "true"}
    b.wf.add_jobs(Job(tr, _id="h1").add_args("step", "train", "--help").add_metadata(**warm),
                  Job(tr, _id="h2").add_args("step", "hpo-select", "--help").add_metadata(**warm),
                  Job(tr, _id="bad").add_args("step", "evaluate", "--no-such-option", "1").add_metadata(**warm),
                  Job(tr, _id="light").add_args("step", "split", "--help"))
    return b.write()


def _started_worker(log, timeout=60.0):
    """The pid of the warm worker as soon as the executor says it started it (while it still loads)."""
    found: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            m = re.search(r"warm worker (\d+) started", log.read_text() if log.exists() else "")
            if m:
                found.append(int(m.group(1)))
                done.set()
            else:
                done.wait(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t.join(timeout)
    done.set()
    assert found, "the executor never started a warm worker"
    return found[0]


def _pids(path):
    """{job: pid as text} of the executor's ``start`` lines (the last try of each)."""
    return {name: str(pid) for name, _, pid in start_records(path)}


def _outcome(run):
    st = local_status(run)["mlwf"]["jobs"]
    return {n: (j["state"], j["exit_code"], (run / "jobs" / n / "stdout.000").read_text(),
                (run / "jobs" / n / "stderr.000").read_text().strip().splitlines()[-1:])
            for n, j in st.items()}


def test_warm_flags_only_keras_steps():
    assert get_step("train").warm and get_step("trial").warm and get_step("hpo-propose").warm
    assert not get_step("preprocess").warm and not get_step("split").warm
    assert _warm.enabled({}) and not _warm.enabled({"MLWF_WARM_WORKER": "0"})
    assert _warm.worker_key({"A": "1", "MLWF_JOB": "x", "MLWF_TRY": "0"}) == _warm.worker_key({"A": "1"})


def test_warm_jobs_fork_from_one_worker_and_end_like_fresh_processes(builder, monkeypatch):
    warm = _jobs(builder("warm"))
    LocalBackend().submit(warm, jobs=2, wait=True)
    monkeypatch.setenv("MLWF_WARM_WORKER", "0")
    cold = _jobs(builder("cold"))
    LocalBackend().submit(cold, jobs=2, wait=True)

    got, want = _outcome(warm), _outcome(cold)
    assert got == want  # same states, exit codes, stdout and last stderr line
    assert got["mlwf_h1"][0] == "succeeded" and "usage" in got["mlwf_h1"][2]
    assert got["mlwf_bad"][0] == "failed" and got["mlwf_bad"][1] != 0

    forked = set(re.findall(r"^forked (\S+) pid (\d+)$", (warm / "warm-worker.log").read_text(), re.M))
    pids = _pids(warm / "executor.log")
    assert forked == {(n, pids[n]) for n in ("mlwf_h1", "mlwf_h2", "mlwf_bad")}  # not the light job
    assert "pid" in (warm / "executor.log").read_text() and not (cold / "warm-worker.log").exists()


def test_a_worker_killed_while_loading_leaves_its_jobs_to_fresh_processes(builder):
    run = _jobs(builder())
    log = run / "executor.log"
    LocalBackend().submit(run, jobs=2, wait=False)
    os.kill(_started_worker(log), signal.SIGKILL)  # before it is ready: its jobs were never forked
    _wait_unlocked(run, 120)  # the executor holds its lock until the run ends
    jobs = local_status(run)["mlwf"]["jobs"]
    assert jobs["mlwf_h1"]["state"] == "succeeded" and jobs["mlwf_bad"]["state"] == "failed"
    assert "died: its jobs start as fresh processes" in log.read_text()
    assert jobs["mlwf_h1"]["tries"] == 1  # never forked, so started once, as a fresh process


@pytest.mark.parametrize("flag", ["0", "off"])
def test_disabled_by_environment(flag):
    assert not _warm.enabled({"MLWF_WARM_WORKER": flag})


def test_cancel_while_the_worker_loads_stops_it_with_the_run(builder):
    run = _jobs(builder())
    log = run / "executor.log"
    backend = LocalBackend()
    backend.submit(run, jobs=2, wait=False)
    pid = _started_worker(log)
    backend.cancel(run)
    st = local_status(run)["mlwf"]
    assert st["state"] == "Cancelled", st["state"]
    with pytest.raises(ProcessLookupError):  # killed and reaped by the executor before it let go of the run
        os.kill(pid, 0)
    assert all(j["state"] in ("succeeded", "failed") for j in st["jobs"].values())


def test_a_worker_killed_under_running_jobs_fails_their_try(builder):
    """The worker dies while its child runs (here: waiting to open a FIFO as stdin): the executor can
    no longer learn the child's exit, so it kills it and counts a failed try."""
    b = builder()
    run = b.root
    run.mkdir(parents=True)
    os.mkfifo(run / "never-written")
    tr = b.transformation("mlwf", pfn=mlwf_executable())
    job = Job(tr, _id="stuck").add_args("step", "train", "--help").add_metadata(**{WARM_METADATA: "true"})
    job.set_stdin("never-written")
    b.wf.add_jobs(job)
    b.write()
    log = run / "executor.log"
    LocalBackend().submit(run, jobs=1, wait=False)
    worker = _started_worker(log)
    pids = {}
    pause = threading.Event()
    for _ in range(3000):  # the child is forked once the worker has loaded (a few seconds)
        pids = _pids(log)
        if "mlwf_stuck" in pids:
            break
        pause.wait(0.02)
    assert "mlwf_stuck" in pids, log.read_text()
    os.kill(worker, signal.SIGKILL)
    _wait_unlocked(run, 60)
    job = local_status(run)["mlwf"]["jobs"]["mlwf_stuck"]
    assert (job["state"], job["exit_code"], job["tries"]) == ("failed", -9, 1)
    assert "died" in log.read_text()
    gone = threading.Event()
    for _ in range(500):  # SIGKILL was sent before the run ended; the exit itself may take a moment
        if not _alive(int(pids["mlwf_stuck"])):
            gone.set()
            break
        gone.wait(0.01)
    assert gone.is_set(), "the orphaned job is still running"


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
