"""A tiny TensorFlow-free pipeline for the executor fault and concurrency cases.

``tick`` jobs sleep in small steps, emitting one event per step, so a test can kill
the executor while jobs run; ``gather`` sums their outputs. Jobs import this module,
so they need ``PYTHONPATH`` = the repository root.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlwf_nb import _io
from mlwf_nb.pipelines import Graph, Pipeline
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps import step


@step("rel-tick", outputs=("out",))
def tick(out: Path, index: int = 0, ticks: int = 5, seconds: float = 0.2, retry_ticks: int = -1) -> None:
    """Emit ``ticks`` events ``seconds`` apart (``retry_ticks`` on a retry, if >= 0), then write the index."""
    if retry_ticks >= 0 and os.environ.get("MLWF_TRY", "0") != "0":
        ticks = retry_ticks
    for i in range(ticks):
        emit("log", level="info", message=f"tick {index}.{i}")
        time.sleep(seconds)
    _io.write_json(out, {"index": index})


@step("rel-tick-warm", outputs=("out",), warm=True)
def tick_warm(out: Path, index: int = 0, ticks: int = 5, seconds: float = 0.2, retry_ticks: int = -1) -> None:
    """:func:`tick` as a warm step: the local executor forks it from its warm worker."""
    tick(out, index, ticks, seconds, retry_ticks)


@step("rel-fails-until", outputs=("out",))
def fails_until(out: Path, marker: str = "") -> None:
    """Fail until the file ``marker`` exists (a fault the user fixes before resuming), then write ``out``."""
    if not Path(marker).exists():
        raise RuntimeError(f"{marker} does not exist yet")
    _io.write_json(out, {"marker": marker})


@step("rel-gather", outputs=("total",))
def gather(spec: RunSpec, parts: list[Path], total: Path) -> None:
    """Sum the indices of the tick outputs."""
    value = sum(json.loads(p.read_text())["index"] for p in parts)
    emit("log", level="info", message=f"{spec.name} total {value}")
    _io.write_json(total, {"total": value, "name": spec.name})


def graph(spec: RunSpec, *, jobs: int = 4, ticks: int = 5, seconds: float = 0.2, warm: int = 0) -> Graph:
    """``jobs`` ticks in parallel (tick i lasts ``(i + 1) * ticks * seconds``; the last ``warm`` of them
    forked from the warm worker), then one gather."""
    g = Graph()
    parts = []
    for i in range(jobs):
        out = f"work/tick-{i}.json"
        g.add("rel-tick-warm" if i >= jobs - warm else "rel-tick", f"tick[{i}]", out=out, index=i,
              ticks=ticks * (i + 1), seconds=seconds)
        parts.append(out)
    g.add("rel-gather", parts=parts, total="outputs/total.json")
    return g


PIPELINE = Pipeline(name="rel-ticks", build=lambda spec, g: None, description="reliability test pipeline")
