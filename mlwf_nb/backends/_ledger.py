"""The local executor's records of a run, as DAGMan and Pegasus keep them.

:func:`read_past` reads what an earlier executor of the run booked in ``jobstate.log`` (done
jobs, try counts, the last condor cluster and sequence number), so a resumed run goes on from
there. :class:`Ledger` books each try of a job (SUBMIT, EXECUTE, then success, failure or abort
with the POST script's lines, as DAGMan writes them) in ``jobstate.log`` and the matching
``job_state`` event, and the run's start and end, in ``events.jsonl``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf_nb.backends._leftovers import CANCELLED_EXIT
from mlwf_nb.backends._spawn import Running
from mlwf_nb.backends.plan import PlannedJob
from mlwf_nb.rundir.events import EventWriter, job_state_event
from mlwf_nb.rundir.jobstate import JobStateWriter, parse_jobstate, summarize

__all__ = ["Ledger", "Past", "read_past", "SITE"]

SITE = "local"


@dataclass
class Past:
    """What ``jobstate.log`` holds of earlier executors of the run."""

    done: set[str]
    tries: dict[str, int]
    cluster: int
    seq: int
    unfinished: set[str]
    resumed: bool


def read_past(run: Path) -> Past:
    """Read jobstate.log: done jobs, try counts, condor cluster and submit sequence."""
    records = parse_jobstate(run / "jobstate.log")
    summaries = summarize(records)
    return Past(
        done={n for n, s in summaries.items() if s.state == "succeeded"},
        tries={n: s.tries for n, s in summaries.items()},
        cluster=max((int(r.info.split(".")[0]) for r in records
                     if r.info and "." in r.info and r.info.split(".")[0].isdigit()), default=0),
        seq=max((r.seq for r in records if r.seq is not None), default=0),
        unfinished={n for n, s in summaries.items() if s.state not in ("succeeded", "failed")},
        resumed=bool(records))


class Ledger:
    """Books a run's jobs in ``jobstate.log`` and ``events.jsonl`` (a context manager that holds both open)."""

    def __init__(self, run: Path) -> None:
        self.run = run

    def __enter__(self) -> Ledger:
        with contextlib.ExitStack() as stack:
            self.jobstate = stack.enter_context(JobStateWriter(self.run / "jobstate.log"))
            self.events = stack.enter_context(EventWriter(self.run / "events.jsonl"))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)

    def job_event(self, pj: PlannedJob, state: str, try_: int, exit_code: int | None = None) -> None:
        """A ``job_state`` event for try ``try_`` (0-based here, 1-based in the event as on Pegasus).

        A failed try names its stderr file (relative to the run directory) for the readers.
        """
        extra = {"stderr": pj.stderr or f"jobs/{pj.name}/stderr.{try_:03d}"} if state == "failed" else {}
        self.events.write(job_state_event(job=pj.id, name=pj.name, step=pj.step, state=state,
                                          exit_code=exit_code, try_=try_ + 1, **extra))

    def submitted(self, name: str, pj: PlannedJob, r: Running) -> None:
        """SUBMIT: the try is queued."""
        self.jobstate.jobs(name, (("SUBMIT", r.cid),), SITE, r.seq)
        self.job_event(pj, "queued", r.try_)

    def executing(self, name: str, pj: PlannedJob, r: Running) -> None:
        """EXECUTE: the try's process started (or was about to and could not)."""
        self.jobstate.jobs(name, (("EXECUTE", r.cid),), SITE, r.seq)
        self.job_event(pj, "running", r.try_)

    def ended(self, name: str, pj: PlannedJob, r: Running, rc: int, aborted: bool) -> int:
        """The try ended with exit code ``rc`` (killed by cancel when ``aborted``); the code booked."""
        if aborted:
            self.jobstate.jobs(name, (("JOB_ABORTED", r.cid), ("JOB_FAILURE", -9)), SITE, r.seq)
            rc = rc if rc else -9
        else:
            ok = rc == 0
            self.jobstate.jobs(name, (("JOB_TERMINATED", r.cid), ("JOB_SUCCESS" if ok else "JOB_FAILURE", rc),
                                      ("POST_SCRIPT_STARTED", r.cid), ("POST_SCRIPT_TERMINATED", r.cid),
                                      ("POST_SCRIPT_SUCCESS", 0) if ok else ("POST_SCRIPT_FAILURE", 1)), SITE, r.seq)
        self.job_event(pj, "succeeded" if rc == 0 else "failed", r.try_, rc)
        return rc

    def run_started(self, cluster: int, **fields: Any) -> None:
        """DAGMAN_STARTED and the ``run_started`` event (``jobs``, ``total``, ``resumed``, ``width``)."""
        self.jobstate.internal("DAGMAN_STARTED", f"{cluster}.0")
        self.events.write({"type": "run_started", **fields})

    def run_finished(self, code: int, failed: list[str]) -> str:
        """DAGMAN_FINISHED with DAGMan's exit code and the ``run_finished`` event; the run's final state."""
        self.jobstate.internal("DAGMAN_FINISHED", code)
        state = {0: "Success", CANCELLED_EXIT: "Cancelled"}.get(code, "Failure")
        self.events.write({"type": "run_finished", "state": state, "failed_jobs": failed})
        return state
