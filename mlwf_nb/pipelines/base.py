"""Pipelines: compositions of declared steps, turned into a job graph for one spec.

A pipeline knows *which* steps run on *which* files; the workflow builder knows
how to turn that into Pegasus jobs; the backends know how to run Pegasus jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from mlwf_nb.errors import WorkflowError
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.registry import FILES, StepDef, get_step

__all__ = ["InputFile", "JobNode", "Graph", "Pipeline"]


@dataclasses.dataclass(frozen=True)
class InputFile:
    """A file the workflow reads from outside: an LFN and where it lives (replica catalog)."""

    lfn: str
    url: str
    sha256: str | None = None


@dataclasses.dataclass
class JobNode:
    """One job of the graph: a step, a human label and its arguments (LFNs for file parameters)."""

    step: StepDef
    label: str
    args: dict[str, Any]

    def files(self, kind: Literal["inputs", "outputs", "checkpoints"]) -> list[str]:
        """LFNs this node reads, writes, or keeps as checkpoints."""
        names = {"inputs": self.step.inputs(), "outputs": list(self.step.outputs),
                 "checkpoints": list(self.step.checkpoints)}[kind]
        out: list[str] = []
        for name in names:
            value = self.args.get(name)
            if value is None:
                continue
            out.extend(value if isinstance(value, list) else [value])
        return out


class Graph:
    """Collects job nodes and outside inputs while a pipeline builds itself for a spec."""

    def __init__(self) -> None:
        self.nodes: list[JobNode] = []
        self.inputs: dict[str, InputFile] = {}
        self._producers: dict[str, JobNode] = {}

    def add_input(self, lfn: str, path_or_url: str | Path, sha256: str | None = None) -> str:
        """Register an outside file (a dataset file) under ``lfn``; returns the lfn."""
        url = str(path_or_url)
        if "://" not in url:
            url = Path(url).resolve().as_uri()
        self.inputs[lfn] = InputFile(lfn, url, sha256)
        return lfn

    def add(self, step: str | StepDef, label: str | None = None, /, **args: Any) -> JobNode:
        """Add a job running ``step`` with ``args`` (file parameters as LFN strings or lists).

        ``label`` (positional) names the job for people, e.g. ``preprocess[GF-2_003]``.
        """
        sdef = get_step(step) if isinstance(step, str) else step
        missing = [p for p in (*sdef.files, *sdef.values) if p not in args
                   and (sdef.files.get(p) != FILES) and p not in _defaults(sdef)]
        if missing:
            raise WorkflowError(f"job {label or sdef.name!r}: step {sdef.name!r} needs {missing}")
        unknown = [a for a in args if a not in sdef.files and a not in sdef.values]
        if unknown:
            raise WorkflowError(f"job {label or sdef.name!r}: step {sdef.name!r} has no parameter(s) "
                                f"{unknown}; it takes {sorted([*sdef.files, *sdef.values])}")
        node = JobNode(sdef, label or sdef.name, dict(args))
        for lfn in node.files("outputs") + node.files("checkpoints"):
            if lfn in self._producers and node.step.checkpoints == ():
                raise WorkflowError(f"{lfn!r} is written by both {self._producers[lfn].label!r} and "
                                    f"{node.label!r}; every file has one producer")
            self._producers[lfn] = node
        self.nodes.append(node)
        return node

    def producer(self, lfn: str) -> JobNode | None:
        """The node that writes ``lfn``, if any."""
        return self._producers.get(lfn)


def _defaults(sdef: StepDef) -> set[str]:
    import inspect

    sig = inspect.signature(sdef.func)
    return {n for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A named pipeline: how to prepare its data and how to build its job graph for a spec."""

    name: str
    build: Callable[[RunSpec, Graph], None]
    task: Literal["classification", "segmentation", "detection", "notebooks"] = "classification"
    description: str = ""
    prepare: Callable[[RunSpec], None] | None = None
    """Make ``spec.dataset.path`` hold the data (generate a synthetic set, write its manifest).
    ``mlwf plan`` writes no data: it calls ``prepare`` only once ``dataset.yaml`` and
    ``manifest.json`` exist there."""
    presets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
