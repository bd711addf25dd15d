"""HPO rounds on the local backend: 16 fixed-duration trials, K = 1, 2, 4 at a time.

The workflow has the shape the HPO pipeline unrolls to (propose -> K trials ->
propose -> ... -> select); trials are ``sleep T`` jobs, propose/select are
no-ops, so the row measures the backend's scheduling of rounds against the
ideal ``16 / K * T``. (Search quality, rounds-Bayesian against keras-tuner's
sequential Bayesian, belongs to the HPO engineer's ``bench_hpo.py`` when present.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import result, row
from benchmarks._workflows import rounds, timed_execute, write_run

__all__ = ["ROWS", "bench_hpo_rounds"]

TRIALS = 16


@row("hpo_rounds")
def bench_hpo_rounds(quick: bool) -> list[dict[str, Any]]:
    """Wall time of 16 trials in rounds of K against 16 / K * trial time."""
    t = 0.3 if quick else 1.0
    out = []
    with tempfile.TemporaryDirectory() as d:
        for k in (1, 2, 4):
            jobs, edges = rounds(TRIALS, k, ["/bin/sleep", str(t)])
            wall = timed_execute(write_run(Path(d) / f"k{k}", jobs, edges), width=k)
            ideal = TRIALS / k * t
            out.append(result("hpo_rounds", f"16 trials of {t:g} s, K = {k} in parallel", ideal, wall, "s",
                              "report", None,
                              note=f"{TRIALS // k} rounds; baseline: ideal 16/K x trial time; the excess is "
                                   "the propose/select jobs and job starts between rounds"))
    return out


ROWS = [bench_hpo_rounds]
