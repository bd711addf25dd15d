"""No orphans: a run's jobs by process group, found and ended when their executor is gone.

Every job the local executor starts runs in a session of its own, so its process
group id is its pid, and the executor records it in ``executor.log`` before anything
else can happen to it (``start NAME try N pid P``; a warm worker's child too). When
the executor dies (SIGKILL, an out-of-memory kill, a reboot of the kernel that ran
it in process), its running jobs do not: they are the run's *leftovers*.
:func:`leftovers` finds them (a group with a live process whose environment names
this run: a pid reused by another program is never touched), :func:`end_groups`
kills them and waits until they are gone; the executor does this before a resumed
run starts anything, and :func:`cancel_lost` does it when a Lost run is cancelled,
then records the cancel in ``jobstate.log`` and ``events.jsonl`` as an executor would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mlwf_nb.errors import BackendError
from mlwf_nb.rundir.events import EventWriter, job_state_event
from mlwf_nb.rundir.jobstate import JobStateWriter, dagman_exit, parse_jobstate, summarize
from mlwf_nb.rundir.states import FINAL_JOB_STATES

__all__ = ["start_records", "group_members", "leftovers", "end_groups", "cancel_lost", "CANCELLED_EXIT"]

CANCELLED_EXIT = 2
SITE = "local"


def start_records(log: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """``(job, try, pid)`` of every ``start NAME try N pid P`` line of an ``executor.log``, in order."""
    out = []
    with contextlib.suppress(FileNotFoundError), open(log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 6 and parts[0] == "start" and parts[2] == "try" and parts[4] == "pid":
                out.append((parts[1], int(parts[3]), int(parts[5])))
    return out


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a process from ``/proc/<pid>/stat``; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0].decode(), int(fields[2])


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(entry))
    return out


def _of_run(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or another user's process: not ours to kill
        return False


def leftovers(run: Path, jobs: Iterable[str] | None = None) -> dict[str, int]:
    """``{job: process group}`` of the run's jobs that still have a live process.

    Args:
        run: the run directory.
        jobs: only these jobs (default: every job the executor ever started).
    """
    wanted = None if jobs is None else set(jobs)
    last = {name: pid for name, _, pid in start_records(run / "executor.log")
            if wanted is None or name in wanted}  # the last try of each job
    marker = f"MLWF_RUN_DIR={Path(run).resolve()}".encode()
    out = {}
    for name, pgid in last.items():
        members = group_members(pgid)
        if any(_of_run(pid, marker) for pid in members):
            out[name] = pgid
    return out


def end_groups(pgids: Iterable[int], timeout: float = 30.0) -> list[int]:
    """SIGKILL every group and wait until none has a live process; the groups still alive after ``timeout``."""
    groups = set(pgids)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while groups and time.monotonic() < deadline:
        groups = {g for g in groups if group_members(g)}
        if groups:
            pause.wait(0.02)  # SIGKILL is asynchronous: a dying process takes a moment to exit
    return sorted(groups)


def cancel_lost(run: Path) -> list[str]:
    """Cancel a run whose executor is gone: kill its leftovers, record them and the run as cancelled.

    Takes the executor's lock for the time it writes, so it is the run's only writer.

    Returns:
        The jobs recorded as aborted (those that had not ended).

    Raises:
        BackendError: an executor holds the run (it is not Lost), the run already finished,
            or a leftover would not die.
    """
    from mlwf_nb.backends.plan import read_plan

    run = Path(run).resolve()
    with open(run / "executor.log", "a", encoding="utf-8") as log:
        try:
            fcntl.flock(log.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackendError(f"an executor is running {run}; cancel it (mlwf cancel) rather than its jobs") from None
        records = parse_jobstate(run / "jobstate.log")
        summaries = summarize(records)
        unfinished = [n for n, s in summaries.items() if s.state not in FINAL_JOB_STATES]
        left = leftovers(run, unfinished)
        if dagman_exit(records) is not None and not left:
            raise BackendError(f"run {run} already finished; nothing to cancel")
        stuck = end_groups(left.values())
        if stuck:
            raise BackendError(f"run {run}: process groups {stuck} did not die on SIGKILL; see `ps -g {stuck[0]}`")
        _record_cancel(run, records, unfinished, read_plan(run))
        log.write(f"cancelled a lost run: {len(left)} leftover job(s) killed ({', '.join(sorted(left)) or 'none'}), "
                  f"{len(unfinished)} recorded as aborted\n")
    return unfinished


def _record_cancel(run: Path, records: list, unfinished: list[str], plan: object) -> None:
    """Write what a cancelling executor would have: aborted jobs, DAGMan's end, ``run_finished``."""
    jobs = getattr(plan, "jobs", {})
    last = {r.job: r for r in records if not r.is_internal}
    with JobStateWriter(run / "jobstate.log") as js, EventWriter(run / "events.jsonl") as ev:
        for name in unfinished:
            rec, pj = last[name], jobs.get(name)
            js.jobs(name, (("JOB_ABORTED", rec.info), ("JOB_FAILURE", -9)), rec.site or SITE, rec.seq or 0)
            tries = sum(1 for r in records if r.job == name and r.state == "SUBMIT")
            ev.write(job_state_event(job=pj.id if pj else name, name=name, step=pj.step if pj else name,
                                     state="failed", try_=tries, exit_code=-9))
        js.internal("DAGMAN_FINISHED", CANCELLED_EXIT)
        ev.write({"type": "run_finished", "state": "Cancelled", "failed_jobs": list(unfinished), "lost": True})
