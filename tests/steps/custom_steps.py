"""Two researcher-style steps and a pipeline, declared in an importable module."""

from __future__ import annotations

import json
from pathlib import Path

from mlwf_nb.pipelines import Graph, Pipeline
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps import step


@step("make-numbers", outputs=("numbers",))
def make_numbers(numbers: Path, count: int = 5, start: int = 1) -> None:
    """Write ``count`` consecutive integers."""
    numbers.write_text(json.dumps(list(range(start, start + count))))


@step("sum-numbers", outputs=("total",))
def sum_numbers(spec: RunSpec, parts: list[Path], total: Path, scale: float = 1.0) -> None:
    """Sum the integers of several files, times ``scale``."""
    value = sum(sum(json.loads(p.read_text())) for p in parts) * scale
    emit("log", level="info", message=f"total {value} for {spec.name}")
    total.write_text(json.dumps({"total": value}))


def build(spec: RunSpec, g: Graph) -> None:
    """Fan out two make-numbers jobs, then one sum."""
    parts = []
    for i in range(2):
        out = f"work/numbers-{i}.json"
        g.add("make-numbers", f"make[{i}]", numbers=out, count=3, start=10 * i)
        parts.append(out)
    g.add("sum-numbers", parts=parts, total="outputs/total.json", scale=2.0)


PIPELINE = Pipeline(name="numbers", build=build, description="two custom steps")
