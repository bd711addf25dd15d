"""Structured events: the ``events.jsonl`` format, its writers and its readers.

One writer per file. A job appends to its own events file, named by the
``MLWF_EVENTS`` environment variable the backend sets (no variable: events go
nowhere, so steps run fine by hand). The backend's relay is the only writer of
the run's ``events.jsonl`` and gives each event the next ``seq``. Writers append
whole lines and flush; readers follow from a byte offset and never re-read.

Event shape (version 1)::

    {"v": 1, "seq": 41, "ts": 1764230000.12, "job": "train", "type": "epoch", ...}

Types: run_started{total}, run_finished{state}, job_state{name, step, state, exit_code, try},
epoch{epoch, metrics}, checkpoint_saved{path, epoch},
checkpoint_restored{path, epoch}, trial_proposed{round, trial, hp},
trial_finished{round, trial, status, objective},
artifact{kind, path}, log{level, message},
sweep_result{index, parameters, status, records, notebook, error} (one notebook of a sweep).

A ``job_state`` event's ``state`` is one of :data:`~mlwf_nb.rundir.states.JOB_STATES`
whichever backend wrote it; ``job`` is the job id (``ID0000007``, what the job's own
events carry), ``name`` the jobstate name (``train_ID0000007``, the key readers use),
``try`` the attempt, from 1. Build them with :func:`job_state_event`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlwf_nb.rundir.states import check_job_state

__all__ = [
    "EVENT_VERSION",
    "EVENT_TYPES",
    "ENV_EVENTS",
    "ENV_JOB",
    "emit",
    "job_state_event",
    "EventWriter",
    "EventReader",
    "read_events",
    "last_seq",
]

EVENT_VERSION = 1
EVENT_TYPES = frozenset({
    "run_started", "run_finished", "job_state", "epoch", "checkpoint_saved",
    "checkpoint_restored", "trial_proposed", "trial_started", "trial_finished",
    "artifact", "log", "sweep_result",
})
ENV_EVENTS = "MLWF_EVENTS"
ENV_JOB = "MLWF_JOB"


_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str).encode  # built once: C encoder


def _line(event: dict[str, Any]) -> bytes:
    return (_ENCODE(event) + "\n").encode()


def emit(type: str, **fields: Any) -> dict[str, Any]:
    """Append one event from inside a job to the file named by ``$MLWF_EVENTS``.

    Returns the event (also when no file is configured, so callers can log it).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; expected one of {sorted(EVENT_TYPES)}")
    event: dict[str, Any] = {"v": EVENT_VERSION, "ts": round(time.time(), 3),
                             "job": os.environ.get(ENV_JOB, ""), "type": type, **fields}
    if os.environ.get("_CONDOR_CHIRP_CONFIG"):  # an HTCondor job: progress also as a job attribute
        from mlwf_nb import chirp

        chirp.publish(event)
    target = os.environ.get(ENV_EVENTS)
    if target:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, _line(event))
        finally:
            os.close(fd)
    return event


def job_state_event(*, job: str, name: str, step: str, state: str, try_: int,
                    exit_code: int | None = None, **extra: Any) -> dict[str, Any]:
    """A ``job_state`` event (the one shape both backends write).

    Raises:
        ValueError: ``state`` is not one of :data:`~mlwf_nb.rundir.states.JOB_STATES`.
    """
    return {"job": job, "type": "job_state", "name": name, "step": step, "state": check_job_state(state),
            "exit_code": exit_code, "try": int(try_), **extra}


class EventWriter:
    """The single writer of a run's ``events.jsonl``: numbers events with ``seq``.

    On open it finds the last ``seq`` already in the file (reading only its tail),
    so a resumed backend continues the sequence with no gap and no repeat. A
    torn last line (a writer killed mid-line) is cut off first.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.seq = _repair_and_last_seq(self.path)
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - long-lived handle

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        """Give ``event`` the next seq (and v/ts if missing), append it, return it."""
        self.seq += 1
        out = {"v": EVENT_VERSION, "seq": self.seq}
        out["ts"] = event.get("ts", round(time.time(), 3))
        out.update({k: v for k, v in event.items() if k not in ("v", "seq", "ts")})
        self._fh.write(_line(out))
        return out

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _repair_and_last_seq(path: Path) -> int:
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        block = min(size, 65536)
        fh.seek(size - block)
        tail = fh.read(block)
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            new_size = size - block + cut + 1 if cut >= 0 else 0
            fh.truncate(new_size)
            tail = tail[: cut + 1] if cut >= 0 else b""
    return _tail_seq(tail)


def last_seq(path: str | os.PathLike[str]) -> int:
    """The ``seq`` of the last whole event of ``path`` (0: none yet), read from its tail; nothing is changed."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            block = min(size, 65536)
            fh.seek(size - block)
            tail = fh.read(block)
    except FileNotFoundError:
        return 0
    return _tail_seq(tail[: tail.rfind(b"\n") + 1])


def _tail_seq(tail: bytes) -> int:
    for raw in reversed(tail.splitlines()):
        try:
            return int(json.loads(raw)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


class EventReader:
    """Follow a JSON-lines file from a byte offset; returns only whole new lines.

    ``poll()`` never blocks and never re-reads what it has returned before, so a
    monitor thread can call it at a bounded rate. A partial last line is kept
    back until its newline arrives.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset

    def poll(self, max_bytes: int = 8 << 20) -> list[dict[str, Any]]:
        """Return the events appended since the last call (possibly none)."""
        from mlwf_nb._io import read_appended

        chunk, self.offset = read_appended(self.path, self.offset, max_bytes)
        return _parse_lines(chunk)


def _parse_lines(chunk: bytes) -> list[Any]:
    """The JSON value of every non-blank line; lines that do not parse are skipped."""
    lines = [raw for raw in chunk.splitlines() if raw.strip()]
    if not lines:
        return []
    try:  # the whole chunk as one JSON array: a third of the time of a json.loads a line
        batch = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        batch = None
    if isinstance(batch, list) and len(batch) == len(lines) and all(isinstance(e, dict) for e in batch):
        return batch
    events = []  # some line is not an event (torn, corrupt): parse line by line and skip those
    for raw in lines:
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue
    return events


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield every complete event in a file, in order."""
    reader = EventReader(path)
    while True:
        batch = reader.poll()
        if not batch:
            return
        yield from batch
