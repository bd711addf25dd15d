"""Row ``sweep``: N notebooks as one sweep workflow vs. the same N papermill runs one by one.

The notebook does a fixed amount of numpy work (a few seconds) and records a result; the
baseline runs ``papermill.execute_notebook`` on each combination in turn (what a researcher
does by hand), the measured side runs ``mlwf_nb.sweep(..., wait=True)`` on the local backend
(as many notebooks at once as cores). Both pay a kernel start per notebook.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import result

__all__ = ["ROWS", "bench_sweep", "make_notebook"]

BODY = """import numpy as np
import mlwf_nb
rng = np.random.default_rng(seed)
a = rng.random((size, size))
for _ in range(rounds):
    a = np.tanh(a @ a / size)
mlwf_nb.record("checksum", float(a.sum()))"""


def make_notebook(path: Path) -> Path:
    """A small notebook with parameters ``seed``, ``size``, ``rounds`` that records a checksum."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\nsize = 400\nrounds = 60")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def _one_by_one(nb: Path, grid: dict[str, list[Any]], out: Path) -> float:
    import itertools

    import papermill as pm

    t0 = time.perf_counter()
    for i, values in enumerate(itertools.product(*grid.values())):
        pm.execute_notebook(str(nb), str(out / f"out-{i}.ipynb"), progress_bar=False,
                            parameters=dict(zip(grid, values, strict=True)))
    return time.perf_counter() - t0


def _sweep(nb: Path, grid: dict[str, list[Any]], run_dir: Path) -> tuple[float, str]:
    import mlwf_nb

    t0 = time.perf_counter()
    run = mlwf_nb.sweep(nb, grid, run_dir=run_dir, wait=True)
    return time.perf_counter() - t0, run.state


def bench_sweep(quick: bool = False) -> list[dict[str, Any]]:
    """Wall time of a 2 x N sweep against the same notebooks run one by one, best of alternating rounds.

    Rounds alternate (one by one, sweep, sweep, one by one, ...) so that a change of the machine's
    load hits both sides; each side's fastest round is compared.
    """
    seeds = [0, 1] if quick else [0, 1, 2, 3]
    grid: dict[str, list[Any]] = {"seed": seeds, "rounds": [60, 80]}
    rounds = 1 if quick else 2
    one, swept, states = [], [], []
    with tempfile.TemporaryDirectory(prefix="mlwf-bench-sweep-") as tmp:
        nb = make_notebook(Path(tmp) / "work.ipynb")
        for r in range(rounds):
            order = ("one", "sweep") if r % 2 == 0 else ("sweep", "one")
            for side in order:
                if side == "one":
                    one.append(_one_by_one(nb, grid, Path(tmp)))
                else:
                    seconds, state = _sweep(nb, grid, Path(tmp) / f"run-{r}")
                    swept.append(seconds)
                    states.append(state)
    n = len(seeds) * 2
    ok = all(s == "Success" for s in states)
    return [result("sweep", f"{n} notebooks: one sweep workflow vs papermill one by one", min(one), min(swept), "s",
                   "< 1.0x (notebooks run in parallel)", ok and min(swept) < min(one),
                   note=f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; rounds one by one "
                        f"{[round(v, 1) for v in one]} s, sweep {[round(v, 1) for v in swept]} s; {states}")]


ROWS = [bench_sweep]
