"""Sweep steps: ``notebook`` (one papermill run per parameter combination) and ``sweep-collect``.

A sweep (:mod:`mlwf_nb.sweeps`) runs one notebook once for every combination of
``spec.sweep.parameters``; job ``i`` takes combination ``i`` of
:func:`combinations` (computed from ``spec.yaml`` alone, so no parameter travels
on a command line). The executed notebook is an output; what the notebook
recorded with :func:`mlwf_nb.record` is read back from it. A notebook that
raises keeps its executed copy (with the failing cell's traceback), reports
``status: failed`` in a ``sweep_result`` event and fails its job with the
cell's error; the other combinations go on.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec, SweepSpec
from mlwf_nb.steps.registry import step

__all__ = ["combinations", "combination_label", "run_notebook", "sweep_collect", "MAX_COMBINATIONS"]

MAX_COMBINATIONS = 10_000


def combinations(sweep: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the sweep's parameter values, the last parameter varying fastest.

    Raises:
        StepError: No parameters, a parameter without values, a name given twice, or too many.
    """
    names = [p.name for p in sweep.parameters]
    empty = [p.name for p in sweep.parameters if not p.values]
    if not names or empty or len(set(names)) != len(names) or not all(names):
        raise StepError(f"sweep.parameters: give each parameter a name, once, and at least one value; got "
                        f"{[(p.name, p.values) for p in sweep.parameters]}")
    count = 1
    for p in sweep.parameters:
        count *= len(p.values)
    if count > MAX_COMBINATIONS:
        raise StepError(f"sweep.parameters make {count} combinations, more than {MAX_COMBINATIONS}; sweep fewer values")
    grid = itertools.product(*(p.values for p in sweep.parameters))
    return [dict(zip(names, values, strict=True)) for values in grid]


def combination_label(params: dict[str, Any]) -> str:
    """``lr=0.01,seed=1``: how a combination is shown in job labels and tables."""
    return ",".join(f"{k}={v}" for k, v in params.items())


def _result(index: int, params: dict[str, Any], executed: Path, status: str, records: dict[str, Any],
            seconds: float, error: str | None = None, cell: int | None = None) -> dict[str, Any]:
    return {"index": index, "parameters": params, "status": status, "records": records,
            "notebook": str(executed), "seconds": round(seconds, 3), "error": error, "cell": cell}


def _skip_iri_grammar() -> None:
    """Keep jsonschema from building rfc3987-syntax's IRI grammar when papermill imports nbformat.

    jsonschema imports the optional ``rfc3987_syntax`` (installed here for jupyter-events) at import
    time, and that compiles a Lark grammar: 1.5 of the 2.0 s of CPU that importing papermill took
    in every notebook job (measured: 1.99 s -> 0.47 s user). Notebook validation checks no IRI
    fields, so a job process does without it; a process that already imported jsonschema is unchanged.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # import -> ImportError


@step("notebook", outputs=("executed", "result"), runs_model=True)
def run_notebook(spec: RunSpec, notebook: Path, executed: Path, result: Path, index: int) -> None:
    """Run ``notebook`` with papermill on combination ``index`` of ``spec.sweep``; keep the executed copy.

    Raises:
        StepError: The notebook raised (the message names the cell and the error).
    """
    _skip_iri_grammar()
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from mlwf_nb.records import read_records

    params = combinations(spec.sweep)[index]
    start = time.monotonic()
    error, cell = None, None
    with _io.atomic_path(executed, suffix=".ipynb") as tmp:
        try:
            pm.execute_notebook(str(notebook), str(tmp), parameters=params, kernel_name=spec.sweep.kernel or None,
                                progress_bar=False, execution_timeout=spec.sweep.timeout or None)
        except PapermillExecutionError as err:  # the executed copy is written up to the failing cell
            error, cell = f"{err.ename}: {err.evalue}", err.exec_count
        records = read_records(tmp)
    status = "ok" if error is None else "failed"
    out = _result(index, params, executed, status, records, time.monotonic() - start, error, cell)
    _io.write_json(result, out)
    emit("sweep_result", **out)
    if error is not None:
        raise StepError(f"notebook {notebook.name} [{combination_label(params)}] failed in cell [{cell}]: {error} "
                        f"(executed copy: {executed})")


@step("sweep-collect", outputs=("table", "figure"))
def sweep_collect(spec: RunSpec, results: list[Path], table: Path, figure: Path) -> None:
    """Gather every combination's parameters and records into ``sweep.json`` and a plot."""
    from mlwf_nb.ml.plots import plot_sweep, save_figure

    rows = sorted((_io.read_json(p) for p in results), key=lambda r: int(r["index"]))
    if not rows:
        raise StepError("sweep-collect: no results were given")
    doc = {"notebook": Path(spec.sweep.notebook).name, "parameters": [p.name for p in spec.sweep.parameters],
           "records": sorted({k for r in rows for k in r.get("records", {})}), "rows": rows}
    _io.write_json(table, doc)
    save_figure(plot_sweep(doc), figure)
    emit("artifact", kind="sweep", path=str(table), figure=str(figure), rows=len(rows))
    emit("artifact", kind="map", path=str(figure))
