"""The embedded local backend: "Pegasus on one machine".

The workflow builder writes a Pegasus 5 abstract workflow (``workflow.yml``)
and its catalogs into the run directory; :func:`~mlwf_nb.backends.plan.read_plan` interprets
them the way ``pegasus-plan`` would for site ``local`` with symlinking and no
stage-out, and the detached executor (:mod:`mlwf_nb.backends._executor`) runs
the jobs as subprocesses. Conventions:

- jobstate name of a job: ``<transformation>_<job id>`` (``train_ID0000007``);
  its files live in ``<run>/jobs/<jobstate name>/`` (``stdout.NNN``,
  ``stderr.NNN`` per try, ``events.jsonl`` the job's own events, all tries).
- working directory of every job: the run directory; LFNs are paths in it.
- environment: inherited, plus ``env`` profiles (site ``local`` < transformation
  < job) and ``MLWF_EVENTS``, ``MLWF_JOB`` (job id), ``MLWF_RUN_DIR``, ``MLWF_TRY``.
- ``job_state`` events (:func:`~mlwf_nb.rundir.events.job_state_event`) carry ``job`` (job id),
  ``name`` (jobstate name), ``step`` (transformation), ``state`` (queued, running, succeeded
  or failed: :data:`~mlwf_nb.rundir.states.JOB_STATES`, as the pegasus relay writes them),
  ``exit_code`` and ``try`` (from 1; ``MLWF_TRY`` and the ``stdout.NNN`` files count from 0).
- relayed job events carry ``"relay": "<jobstate name>:<offset>"``, the byte
  offset just past the event in the job's own events file. A resumed executor
  takes each job's largest offset from the run's ``events.jsonl``, so every job
  event is relayed exactly once, also after a crash (seq stays contiguous).
- ``DAGMAN_FINISHED`` exit code: 0 success, 1 failure, 2 cancelled.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlwf_nb.backends._leftovers import CANCELLED_EXIT, cancel_lost
from mlwf_nb.backends.base import Backend, RunDir
from mlwf_nb.backends.plan import Plan, PlannedJob, read_plan
from mlwf_nb.errors import BackendError, RunError
from mlwf_nb.rundir.jobstate import dagman_exit, parse_jobstate, status_dict, summarize

__all__ = ["LocalBackend", "Plan", "PlannedJob", "read_plan", "executor_alive", "local_status",
           "CANCELLED_EXIT"]

_TAIL_BYTES = 2048


def executor_alive(run_dir: RunDir) -> bool:
    """True while an executor holds the lock on ``<run>/executor.log``."""
    try:
        fd = os.open(Path(run_dir) / "executor.log", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _heartbeat_age(run: Path) -> float:
    try:
        return time.time() - (run / "executor.heartbeat").stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _mlwf_state(run: Path, exit_code: int | None, stale_after: float) -> str:
    if exit_code is not None:
        return {0: "Success", CANCELLED_EXIT: "Cancelled"}.get(exit_code, "Failure")
    if not (run / "executor.pid").exists():
        return "Planned"
    if not executor_alive(run) and _heartbeat_age(run) > stale_after:
        return "Lost"
    return "Running"


def local_status(run_dir: RunDir, *, stale_after: float = 6.0) -> dict[str, Any]:
    """Status of a local run, computed from ``jobstate.log`` and ``workflow.yml``.

    Args:
        run_dir: the run directory.
        stale_after: seconds without heartbeat after which a run whose executor
            is gone counts as Lost.

    Returns:
        The ``Pegasus.client.status`` shape plus ``"mlwf": {state, jobs, failed_jobs}``.
    """
    run = Path(run_dir)
    plan = read_plan(run)
    records = parse_jobstate(run / "jobstate.log")
    summaries = summarize(records, plan.jobs)
    done = {n for n, s in summaries.items() if s.state == "succeeded"}
    ready = [n for n, s in summaries.items() if s.state == "unready"
             and all(p in done for p in plan.parents.get(n, ()))]
    code = dagman_exit(records)
    out = status_dict(summaries, exit_code=code, dagname=f"{plan.name}.dag", ready=ready)
    jobs: dict[str, Any] = {}
    for name, s in summaries.items():
        pj = plan.jobs.get(name)
        entry = {"state": s.state, "exit_code": s.exit_code, "tries": s.tries, "site": s.site,
                 "step": pj.step if pj else name.rsplit("_", 1)[0], "started": s.started,
                 "finished": s.finished}
        if s.state == "failed" and s.tries:
            entry["stderr_tail"] = _tail(run / "jobs" / name / f"stderr.{s.tries - 1:03d}")
        jobs[name] = entry
    state = _mlwf_state(run, code, stale_after)
    if state == "Lost":
        out["dags"]["root"]["state"] = "Failure"
    out["mlwf"] = {"state": state, "jobs": jobs,
                   "failed_jobs": [n for n, s in summaries.items() if s.state == "failed"]}
    return out


class LocalBackend(Backend):
    """Runs a run directory's workflow with the detached local executor."""

    name = "local"

    def submit(self, run_dir: RunDir, *, jobs: int | None = None, wait: bool = False) -> dict[str, Any]:
        """Start the executor for a fresh run (see :class:`Backend`).

        Raises:
            RunError: ``workflow.yml`` is missing.
            BackendError: the run was already submitted (use resume) or the executor failed to start.
        """
        run = Path(run_dir)
        if (run / "jobstate.log").exists() and (run / "jobstate.log").stat().st_size:
            raise BackendError(f"run {run} was already submitted (jobstate.log exists); "
                               "use resume() to continue it")
        return self._start(run, jobs, wait)

    def resume(self, run_dir: RunDir, *, wait: bool = False, jobs: int | None = None) -> dict[str, Any]:
        """Start the executor again; jobs that already succeeded are skipped (rescue DAG)."""
        return self._start(Path(run_dir), jobs, wait)

    def status(self, run_dir: RunDir, *, stale_after: float = 6.0) -> dict[str, Any]:
        """See :func:`local_status`."""
        return local_status(run_dir, stale_after=stale_after)

    def state(self, run_dir: RunDir, *, stale_after: float = 6.0) -> str:
        """Planned, Running or Lost from the executor's lock and heartbeat (no log is read).

        A finished run has said so in ``events.jsonl`` before its executor let go of the lock.
        """
        return _mlwf_state(Path(run_dir), None, stale_after)

    def cancel(self, run_dir: RunDir, *, timeout: float = 30.0) -> None:
        """Stop the run: running jobs are killed and the run finishes as Cancelled.

        With its executor alive, the executor is signalled and this blocks until it has
        exited (at most ``timeout`` seconds). A Lost run (its executor died) still has
        its jobs: they are found by process group and killed, and the cancel is recorded
        (:func:`~mlwf_nb.backends._leftovers.cancel_lost`).

        Raises:
            BackendError: the run was never started, or already finished.
        """
        run = Path(run_dir)
        pid = _read_pid(run)
        if pid is None:
            raise BackendError(f"run {run} was never started; nothing to cancel")
        if not executor_alive(run):
            cancel_lost(run)
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        _wait_unlocked(run, timeout)

    def _start(self, run: Path, jobs: int | None, wait: bool) -> dict[str, Any]:
        if not (run / "workflow.yml").is_file():
            raise RunError(f"{run / 'workflow.yml'} not found; write the workflow into the run directory first")
        if executor_alive(run):
            raise BackendError(f"an executor is still running for {run} (pid {_read_pid(run)}); "
                               "cancel it or wait for it to finish")
        read_plan(run)  # raise WorkflowError here, not in the detached process
        proc = _spawn(run, jobs)
        if wait:
            proc.wait()
        else:  # reaped when it ends: a notebook kernel that started the run keeps no <defunct> child
            threading.Thread(target=proc.wait, name=f"mlwf-reap-{proc.pid}", daemon=True).start()
        return local_status(run)


def _read_pid(run: Path) -> int | None:
    try:
        return int((run / "executor.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _spawn(run: Path, jobs: int | None) -> subprocess.Popen[bytes]:
    """Start the detached executor; return once it has written ``executor.pid``."""
    r, w = os.pipe()
    cmd = [sys.executable, "-m", "mlwf_nb.backends._executor", str(run.resolve()), "--notify-fd", str(w)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    with open(run / "executor.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(w,),
                                start_new_session=True, cwd=run)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        ready = pipe.read()  # the executor writes its pid and closes its end; EOF alone = it died
    if not ready.strip():
        proc.wait()
        raise BackendError(f"the local executor for {run} exited with {proc.returncode} before starting; "
                           f"see {run / 'executor.log'}:\n{_tail(run / 'executor.log')}")
    return proc


def _wait_unlocked(run: Path, timeout: float) -> None:
    """Block (without polling) until no executor holds the lock, or ``timeout`` passes."""
    def take() -> None:
        with open(run / "executor.log", "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise BackendError(f"the executor for {run} did not stop within {timeout} s; "
                           f"kill process group {_read_pid(run)} by hand")
