"""Pegasus's ``jobstate.log``: parse, follow, write and summarise it.

The format is the one DAGMan and ``pegasus-monitord`` write into a submit
directory, one record a line::

    1677911044 ls_ID0000001 SUBMIT 3.0 condorpool - 2
    1677911064 ls_ID0000001 JOB_FAILURE 2 condorpool - 2
    1677911023 INTERNAL *** DAGMAN_STARTED 1.0 ***

Columns: unix time, job name (``<transformation>_<job id>`` for compute jobs),
state, condor id (``<cluster>.0``) or exit code (for ``*_SUCCESS``/``*_FAILURE``),
site, ``-``, job submit sequence number. ``INTERNAL`` lines mark DAGMan and
monitord starting and finishing. This module is backend-neutral: the local
executor writes the file, and both the local and the Pegasus backends read it.
Parsing uses ``str.split`` only, so a 100,000-line log parses in well under a second.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from mlwf_nb.rundir.states import FINAL_JOB_STATES, PEGASUS_STATES, dag_state, totals

__all__ = [
    "INTERNAL",
    "EXIT_STATES",
    "JobStateRecord",
    "JobSummary",
    "parse_line",
    "parse_jobstate",
    "JobStateReader",
    "JobStateWriter",
    "summarize",
    "dagman_exit",
    "status_dict",
]

INTERNAL = "INTERNAL"
EXIT_STATES = frozenset({"JOB_SUCCESS", "JOB_FAILURE", "POST_SCRIPT_SUCCESS", "POST_SCRIPT_FAILURE",
                         "PRE_SCRIPT_SUCCESS", "PRE_SCRIPT_FAILURE"})



class JobStateRecord(NamedTuple):
    """One line of ``jobstate.log``.

    For ``INTERNAL`` lines ``state`` is the marker (``DAGMAN_STARTED``), ``info``
    its argument (``"1.0"`` or an exit code, may be empty), ``site`` is empty and
    ``seq`` is None.
    """

    ts: int
    job: str
    state: str
    info: str
    site: str
    seq: int | None

    @property
    def is_internal(self) -> bool:
        """True for ``INTERNAL *** ... ***`` lines."""
        return self.job == INTERNAL

    @property
    def exit_code(self) -> int | None:
        """The exit code of ``*_SUCCESS``/``*_FAILURE``/``DAGMAN_FINISHED`` records, else None."""
        if self.state in EXIT_STATES or self.state in ("DAGMAN_FINISHED", "MONITORD_FINISHED"):
            try:
                return int(self.info)
            except ValueError:
                return None
        return None

    @property
    def condor_id(self) -> str | None:
        """The ``<cluster>.<proc>`` id of non-exit records, else None."""
        return None if self.state in EXIT_STATES or not self.info or self.is_internal else self.info

    def format(self) -> str:
        """The record as one jobstate.log line (without newline)."""
        if self.is_internal:
            arg = f" {self.info}" if self.info else ""
            return f"{self.ts} {INTERNAL} *** {self.state}{arg} ***"
        return f"{self.ts} {self.job} {self.state} {self.info} {self.site} - {self.seq}"


def parse_line(line: str) -> JobStateRecord | None:
    """Parse one jobstate.log line; returns None for blank or malformed lines."""
    parts = line.split()
    if len(parts) < 3:
        return None
    try:
        ts = int(parts[0])
    except ValueError:
        return None
    if parts[1] == INTERNAL:
        # "<ts> INTERNAL *** DAGMAN_STARTED 1.0 ***"
        inner = [p for p in parts[2:] if p != "***"]
        if not inner:
            return None
        return JobStateRecord(ts, INTERNAL, inner[0], " ".join(inner[1:]), "", None)
    if len(parts) < 7:
        return None
    try:
        seq = int(parts[6])
    except ValueError:
        seq = None
    return JobStateRecord(ts, parts[1], parts[2], parts[3], parts[4], seq)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small tuples (it would rescan them repeatedly)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse_text(text: str) -> list[JobStateRecord]:
    with _no_gc():
        return _parse_lines(text)


def _parse_lines(text: str) -> list[JobStateRecord]:
    out: list[JobStateRecord] = []
    append = out.append
    make = tuple.__new__
    cls = JobStateRecord
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[1] != INTERNAL:  # fast path: an ordinary job line
            try:
                append(make(cls, (int(parts[0]), parts[1], parts[2], parts[3], parts[4], int(parts[6]))))
                continue
            except ValueError:
                pass
        rec = parse_line(line)
        if rec is not None:
            append(rec)
    return out


def parse_jobstate(path: str | os.PathLike[str]) -> list[JobStateRecord]:
    """Parse a whole ``jobstate.log`` (missing file: empty list)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _parse_text(fh.read())
    except FileNotFoundError:
        return []


class JobStateReader:
    """Follow a ``jobstate.log`` from a byte offset; ``poll()`` returns only new whole lines."""

    def __init__(self, path: str | os.PathLike[str], offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset

    def poll(self, max_bytes: int = -1) -> list[JobStateRecord]:
        """Return the records appended since the last call (never blocks); at most ``max_bytes`` read."""
        from mlwf_nb._io import read_appended

        chunk, self.offset = read_appended(self.path, self.offset, max_bytes)
        return _parse_text(chunk.decode("utf-8", errors="replace")) if chunk else []


class JobStateWriter:
    """Append records to a ``jobstate.log``; buffered, flushed by :meth:`flush` (no fsync).

    The file is an append-only log, so it is written in place rather than atomically.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115

    def job(self, job: str, state: str, info: str | int, site: str, seq: int,
            ts: int | None = None) -> JobStateRecord:
        """Append a job record and return it."""
        rec = JobStateRecord(int(time.time()) if ts is None else ts, job, state, str(info), site, seq)
        self._fh.write(rec.format() + "\n")
        return rec

    def jobs(self, job: str, states: Iterable[tuple[str, str | int]], site: str, seq: int) -> None:
        """Append one record per ``(state, info)`` for ``job``, all stamped now (the executor's hot path)."""
        head, tail = f"{int(time.time())} {job} ", f" {site} - {seq}\n"
        self._fh.write("".join(f"{head}{state} {info}{tail}" for state, info in states))

    def internal(self, marker: str, arg: str | int = "", ts: int | None = None) -> JobStateRecord:
        """Append an ``INTERNAL *** MARKER arg ***`` line and return it."""
        rec = JobStateRecord(int(time.time()) if ts is None else ts, INTERNAL, marker, str(arg), "", None)
        self._fh.write(rec.format() + "\n")
        return rec

    def flush(self) -> None:
        """Hand buffered lines to the OS (readers see them; no fsync)."""
        self._fh.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()

    def __enter__(self) -> JobStateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class JobSummary:
    """What the log says about one job.

    ``state`` is one of :data:`~mlwf_nb.rundir.states.JOB_STATES` (never ``ready``: that needs the DAG).
    ``tries`` counts SUBMIT records; ``exit_code`` is the last job exit code.
    """

    state: str = "unready"
    exit_code: int | None = None
    tries: int = 0
    site: str | None = None
    started: int | None = None
    finished: int | None = None


_UNREADY = JobSummary()


def _apply(s: JobSummary, rec: JobStateRecord) -> None:
    state = rec.state
    new = PEGASUS_STATES.get(state)
    if new is None:
        return
    if state == "SUBMIT":
        s.tries += 1
        s.finished = None
    elif state == "EXECUTE":
        s.started = rec.ts
    if state in EXIT_STATES:
        code = rec.exit_code
        if state.startswith("JOB_") or s.exit_code in (None, 0):
            s.exit_code = code
    elif state == "JOB_ABORTED" and s.exit_code is None:
        s.exit_code = -9
    s.state = new
    s.site = rec.site or s.site
    s.finished = rec.ts if new in FINAL_JOB_STATES else None


def summarize(records: Iterable[JobStateRecord],
              job_names: Iterable[str] | None = None) -> dict[str, JobSummary]:
    """Fold records into one :class:`JobSummary` per job.

    Args:
        records: jobstate records in file order.
        job_names: every job of the workflow; those never seen are "unready".
            Jobs seen in the log but not listed are included too.

    Returns:
        ``{job name: JobSummary}``, listed jobs first in the given order.
    """
    with _no_gc():
        out: dict[str, JobSummary] = {name: JobSummary() for name in job_names or ()}
        for rec in records:
            if rec.job == INTERNAL:
                continue
            s = out.get(rec.job)
            if s is None:
                s = out[rec.job] = JobSummary()
            _apply(s, rec)
    return out


def dagman_exit(records: Iterable[JobStateRecord]) -> int | None:
    """Exit code of the last ``DAGMAN_FINISHED`` if no DAGMan started after it, else None."""
    code: int | None = None
    for rec in records:
        if rec.job != INTERNAL:
            continue
        if rec.state == "DAGMAN_STARTED":
            code = None
        elif rec.state == "DAGMAN_FINISHED":
            code = rec.exit_code if rec.exit_code is not None else 1
    return code


def status_dict(summaries: Mapping[str, JobSummary], *, exit_code: int | None,
                dagname: str = "root.dag", ready: Iterable[str] = ()) -> dict[str, Any]:
    """Build the dictionary ``Pegasus.client.status`` returns from job summaries.

    Args:
        summaries: from :func:`summarize`.
        exit_code: DAGMan's exit code (:func:`dagman_exit`), None while running.
        dagname: shown as ``dags.root.dagname``.
        ready: names of unready jobs whose parents all succeeded.

    Returns:
        ``{"totals": {...}, "dags": {"root": {..., "dagname", "state"}}}`` with
        state Running, Success or Failure.
    """
    ready_set = set(ready)
    counts = totals((s.state for s in summaries.values()),
                    ready=sum(1 for n in ready_set if summaries.get(n, _UNREADY).state == "unready"))
    root = dict(counts, dagname=dagname, state=dag_state(exit_code, counts["failed"]))
    return {"totals": counts, "dags": {"root": root}}
