"""Pipeline registry.

Built-in pipelines plus any registered through the ``mlwf_nb.pipelines``
entry-point group by third-party packages.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from mlwf_nb.errors import SpecError
from mlwf_nb.pipelines.base import Graph, InputFile, JobNode, Pipeline
from mlwf_nb.spec import RunSpec

__all__ = ["Pipeline", "Graph", "JobNode", "InputFile", "register_pipeline", "get_pipeline",
           "available_pipelines", "preset_spec"]

_REGISTRY: dict[str, Pipeline | str] = {
    "landcover": "mlwf_nb.pipelines.landcover:PIPELINE",
    "galaxy": "mlwf_nb.pipelines.galaxy:PIPELINE",
    "lung": "mlwf_nb.pipelines.lung:PIPELINE",
    "masks": "mlwf_nb.pipelines.masks:PIPELINE",
    "sweep": "mlwf_nb.pipelines.sweep:PIPELINE",
}
_LOADED_ENTRY_POINTS = False


def register_pipeline(pipeline: Pipeline, *, replace: bool = False) -> Pipeline:
    """Register a pipeline object under its name."""
    if pipeline.name in _REGISTRY and not replace:
        existing = _REGISTRY[pipeline.name]
        if existing is not pipeline and isinstance(existing, Pipeline):
            raise SpecError(f"pipeline {pipeline.name!r} is already registered; pass replace=True")
    _REGISTRY[pipeline.name] = pipeline
    return pipeline


def _load_entry_points() -> None:
    global _LOADED_ENTRY_POINTS
    if _LOADED_ENTRY_POINTS:
        return
    _LOADED_ENTRY_POINTS = True
    for ep in entry_points(group="mlwf_nb.pipelines"):
        _REGISTRY.setdefault(ep.name, ep.value)


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name`` (imports it on first use)."""
    _load_entry_points()
    if name not in _REGISTRY:
        raise SpecError(f"unknown pipeline {name!r}; available pipelines: {', '.join(available_pipelines())}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        mod, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(mod), attr)
        if not isinstance(entry, Pipeline):
            raise SpecError(f"pipeline entry {name!r} -> {_REGISTRY[name]!r} is not a Pipeline")
        _REGISTRY[name] = entry
    return entry


def available_pipelines() -> list[str]:
    """Names of all known pipelines."""
    _load_entry_points()
    return sorted(_REGISTRY)


def preset_spec(preset: str = "tiny", pipeline: str = "landcover",
                overrides: list[str] | dict | None = None) -> RunSpec:
    """A preset for a pipeline: the general preset, the pipeline's own overrides, then ``overrides``.

    A pipeline with its own preset table offers only those presets (a template's ``paper`` is its own
    published set-up, never land cover's).
    """
    own_table = get_pipeline(pipeline).presets
    if own_table and preset not in own_table:
        raise SpecError(f"pipeline {pipeline!r} has no preset {preset!r}; its presets: {', '.join(own_table)}")
    spec = RunSpec.from_preset(preset).with_overrides({"pipeline": pipeline, "name": f"{pipeline}-{preset}"}
                                                     if pipeline != "landcover" else {})
    own = get_pipeline(pipeline).presets.get(preset)
    if own:
        spec = spec.with_overrides(dict(own))
    return spec.with_overrides(overrides or [])
