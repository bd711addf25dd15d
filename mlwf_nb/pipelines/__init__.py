"""Pipeline registry.

Built-in pipelines plus any registered through the ``mlwf_nb.pipelines``
entry-point group by third-party packages.
"""

from __future__ import annotations

from typing import Any

from mlwf_nb.errors import SpecError
from mlwf_nb.pipelines.base import Graph, InputFile, JobNode, Pipeline
from mlwf_nb.registry import Registry
from mlwf_nb.spec import RunSpec
from mlwf_nb.spec.presets import register_presets

__all__ = ["Pipeline", "Graph", "JobNode", "InputFile", "PIPELINES", "register_pipeline", "get_pipeline",
           "available_pipelines", "preset_spec"]


def _check(name: str, obj: Any) -> Pipeline:
    if not isinstance(obj, Pipeline):
        raise SpecError(f"pipeline {name!r}: {obj!r} is not a mlwf_nb.pipelines.Pipeline")
    if obj.presets:
        register_presets(obj.name, obj.presets)
    return obj


PIPELINES: Registry[Pipeline] = Registry(
    "pipeline", "mlwf_nb.pipelines", error=SpecError, check=_check,
    hint="register more with mlwf_nb.pipelines.register_pipeline or the mlwf_nb.pipelines entry-point group")
for _name in ("landcover", "galaxy", "lung", "masks", "sweep"):
    PIPELINES.register(_name, f"mlwf_nb.pipelines.{_name}:PIPELINE")


def register_pipeline(pipeline: Pipeline, *, replace: bool = False) -> Pipeline:
    """Register a pipeline object under its name (and its presets, for ``"name:preset"``).

    Raises:
        SpecError: another pipeline object already has the name and ``replace`` is false.
    """
    if not replace and pipeline.name in PIPELINES and PIPELINES.loaded(pipeline.name):
        existing = PIPELINES.get(pipeline.name)
        if existing is not pipeline:
            raise SpecError(f"pipeline {pipeline.name!r} is already registered; pass replace=True")
    PIPELINES.register(pipeline.name, pipeline)
    return pipeline


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name`` (imported on first use).

    Raises:
        SpecError: an unknown name (the message lists the registered ones).
    """
    return PIPELINES.get(name)


def available_pipelines() -> list[str]:
    """Names of all known pipelines (installed packages' included)."""
    return PIPELINES.names()


def preset_spec(preset: str = "tiny", pipeline: str | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> RunSpec:
    """The spec of a preset: ``"tiny"``, ``"galaxy:tiny"``, or ``preset_spec("tiny", "galaxy")``.

    The one resolution of presets (:meth:`RunSpec.from_preset`), after the pipeline is
    loaded so that an installed pipeline's own presets are known; then ``overrides``.

    Raises:
        SpecError: an unknown pipeline or preset (the message lists the valid ones).
    """
    named, _, _ = preset.rpartition(":")
    get_pipeline(pipeline or named or "landcover")
    return RunSpec.from_preset(preset, pipeline=pipeline).with_overrides(overrides or [])
