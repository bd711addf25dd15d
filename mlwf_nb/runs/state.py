"""What a run's events say so far, folded into plain data: the one ``RunState`` every reader uses.

:class:`RunState` folds ``events.jsonl`` events (in ``seq`` order, each once)
into a job table, training curves, checkpoints, trials, artifacts and the run's
state. ``Run.status()``, ``Run.events()``, ``mlwf watch``, the RunMonitor widget
and the static views all read a run through it; only :mod:`mlwf_nb.rundir`
knows the file formats, and only :mod:`mlwf_nb.runs.follow` reads the file.

Job states are those of :data:`~mlwf_nb.rundir.states.JOB_STATES`; an event with
any other word is not applied (a warning goes into :attr:`RunState.logs`), so no
reader ever shows a state outside the vocabulary. ``percent_done`` counts
against the workflow's job total (from ``run_started``), so it never goes down
while jobs appear.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from mlwf_nb._io import read_json
from mlwf_nb.rundir.states import FINAL_STATES, JOB_STATES, dag_state, totals

__all__ = ["RunState", "RunLengthList"]

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
    """Plain-data summary of every event seen so far in a run directory.

    ``jobs`` is keyed by jobstate name (``train_ID0000007``); each entry holds
    ``state`` (one of JOB_STATES), ``exit_code``, ``tries``, ``step``, ``id`` and,
    for a failed try whose backend said where, ``stderr`` (a path in the run directory).
    """

    seqs: RunLengthList[int] = field(default_factory=lambda: RunLengthList(step=1))  # of every event applied
    types: RunLengthList[str] = field(default_factory=RunLengthList)  # of every event applied
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int = 0
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # job id -> metric -> by epoch
    training: str | None = None  # the job that began training last: whose curves :attr:`history` shows
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    trials: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    confusion: dict[str, Any] | None = None
    segmentation: dict[str, Any] | None = None
    detection: dict[str, Any] | None = None
    sweep: dict[int, dict[str, Any]] = field(default_factory=dict)  # combination index -> its latest result
    maps: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    state: str = "Planned"
    finished: bool = False
    message: str | None = None  # why a run ended as it did, when its ``run_finished`` says (PlanFailed)
    run_dir: Path | None = None
    restart_after: int | None = None  # resumed when the events ended at this seq: no end before a newer run_started

    # -- folding -------------------------------------------------------------------------
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
        if kind == "job_state":
            return self._job(ev)
        if kind == "run_started":  # also a resumed run's
            seq = ev.get("seq")
            if self.restart_after is not None and (not isinstance(seq, int) or seq > self.restart_after):
                self.restart_after = None  # the resume has begun
            self.state, self.finished = "Running", False
            self.total = max(self.total, int(ev.get("total") or 0))
            return {"state", "jobs"}
        if kind == "run_finished":
            self.state = str(ev.get("state", "Success"))
            self.finished = True
            self.message = ev.get("message")
            return {"state"}
        if kind == "epoch":
            return self._epoch(ev)
        if kind in ("checkpoint_saved", "checkpoint_restored"):
            self.checkpoints.append({"event": "saved" if kind == "checkpoint_saved" else "restored",
                                     "path": ev.get("path"), "epoch": ev.get("epoch"), "job": ev.get("job")})
            return {"checkpoints"}
        if kind in ("trial_proposed", "trial_started", "trial_finished"):
            return self._trial(kind, ev)
        if kind == "artifact":
            return self._artifact(ev)
        if kind == "sweep_result" and isinstance(ev.get("index"), int):
            self.sweep[ev["index"]] = {k: ev.get(k) for k in ("index", "parameters", "status", "records", "error")}
            return {"sweep"}
        if kind == "log":
            self.logs.append(f"[{ev.get('level', 'info')}] {ev.get('job', '')}: {ev.get('message', '')}")
            return {"logs"}
        return set()

    def _job(self, ev: dict[str, Any]) -> set[str]:
        name = str(ev.get("name") or ev.get("job") or "?")
        state = ev.get("state")
        if state not in JOB_STATES:
            self.logs.append(f"[warning] {name}: job state {state!r} is not one of {', '.join(JOB_STATES)}; "
                             "event not applied (written by another version of mlwf_nb?)")
            return {"logs"}
        entry = self.jobs.get(name)
        if entry is None:
            entry = self.jobs[name] = {"state": "unready", "exit_code": None, "tries": 0,
                                       "step": ev.get("step") or name.rsplit("_", 1)[0], "id": ev.get("job")}
        entry["state"] = state
        if ev.get("exit_code") is not None:
            entry["exit_code"] = ev.get("exit_code")
        if ev.get("try") is not None:
            entry["tries"] = max(int(entry["tries"] or 0), int(ev["try"]))
        if ev.get("stderr"):
            entry["stderr"] = ev["stderr"]
        if ev.get("site"):
            entry["site"] = ev["site"]
        return {"jobs"}

    def _epoch(self, ev: dict[str, Any]) -> set[str]:
        """One epoch's metrics, per job; a retry that trains an epoch again replaces it (and those after it)."""
        job = str(ev.get("job") or "")
        hist = self.histories.get(job)
        if hist is None:
            hist = self.histories[job] = {}
            self.training = job
        epoch = int(ev.get("epoch") or 0)
        for key, value in (ev.get("metrics") or {}).items():
            series = hist.setdefault(key, [])
            if 0 < epoch <= len(series):
                del series[epoch - 1:]
            series.append(float(value))
        return {"history"} if job == self.training else set()

    @property
    def history(self) -> dict[str, list[float]]:
        """Metric curves (``loss``, ``val_loss``, ...) of the job that began training last."""
        return self.histories.get(self.training or "", {})

    def _trial(self, kind: str, ev: dict[str, Any]) -> set[str]:
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

    def _artifact(self, ev: dict[str, Any]) -> set[str]:
        self.artifacts.append(dict(ev))
        kind = ev.get("kind")
        if kind == "confusion_matrix":
            data = ev if ev.get("matrix") is not None else _read_artifact(self.run_dir, ev.get("path"))
            if data.get("matrix") is not None:
                self.confusion = {"matrix": data["matrix"], "classes": data.get("classes"),
                                  "colors": data.get("colors"), "path": ev.get("path")}
                return {"artifacts", "confusion"}
        if kind in ("segmentation", "detection"):
            setattr(self, str(kind), {k: v for k, v in ev.items() if k not in ("v", "seq", "ts", "type", "kind")})
            return {"artifacts", str(kind)}
        if kind == "map" and ev.get("path"):
            self.maps.append(str(resolve(self.run_dir, ev["path"])))
            return {"artifacts", "maps"}
        return {"artifacts"}

    def observe(self, live: str, *, restart_overdue: bool = False) -> set[str]:
        """Take the backend's word for a run that wrote no ``run_finished`` (Planned, Planning, Lost, ...).

        While a resume has not begun (:attr:`restart_after`), the old final state in the
        events is not the run's: only ``Lost``/``PlanFailed`` (the restart died) end it, or any
        final state once ``restart_overdue`` (the backend never restarted the run).
        """
        if self.restart_after is not None:
            if live not in FINAL_STATES or (live not in ("Lost", "PlanFailed") and not restart_overdue):
                return set()
            self.restart_after = None
            self.state, self.finished = live, False
            return {"state"}
        if self.finished or live == self.state or (live == "Planned" and self.seqs):
            return set()
        self.state = live
        return {"state"}

    # -- reading -------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        """Whether the run is in a final state (finished, or the backend said Lost/PlanFailed), no resume pending."""
        return self.restart_after is None and (self.finished or self.state in FINAL_STATES)

    def failed_jobs(self) -> list[str]:
        """Jobs whose last try failed, in the order first seen."""
        return [n for n, j in self.jobs.items() if j["state"] == "failed"]

    def failures(self) -> list[dict[str, Any]]:
        """Failed jobs with what is known of them, and the tail of their stderr where the events name it."""
        out = []
        for name in self.failed_jobs():
            entry = {"job": name, **self.jobs[name]}
            if entry.get("stderr"):
                entry["stderr_tail"] = tail(resolve(self.run_dir, entry["stderr"]))
            out.append(entry)
        return out

    def leaderboard(self, direction: str = "max") -> list[dict[str, Any]]:
        """Trials with an objective, best first."""
        done = [t for t in self.trials.values() if t.get("objective") is not None]
        return sorted(done, key=lambda t: float(t["objective"]), reverse=direction == "max")

    def totals(self) -> dict[str, Any]:
        """Counts by job state and percent done, in ``Pegasus.client.status``'s shape (running counts as queued)."""
        return totals((j["state"] for j in self.jobs.values()), total=self.total)

    @property
    def percent_done(self) -> float:
        """Succeeded jobs over all jobs of the workflow, in percent."""
        return float(self.totals()["percent_done"])

    def status(self, dagname: str = "root.dag") -> dict[str, Any]:
        """The ``Pegasus.client.status`` dictionary plus ``"mlwf": {state, jobs, failed_jobs}``."""
        counts = self.totals()
        code = None if not self.ended else 0 if self.state == "Success" else 1
        root = dict(counts, dagname=dagname, state=dag_state(code, counts["failed"]))
        mlwf = {"state": self.state, "jobs": {k: dict(v) for k, v in self.jobs.items()},
                "failed_jobs": self.failed_jobs()}
        if self.message:
            mlwf["message"] = self.message
        return {"totals": counts, "dags": {"root": root}, "mlwf": mlwf}


def resolve(run_dir: Path | None, path: Any) -> Path:
    """A path an event names: absolute as given, else relative to the run directory."""
    p = Path(str(path))
    return run_dir / p if not p.is_absolute() and run_dir is not None else p


TAIL_BYTES = 2048


def tail(path: Path, size: int = TAIL_BYTES) -> str:
    """The last ``size`` bytes of a text file, decoded ("" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_artifact(run_dir: Path | None, path: Any) -> dict[str, Any]:
    """An artifact's JSON (path relative to the run directory or absolute); {} when unreadable."""
    if not path or not str(path).endswith(".json"):
        return {}
    try:
        data = read_json(resolve(run_dir, path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
