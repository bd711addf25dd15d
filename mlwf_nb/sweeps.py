"""Notebook sweeps: one notebook over every combination of parameter values, as one workflow.

    >>> run = mlwf_nb.sweep("train.ipynb", {"lr": [1e-3, 1e-2], "seed": [0, 1]})   # 4 papermill jobs
    >>> run.wait(); mlwf_nb.sweeps.results(run)
    [{"index": 0, "parameters": {"lr": 0.001, "seed": 0}, "status": "ok", "records": {...}}, ...]

Each combination is one ``notebook`` job of one Pegasus workflow (pipeline
``sweep``), so a sweep is a run like any other: the same run directory, events,
monitor, ``mlwf status``/``watch``/``cancel``/``resume`` (which re-runs only the
combinations that did not finish), local or Pegasus backend. Notebooks report
with :func:`mlwf_nb.record`; ``outputs/sweep.json`` and ``outputs/sweep.png``
gather the records once every combination succeeded, and :func:`results` folds
the table from the run's events at any time (failed combinations included).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb.errors import SpecError
from mlwf_nb.spec import RunSpec

__all__ = ["sweep", "sweep_spec", "results", "parse_param", "format_results"]


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``name=v1,v2,...`` (each value read as YAML: ``0.1``, ``true``, ``tiny``), or ``name=[YAML list]``.

    Raises:
        SpecError: No ``=``, no name, or no values.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise SpecError(f"--param {text!r}: write name=value1,value2,... (or name=[YAML list])")
    try:
        values = yaml.safe_load(raw) if raw.lstrip().startswith("[") else [
            _scalar(v) if v.strip() else "" for v in raw.split(",")]
    except yaml.YAMLError as err:
        raise SpecError(f"--param {name}: {raw!r} is not a valid YAML list") from err
    if not isinstance(values, list) or not values:
        raise SpecError(f"--param {name}: no values in {raw!r}")
    return name, values


_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _scalar(text: str) -> Any:
    """One value as YAML reads it, with ``1e-3`` a number (YAML 1.1 wants ``1.0e-3``)."""
    value = yaml.safe_load(text)
    return float(value) if isinstance(value, str) and _EXPONENT.match(value.strip()) else value


def sweep_spec(notebook: str | os.PathLike[str], parameters: Mapping[str, Sequence[Any]], *,
               backend: str | None = None, kernel: str = "", timeout: int = 0, name: str | None = None,
               overrides: Sequence[str] | Mapping[str, Any] | None = None) -> RunSpec:
    """The spec of a sweep (pipeline ``sweep``) of ``notebook`` over ``parameters``."""
    path = Path(notebook).resolve()
    if not path.is_file():
        raise SpecError(f"sweep: notebook {str(notebook)!r} does not exist")
    if not parameters:
        raise SpecError("sweep: give at least one parameter and its values, e.g. {'seed': [0, 1]}")
    values = {"pipeline": "sweep", "name": name or f"sweep-{path.stem}", "sweep.notebook": str(path),
              "sweep.kernel": kernel, "sweep.timeout": int(timeout),
              "sweep.parameters": [{"name": k, "values": list(v)} for k, v in parameters.items()]}
    if backend:
        values["execution.backend"] = backend
    spec = RunSpec().with_overrides(values)
    if overrides:
        spec = spec.with_overrides(dict(overrides) if isinstance(overrides, Mapping) else list(overrides))
    return spec


def sweep(notebook: str | os.PathLike[str], parameters: Mapping[str, Sequence[Any]], *, backend: str | None = None,
          run_dir: str | os.PathLike[str] | None = None, wait: bool = False, jobs: int | None = None,
          kernel: str = "", timeout: int = 0, name: str | None = None,
          overrides: Sequence[str] | Mapping[str, Any] | None = None) -> Any:
    """Run ``notebook`` once per combination of ``parameters`` as one workflow; returns its :class:`~mlwf_nb.runs.Run`.

    Args:
        notebook: A notebook with a cell tagged ``parameters``.
        parameters: ``{name: [values]}``; every name must be set in that cell.
        backend: ``local`` (default) or ``pegasus``.
        run_dir: The run directory (default: a fresh one under ``./runs``).
        wait: Block until every combination ended (scripts, papermill); the default returns at once.
        jobs: Notebooks run at once on the local backend (default: the core count).
        kernel: Jupyter kernel (default: the notebook's own).
        timeout: Per-cell timeout in seconds (0: none).
        name: Run name (default ``sweep-<notebook stem>``).
        overrides: More spec settings (``execution.retries=0``, ...).
    """
    from mlwf_nb.runs import submit

    spec = sweep_spec(notebook, parameters, backend=backend, kernel=kernel, timeout=timeout, name=name,
                      overrides=overrides)
    return submit(spec, run_dir=run_dir, wait=wait, jobs=jobs)


def results(run: Any) -> list[dict[str, Any]]:
    """One row per combination: ``index``, ``parameters``, ``status`` (ok, failed or pending), ``records``.

    Folded from the run's ``sweep_result`` events (the latest per combination, so a resumed
    combination shows its new result); ``run`` is a :class:`~mlwf_nb.runs.Run` or a run directory.
    """
    from mlwf_nb.rundir.events import read_events
    from mlwf_nb.runs import Run
    from mlwf_nb.steps.notebook import combinations

    handle = run if isinstance(run, Run) else Run.attach(run)
    rows = {i: {"index": i, "parameters": p, "status": "pending", "records": {}, "error": None}
            for i, p in enumerate(combinations(handle.spec.sweep))}
    for ev in read_events(handle.events_path):
        if ev.get("type") == "sweep_result" and ev.get("index") in rows:
            rows[int(ev["index"])] = {k: v for k, v in ev.items() if k not in ("v", "seq", "ts", "type", "relay")}
    return [rows[i] for i in sorted(rows)]


def format_results(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`results` (the CLI prints it)."""
    params = list(rows[0]["parameters"]) if rows else []
    records = sorted({k for r in rows for k in r.get("records", {})})
    head = ["#", *params, "status", *records]
    body = [[str(r["index"]), *(str(r["parameters"][p]) for p in params), str(r["status"]),
             *(_cell(r.get("records", {}).get(k)) for k in records)] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head, *body]]
    errors = [f"#{r['index']}: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines + errors)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
