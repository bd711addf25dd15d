"""One vocabulary for the state of a job and of a run, whatever the backend and whoever reads it.

Job states are the columns of ``pegasus-status``::

    unready  ready  pre  queued  running  post  succeeded  failed

Every ``job_state`` event carries one of them (both backends write them, see
:func:`mlwf_nb.rundir.events.job_state_event`), every job of a status dictionary
has one, and a ``jobstate.log`` record maps to one through :data:`PEGASUS_STATES`.
Run states are Pegasus's ``dags.root.state`` values (Running, Success, Failure)
plus what only a run directory knows: Planned (written, never started), Planning
and PlanFailed (``pegasus-plan`` running or refused), Cancelled, and Lost (the
local executor died without finishing: ``mlwf resume`` continues it).

:func:`totals` is the one count of jobs by state, in the shape of
``Pegasus.client.status``'s ``totals``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "JOB_STATES", "FINAL_JOB_STATES", "RUN_STATES", "FINAL_STATES", "PEGASUS_STATES", "TOTALS_KEYS",
    "job_state", "check_job_state", "totals", "dag_state", "exit_reason",
]

JOB_STATES: tuple[str, ...] = ("unready", "ready", "pre", "queued", "running", "post", "succeeded", "failed")
FINAL_JOB_STATES = frozenset({"succeeded", "failed"})
"""A job in one of these has ended (a failed job may still be retried: a new ``queued`` follows)."""
RUN_STATES: tuple[str, ...] = ("Planned", "Planning", "PlanFailed", "Running", "Success", "Failure",
                               "Cancelled", "Lost")
FINAL_STATES = frozenset({"Success", "Failure", "Cancelled", "Lost", "PlanFailed"})
"""A run in one of these runs nothing more until it is resumed (Lost, Failure, Cancelled) or re-planned."""

PEGASUS_STATES: Mapping[str, str] = MappingProxyType({
    "PRE_SCRIPT_STARTED": "pre", "PRE_SCRIPT_TERMINATED": "pre", "PRE_SCRIPT_SUCCESS": "pre",
    "PRE_SCRIPT_FAILURE": "failed",
    "SUBMIT": "queued", "JOB_HELD": "queued", "JOB_RELEASED": "queued", "JOB_EVICTED": "queued",
    "EXECUTE": "running", "JOB_RECONNECTED": "running", "JOB_TERMINATED": "running",
    "JOB_SUCCESS": "succeeded", "JOB_FAILURE": "failed", "JOB_ABORTED": "failed", "SUBMIT_FAILED": "failed",
    "POST_SCRIPT_STARTED": "post", "POST_SCRIPT_TERMINATED": "post",
    "POST_SCRIPT_SUCCESS": "succeeded", "POST_SCRIPT_FAILURE": "failed",
})
"""``jobstate.log`` state (DAGMan's and pegasus-monitord's words) -> job state."""

TOTALS_KEYS: tuple[str, ...] = ("unready", "ready", "pre", "queued", "post", "succeeded", "failed")
"""The counts of ``Pegasus.client.status``'s ``totals`` (a running job counts as queued there)."""


def job_state(pegasus_state: str) -> str | None:
    """The job state of a ``jobstate.log`` record's state, or None for one that says nothing (unknown)."""
    return PEGASUS_STATES.get(pegasus_state)


def check_job_state(state: str) -> str:
    """``state`` if it is one of :data:`JOB_STATES`.

    Raises:
        ValueError: any other word (a writer that speaks another vocabulary is a bug).
    """
    if state not in JOB_STATES:
        raise ValueError(f"job state {state!r} is not one of {', '.join(JOB_STATES)}")
    return state


def totals(states: Iterable[str], *, total: int | None = None, ready: int = 0) -> dict[str, Any]:
    """Counts of jobs by state in the shape of ``Pegasus.client.status``'s ``totals``.

    Args:
        states: the state of every job known (one of :data:`JOB_STATES` each).
        total: the number of jobs of the workflow, when more than those listed; jobs not
            listed count as unready.
        ready: how many of the unready jobs have all their parents done (they count as ready).

    Returns:
        ``{unready, ready, pre, queued, post, succeeded, failed, percent_done, total}``;
        a running job counts as queued, as in ``pegasus-status``.
    """
    c = dict.fromkeys(TOTALS_KEYS, 0)
    n = 0
    for state in states:
        c["queued" if state == "running" else state] += 1
        n += 1
    n_total = max(n, total or 0)
    c["unready"] += n_total - n
    moved = min(ready, c["unready"])
    c["unready"] -= moved
    c["ready"] += moved
    out: dict[str, Any] = dict(c)
    out["percent_done"] = round(c["succeeded"] / n_total * 100, 2) if n_total else 0.0
    out["total"] = n_total
    return out


def dag_state(exit_code: int | None, failed: int) -> str:
    """Pegasus's ``dags.root.state`` from DAGMan's exit code (None: still running) and failed jobs."""
    if exit_code is None:
        return "Running"
    return "Success" if exit_code == 0 and failed == 0 else "Failure"


_EXIT_MEANINGS = {65: "bad input (exit 65): not retried, the same input fails the same way",
                  75: "stopped to checkpoint (exit 75); the retry resumes"}


def exit_reason(exit_code: int | None, stderr_tail: str = "") -> str:
    """Why a job ended, in one line: its signal, a known exit status, or the last error line of its stderr.

    A job killed by a signal says so (``killed by signal 9 (SIGKILL)``) rather than quote the
    last line it happened to print (often a TensorFlow INFO line).
    """
    import signal

    if exit_code is not None and exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-exit_code} ({name})"
    lines = [line.strip() for line in (stderr_tail or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or line.startswith(("Traceback", "mlwf"))]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    known = _EXIT_MEANINGS.get(exit_code or 0, "")
    return "; ".join(part for part in (known, last) if part) or (f"exit {exit_code}" if exit_code else "")
