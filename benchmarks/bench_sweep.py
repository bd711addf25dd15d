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
    params = nbformat.v4.new_code_cell("seed = 0\nsize = 400\nrounds = 30")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def bench_sweep(quick: bool = False) -> list[dict[str, Any]]:
    """Wall time of a 2 x N sweep against the same notebooks run one by one with papermill."""
    import papermill as pm

    import mlwf_nb

    seeds = [0, 1] if quick else [0, 1, 2, 3]
    grid = {"seed": seeds, "rounds": [30, 40]}
    with tempfile.TemporaryDirectory(prefix="mlwf-bench-sweep-") as tmp:
        nb = make_notebook(Path(tmp) / "work.ipynb")
        t0 = time.perf_counter()
        for seed in grid["seed"]:
            for rounds in grid["rounds"]:
                pm.execute_notebook(str(nb), str(Path(tmp) / f"out-{seed}-{rounds}.ipynb"), progress_bar=False,
                                    parameters={"seed": seed, "rounds": rounds})
        one_by_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = mlwf_nb.sweep(nb, grid, run_dir=Path(tmp) / "run", wait=True)
        swept = time.perf_counter() - t0
        state = run.state
    n = len(seeds) * 2
    load = os.getloadavg()[0]
    return [result("sweep", f"{n} notebooks: sweep workflow vs papermill one by one", one_by_one, swept, "s",
                   "< 1.0x (notebooks run in parallel)", state == "Success" and swept < one_by_one,
                   note=f"{os.cpu_count()} cores, load average {load:.1f}; sweep {state}")]


ROWS = [bench_sweep]
