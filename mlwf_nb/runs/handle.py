"""The Run handle: submit a spec to a backend, or attach to an existing run directory.

    >>> run = mlwf_nb.submit(RunSpec.from_preset("tiny"))      # returns once started
    >>> run.status()["dags"]["root"]["state"]
    'Running'
    >>> run.wait(); run.outputs()["confusion_matrix"]

A run directory is the one truth for every backend (see DESIGN.md): a new Run
object, in a new kernel, attached to the same directory sees the same history.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlwf_nb import _io
from mlwf_nb.errors import RunError
from mlwf_nb.rundir.events import last_seq
from mlwf_nb.runs.follow import Follower
from mlwf_nb.runs.state import RunState
from mlwf_nb.spec import RunSpec, load_spec

__all__ = ["Run", "submit", "plan", "check_spec", "default_run_dir"]

def default_run_dir(spec: RunSpec, base: str | os.PathLike[str] | None = None) -> Path:
    """A fresh run directory name under ``base`` (default ``$MLWF_RUNS_DIR`` or ``./runs``)."""
    root = Path(base or os.environ.get("MLWF_RUNS_DIR", "runs"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{spec.name}-{stamp}-{secrets.token_hex(3)}"


def check_spec(spec: RunSpec) -> RunSpec:
    """Check what :meth:`RunSpec.validate` cannot: registered names and safe names.

    Run before anything is written (``mlwf validate``, :func:`plan`, :func:`submit`).

    Raises:
        SpecError: unknown pipeline or model (the message lists the registered ones).
        BackendError: unknown backend.
        HPOError: unknown HPO strategy or an option it does not take.
        UnsafeNameError: ``name`` would escape the runs folder (``..``, ``/``).
        PlanRuleError: execution settings the real pegasus-plan refuses (:mod:`mlwf_nb.planner_rules`).
    """
    from mlwf_nb.backends import BACKENDS
    from mlwf_nb.errors import SpecError
    from mlwf_nb.hpo.strategies import NO_SEARCH, get_strategy
    from mlwf_nb.ml.models import MODELS
    from mlwf_nb.pipelines import PIPELINES
    from mlwf_nb.safety import check_name

    check_name(spec.name, "run name (spec key `name`)")
    PIPELINES.get(spec.pipeline)
    BACKENDS.get(spec.execution.backend)
    from mlwf_nb import planner_rules

    planner_rules.require(spec.execution)  # what pegasus-plan would refuse in the execution settings
    try:
        MODELS.get(spec.model.name)
    except SpecError as err:
        raise SpecError(f"model.name: {err}") from err
    if spec.hpo.strategy != NO_SEARCH:
        get_strategy(spec.hpo, max_epochs=spec.train.epochs)
    elif spec.hpo.options:
        raise SpecError(f"hpo.options {spec.hpo.options} are set but hpo.strategy is none; "
                        "choose a strategy or remove the options")
    return spec


def plan(spec: RunSpec, run_dir: str | os.PathLike[str] | None = None, *, generate: bool = False) -> Path:
    """Write the run directory (spec, workflow, catalogs) without running anything.

    Planning writes no data: a synthetic dataset that does not exist yet is refused with the
    command that makes it, unless ``generate`` (what :func:`submit` does).
    """
    from mlwf_nb.workflow import write_run_dir

    check_spec(spec)
    return write_run_dir(spec, run_dir or default_run_dir(spec), generate=generate)


def submit(spec: RunSpec | str | os.PathLike[str] | None = None, *, backend: str | None = None,
           run_dir: str | os.PathLike[str] | None = None, wait: bool = False, jobs: int | None = None,
           overrides: list[str] | None = None) -> Run:
    """Plan ``spec`` into a new run directory and start it on ``backend``.

    Args:
        spec: a RunSpec, a path to a spec YAML file, or a preset name (``tiny``, ``cpu``, ``paper``,
            or ``pipeline:preset`` such as ``galaxy:tiny``).
        backend: overrides ``spec.execution.backend``.
        run_dir: the new run directory (default: a fresh one under ./runs).
        wait: block until the run ends (scripts, papermill); the default returns at once.
        jobs: parallel jobs for the local backend (default: spec.execution.jobs or the core count).
        overrides: ``key.path=value`` strings applied to the spec.
    """
    spec = _as_spec(spec, overrides)
    if backend:
        spec = spec.with_overrides({"execution.backend": backend})
    from mlwf_nb.backends import get_backend

    engine = get_backend(spec.execution.backend)  # unknown backend fails before anything is written
    path = plan(spec, run_dir, generate=True)
    engine.submit(path, jobs=jobs or spec.execution.jobs or None, wait=wait)
    return Run(path)


def _as_spec(spec: RunSpec | str | os.PathLike[str] | None, overrides: list[str] | None) -> RunSpec:
    if isinstance(spec, RunSpec):
        return spec.with_overrides(overrides or [])
    if spec is None:
        return load_spec(preset="tiny", overrides=overrides)
    text = str(spec)
    if Path(text).suffix in (".yaml", ".yml") or Path(text).exists():
        return load_spec(text, overrides=overrides)
    from mlwf_nb.pipelines import preset_spec

    return preset_spec(text, overrides=overrides)  # "tiny" or "galaxy:tiny"

    pipeline, _, preset = text.rpartition(":")  # "tiny" or "galaxy:tiny"
    return preset_spec(preset, pipeline or "landcover", overrides)


class Run:
    """A handle on one run directory, whatever backend runs it."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(run_dir).resolve()
        if not (self.dir / "workflow.yml").exists():
            raise RunError(f"{str(self.dir)!r} is not a run directory (no workflow.yml); "
                           "give the directory `mlwf run` printed")
        meta = _io.read_json(self.dir / "run.json") if (self.dir / "run.json").exists() else {}
        self.meta: dict[str, Any] = meta
        self.backend_name: str = meta.get("backend", "local")
        self._backend: Any = None
        self._follower: Follower | None = None
        self._resumed_after: int | None = None  # the last seq before this handle resumed the run

    @classmethod
    def attach(cls, run_dir: str | os.PathLike[str]) -> Run:
        """Attach to an existing run directory (new kernel, other user session, CLI)."""
        return cls(run_dir)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, backend={self.backend_name!r})"

    @property
    def backend(self) -> Any:
        """The backend object that runs this run (one per handle: it may hold a relay)."""
        if self._backend is None:
            from mlwf_nb.backends import get_backend

            self._backend = get_backend(self.backend_name)
        return self._backend

    @property
    def spec(self) -> RunSpec:
        """The spec as submitted."""
        return load_spec(self.dir / "spec.yaml")

    @property
    def events_path(self) -> Path:
        """The run's events.jsonl."""
        return self.dir / "events.jsonl"

    def follower(self, **kwargs: Any) -> Follower:
        """A new follower of this run from its first event (the RunMonitor runs one in a thread).

        After :meth:`resume`, it follows the resumed run to its end, not the earlier end.
        """
        kwargs.setdefault("restart_after", self._resumed_after)
        return Follower(self.dir, live=self._live, sync=self._sync, **kwargs)

    def _live(self) -> str:
        return str(self.backend.state(self.dir))

    def _sync(self) -> None:
        self.backend.sync(self.dir)

    def run_state(self) -> RunState:
        """What the run's events say so far (read incrementally: only what is new since the last call)."""
        if self._follower is None:
            self._follower = self.follower()
        return self._follower.catch_up()

    def status(self) -> dict[str, Any]:
        """Pegasus-shaped status (``totals``, ``dags.root``) plus ``mlwf``: state, jobs, failed_jobs.

        Folded from the run's events (:meth:`run_state`); a failed job comes with the
        tail of its stderr (``stderr_tail``).
        """
        rs = self.run_state()
        st = rs.status(dagname=f"{self.meta.get('name', 'root')}.dag")
        for entry in self.failures(rs):
            st["mlwf"]["jobs"][entry["job"]]["stderr_tail"] = entry.get("stderr_tail", "")
        return st

    def failures(self, rs: RunState | None = None) -> list[dict[str, Any]]:
        """Failed jobs of ``rs`` (default: :meth:`run_state`) with the tail of their stderr.

        Where the events do not name the stderr file (the Pegasus relay), the backend's
        own record is asked, once, for the failed jobs' details.
        """
        out = (rs or self.run_state()).failures()
        if any("stderr_tail" not in f for f in out):
            details = self.backend.status(self.dir).get("mlwf", {}).get("jobs", {})
            for f in out:
                f.setdefault("stderr_tail", details.get(f["job"], {}).get("stderr_tail", ""))
        return out

    @property
    def state(self) -> str:
        """Planned, Planning, PlanFailed, Running, Success, Failure, Cancelled or Lost."""
        return self.run_state().state

    def events(self, *, follow: bool = False, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the run's events from the first; with ``follow``, keep yielding until the run ends.

        Following blocks the caller: use it in scripts and the CLI, not in a notebook
        cell (the RunMonitor widget follows from a background thread instead). With
        ``timeout``, following stops after that many seconds.
        """
        f = self.follower()
        if not follow:
            while batch := f.poll()[0]:
                yield from batch
            return
        with contextlib.suppress(TimeoutError):
            yield from f.follow(timeout=timeout)

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends; returns the final state.

        Raises:
            TimeoutError: the run had not ended after ``timeout`` seconds.
        """
        if self._follower is None:
            self._follower = self.follower()
        for _ in self._follower.follow(timeout=timeout):
            pass
        return self._follower.state.state

    def cancel(self) -> None:
        """Stop the run (running jobs are killed; finished outputs are kept)."""
        self.backend.cancel(self.dir)

    def resume(self, *, wait: bool = False) -> Run:
        """Continue a failed, cancelled or lost run; finished jobs are not run again.

        :meth:`wait`, :meth:`status` and new followers then follow the resumed run: its
        earlier end (still the last event until the backend restarts it) does not count.
        """
        self._sync()  # what the backend has that events.jsonl lacks belongs to the earlier try
        mark = last_seq(self.events_path)
        self.backend.resume(self.dir, wait=wait)
        self._resumed_after, self._follower = mark, None
        return self

    def outputs(self) -> dict[str, Path]:
        """Artifacts the run has produced so far, by kind (model, confusion_matrix, report, ...)."""
        found: dict[str, Path] = {}
        out = self.dir / "outputs"
        for name, rel in (("model", "model.keras"), ("history", "history.json"),
                          ("metrics", "metrics.json"), ("confusion_matrix", "confusion_matrix.json"),
                          ("confusion_matrix_png", "confusion_matrix.png"), ("report", "report.md"),
                          ("leaderboard", "hpo/leaderboard.json"), ("hybrid", "hybrid_comparison.json")):
            if (out / rel).exists():
                found[name] = out / rel
        maps = sorted((out / "maps").glob("*.png")) if (out / "maps").exists() else []
        for p in maps:
            found[f"map:{p.stem}"] = p
        return found

