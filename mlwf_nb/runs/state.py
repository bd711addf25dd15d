"""What a run monitor knows, and the background follower that feeds it.

Nothing here imports ipywidgets: :class:`RunState` folds events (and Pegasus
``jobstate.log`` records) into plain data, and :class:`RunFollower` tails a run
directory's files from a daemon thread, batching what it reads and handing it
to a callback at a bounded rate. The :class:`~mlwf_nb.widgets.RunMonitor`
widget wires the two to traits; tests and scripts can use them directly.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from mlwf_nb._io import read_json
from mlwf_nb.rundir.events import EventReader
from mlwf_nb.rundir.states import FINAL_STATES, JOB_STATES, PEGASUS_STATES

__all__ = ["RunState", "RunFollower", "RunLengthList", "read_image", "JOB_STATES", "FINAL_STATES"]

def _norm_state(state: str) -> str:
    """A job state of the one vocabulary; a ``jobstate.log`` word is mapped, anything else is ``unready``."""
    s = str(state)
    return s if s in JOB_STATES else PEGASUS_STATES.get(s, "unready")


T = TypeVar("T")


class RunLengthList(Sequence[T], Generic[T]):
    """An append-only list kept as runs of values, not one entry a value.

    With ``step=1``, consecutive integers (1, 2, 3, ...) take one entry; with
    ``step=0``, repeats of one value do. :class:`RunState` keeps the ``seq`` and
    the type of every event it applied in two of these, so a replay of a long run
    holds a few runs, not an object an event. Reads like a list (``len``,
    indexing, iteration, ``==`` with a list).
    """

    __slots__ = ("_firsts", "_len", "_offsets", "_step")

    def __init__(self, items: Sequence[T] = (), *, step: int = 0) -> None:
        self._firsts: list[Any] = []  # first value of each run
        self._offsets: list[int] = []  # index of each run's first value
        self._len = 0
        self._step = step
        for item in items:
            self.append(item)

    def append(self, value: T) -> None:
        """Add ``value`` at the end (extends the last run when it continues it)."""
        if self._firsts:
            first = self._firsts[-1]
            nxt = first + (self._len - self._offsets[-1]) * self._step if self._step else first
            if type(value) is type(first) and value == nxt:
                self._len += 1
                return
        self._firsts.append(value)
        self._offsets.append(self._len)
        self._len += 1

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self)[index]
        i = index + self._len if index < 0 else index
        if not 0 <= i < self._len:
            raise IndexError("RunLengthList index out of range")
        run = bisect.bisect_right(self._offsets, i) - 1
        first = self._firsts[run]
        return first + (i - self._offsets[run]) * self._step if self._step else first  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[T]:
        ends = [*self._offsets[1:], self._len] if self._firsts else []
        for first, start, end in zip(self._firsts, self._offsets, ends, strict=True):
            if self._step:
                yield from range(first, first + (end - start) * self._step, self._step)  # type: ignore[misc]
            else:
                for _ in range(end - start):
                    yield first

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunLengthList | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass
class RunState:
    """Plain-data summary of everything seen so far in a run directory."""

    seqs: RunLengthList[int] = field(default_factory=lambda: RunLengthList(step=1))  # of every event applied
    types: RunLengthList[str] = field(default_factory=RunLengthList)  # of every event applied
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_id: dict[str, str] = field(default_factory=dict, repr=False)  # job id -> Pegasus job name
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    trials: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    confusion: dict[str, Any] | None = None
    segmentation: dict[str, Any] | None = None
    maps: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    state: str = "Planned"
    finished: bool = False
    jobstate_lines: int = 0
    run_dir: Path | None = None

    def apply(self, events: list[dict[str, Any]]) -> set[str]:
        """Fold new events in (an event whose seq was seen already is skipped); returns changed parts."""
        changed: set[str] = set()
        last = self.seqs[-1] if self.seqs else 0
        for ev in events:
            seq = ev.get("seq")
            if isinstance(seq, int):
                if seq <= last:
                    continue
                last = seq
                self.seqs.append(seq)
            self.types.append(str(ev.get("type")))
            part = self._one(ev)
            if part:
                changed.update(part)
        if changed:
            changed.add("events")
        return changed

    def _one(self, ev: dict[str, Any]) -> set[str]:
        kind = ev.get("type")
        if kind == "run_started":
            self.state = "Running"
            return {"state"}
        if kind == "run_finished":
            self.state = str(ev.get("state", "Success"))
            self.finished = True
            return {"state"}
        if kind == "job_state":
            full, jid = ev.get("name"), ev.get("job")
            if full and jid:
                self._by_id.setdefault(str(jid), str(full))
            name = self._job_key(str(full or jid or "?"))
            entry = self.jobs.get(name)
            if entry is None:
                entry = self.jobs[name] = {"state": "unready", "exit_code": None, "tries": 0,
                                           "step": ev.get("step") or name.rsplit("_", 1)[0]}
            entry["state"] = _norm_state(ev.get("state", ""))
            if ev.get("exit_code") is not None:
                entry["exit_code"] = ev.get("exit_code")
            if ev.get("try") is not None:
                entry["tries"] = max(int(entry.get("tries") or 0), int(ev["try"]))
            return {"jobs"}
        if kind == "epoch":
            self.epochs.append(int(ev.get("epoch", len(self.epochs) + 1)))
            for key, value in (ev.get("metrics") or {}).items():
                self.history.setdefault(key, []).append(float(value))
            return {"history"}
        if kind in ("checkpoint_saved", "checkpoint_restored"):
            self.checkpoints.append({"event": "saved" if kind == "checkpoint_saved" else "restored",
                                     "path": ev.get("path"), "epoch": ev.get("epoch"), "job": ev.get("job")})
            return {"checkpoints"}
        if kind in ("trial_proposed", "trial_started", "trial_finished"):
            key = f"{ev.get('round', 0)}/{ev.get('trial', '?')}"
            t = self.trials.setdefault(key, {"round": ev.get("round", 0), "trial": ev.get("trial"),
                                             "hp": {}, "status": "proposed", "objective": None})
            if ev.get("hp"):
                t["hp"] = dict(ev["hp"])
            t["status"] = {"trial_proposed": "proposed", "trial_started": "running"}.get(
                kind, str(ev.get("status", "COMPLETED")))
            if ev.get("objective") is not None:
                t["objective"] = ev.get("objective")
            return {"trials"}
        if kind == "artifact":
            self.artifacts.append(dict(ev))
            if ev.get("kind") == "confusion_matrix":
                data = ev if ev.get("matrix") is not None else _read_artifact(self.run_dir, ev.get("path"))
                if data.get("matrix") is not None:
                    self.confusion = {"matrix": data["matrix"], "classes": data.get("classes"),
                                      "colors": data.get("colors"), "path": ev.get("path")}
                    return {"artifacts", "confusion"}
            if ev.get("kind") == "segmentation":
                self.segmentation = {k: v for k, v in ev.items() if k not in ("v", "seq", "ts", "type", "kind")}
                return {"artifacts", "segmentation"}
            if ev.get("kind") == "map" and ev.get("path"):
                self.maps.append(str(_resolve(self.run_dir, ev["path"])))
                return {"artifacts", "maps"}
            return {"artifacts"}
        if kind == "log":
            self.logs.append(f"[{ev.get('level', 'info')}] {ev.get('job', '')}: {ev.get('message', '')}")
            return {"logs"}
        return set()

    def _job_key(self, name: str) -> str:
        """The job table's key for an event's job: Pegasus names are ``<step>_<id>``, events may carry the id."""
        if name in self.jobs:
            return name
        return self._by_id.get(name, name)  # O(1): a scan of every job per event is quadratic

    def apply_jobstate(self, records: list[Any]) -> set[str]:
        """Fold Pegasus ``jobstate.log`` records (``JobStateRecord``) into the job table."""
        changed = False
        jobs = self.jobs
        for rec in records:
            self.jobstate_lines += 1
            job = rec.job
            if job == "INTERNAL":
                continue
            step, sep, short = job.rpartition("_")
            if sep:
                self._by_id.setdefault(short, job)
            entry = jobs.get(job)
            if entry is None:  # the job's first record
                entry = jobs.pop(short, None) if sep else None  # the event's bare id -> Pegasus job name
                if entry is None:
                    entry = {"state": "unready", "exit_code": None, "tries": 0, "step": step if sep else job}
                jobs[job] = entry
            entry["state"] = _norm_state(rec.state)
            if rec.state == "SUBMIT":
                entry["tries"] = int(entry.get("tries") or 0) + 1
            if rec.state in ("JOB_SUCCESS", "JOB_FAILURE"):
                try:
                    entry["exit_code"] = int(rec.info)
                except ValueError:
                    pass
            changed = True
        return {"jobs"} if changed else set()

    def leaderboard(self, direction: str = "max") -> list[dict[str, Any]]:
        """Trials with an objective, best first."""
        done = [t for t in self.trials.values() if t.get("objective") is not None]
        return sorted(done, key=lambda t: float(t["objective"]), reverse=direction == "max")

    def totals(self) -> dict[str, Any]:
        """Counts by job state and percent done (Pegasus ``totals`` vocabulary)."""
        out: dict[str, Any] = {s: 0 for s in JOB_STATES}
        for j in self.jobs.values():
            out[j["state"]] = out.get(j["state"], 0) + 1
        total = len(self.jobs)
        out["total"] = total
        out["percent_done"] = 100.0 * out["succeeded"] / total if total else 0.0
        return out


class RunFollower:
    """Tail ``events.jsonl`` (and ``jobstate.log``) of a run directory from a daemon thread.

    Every ``poll_interval`` seconds the thread reads what was appended (never
    re-reading: byte offsets; a backlog is read on without pausing, ``READ_BYTES``
    at a time) and queues it; at most once every ``min_interval`` seconds it
    hands the queued batch to ``callback(events, jobstate_records)``.

    With ``fold``, nothing is queued: each read goes to ``fold(events, records)``
    as soon as it is read, and ``callback([], [])`` still comes at most once every
    ``min_interval`` seconds after something was folded (the moment to redraw).
    Replaying a long run then holds one read at a time, and is not slowed down by
    the redraw rate.

    It stops by itself after ``run_finished`` (or when ``status_fn`` reports a
    final state and nothing new arrives), or when :meth:`stop` is called.
    """

    def __init__(self, run_dir: str | Path, callback: Callable[[list[dict[str, Any]], list[Any]], None], *,
                 fold: Callable[[list[dict[str, Any]], list[Any]], None] | None = None,
                 events_path: str | Path | None = None, status_fn: Callable[[], str] | None = None,
                 poll_interval: float = 0.1, min_interval: float = 0.25, status_every: float = 2.0) -> None:
        self.run_dir = Path(run_dir)
        self.callback = callback
        self.fold = fold
        self.status_fn = status_fn
        self.poll_interval = poll_interval
        self.min_interval = min_interval
        self.status_every = status_every
        self._events = EventReader(events_path or self.run_dir / "events.jsonl")
        self._jobstate = _jobstate_reader(self.run_dir / "jobstate.log")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.batches = 0
        self.error: BaseException | None = None

    def start(self) -> RunFollower:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"mlwf-follow-{self.run_dir.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 2.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is still following."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; returns whether it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def _read(self) -> tuple[list[dict[str, Any]], list[Any]]:
        records = self._jobstate.poll(max_bytes=READ_BYTES) if self._jobstate is not None else []
        return self._events.poll(max_bytes=READ_BYTES), records

    def _loop(self) -> None:
        pending_e: list[dict[str, Any]] = []
        pending_r: list[Any] = []
        folded = False  # fold mode: something was folded since the last callback
        last_flush = 0.0
        last_status = time.monotonic()
        done = False

        def take(events: list[dict[str, Any]], records: list[Any]) -> None:
            nonlocal pending_e, pending_r, folded
            if not (events or records):
                return
            if self.fold is not None:
                self.fold(events, records)
                folded = True
            else:
                pending_e += events
                pending_r += records

        try:
            while not self._stop.is_set():
                # without fold, replaying a long run: read no further until the batch in hand is handed
                # over, so memory stays bounded (about MAX_PENDING events) whatever the file's length
                full = len(pending_e) + len(pending_r) >= MAX_PENDING
                events, records = ([], []) if full else self._read()
                got = bool(events or records)
                done = done or any(e.get("type") == "run_finished" for e in events)
                take(events, records)
                now = time.monotonic()
                if not done and not got and self.status_fn and now - last_status > self.status_every:
                    last_status = now
                    done = self.status_fn() in FINAL_STATES
                    if done:
                        take(*self._read())
                if (pending_e or pending_r or folded) and (done or now - last_flush >= self.min_interval):
                    self.callback(pending_e, pending_r)
                    self.batches += 1
                    pending_e, pending_r = [], []
                    folded = False
                    last_flush = now
                if done:
                    break
                if full or not got:  # caught up (or holding a full batch): wait for more
                    self._stop.wait(self.poll_interval)
        except BaseException as err:
            self.error = err
        finally:
            self.finished.set()


MAX_PENDING = 20_000
"""Events (plus jobstate records) a follower without ``fold`` holds before handing them over."""
READ_BYTES = 256 << 10
"""Bytes read from each file per poll (what is parsed at a time: about 2,000 events, 5,000 records)."""


def _resolve(run_dir: Path | None, path: Any) -> Path:
    """An artifact path: absolute as given, else relative to the run directory."""
    p = Path(str(path))
    return run_dir / p if not p.is_absolute() and run_dir is not None else p


def read_image(path: str | Path) -> bytes:
    """The bytes of an image artifact (a ``map`` PNG); ``b""`` when it cannot be read (yet)."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _read_artifact(run_dir: Path | None, path: Any) -> dict[str, Any]:
    """An artifact's JSON (path relative to the run directory or absolute); {} when unreadable."""
    if not path or not str(path).endswith(".json"):
        return {}
    p = _resolve(run_dir, path)
    try:
        data = read_json(p)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _jobstate_reader(path: Path) -> Any:
    try:
        from mlwf_nb.rundir.jobstate import JobStateReader
    except ImportError:  # pragma: no cover - backends layer not installed
        return None
    return JobStateReader(path)
