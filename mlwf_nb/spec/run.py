"""RunSpec: one validated, YAML-round-trippable description of a run.

The spec is a tree of small dataclasses (:mod:`mlwf_nb.spec.sections`). Validation is
driven by the type hints and by ``field(metadata=...)`` bounds (:mod:`mlwf_nb.spec._schema`),
so every section checks the same way: unknown keys, wrong types and out-of-range values
raise :class:`SpecError` naming the key path (``train.epochs``) and what is allowed.

    >>> spec = RunSpec.from_preset("tiny").with_overrides(["train.epochs=2"])
    >>> spec.train.epochs
    2
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb.errors import SpecError
from mlwf_nb.spec import presets
from mlwf_nb.spec._schema import build, field_names, known, option, parse_override, set_path
from mlwf_nb.spec.sections import (
    AugmentSpec,
    DatasetSpec,
    EvaluateSpec,
    ExecutionSpec,
    HPOSpec,
    ModelSpec,
    PatchSpec,
    SplitSpec,
    StretchSpec,
    SweepSpec,
    TrainSpec,
)

__all__ = ["RunSpec", "SPEC_VERSION", "load_spec"]

SPEC_VERSION = 1


@dataclass
class RunSpec:
    """The whole description of a run."""

    version: int = option(SPEC_VERSION, lo=1, hi=SPEC_VERSION)
    name: str = option("landcover")
    pipeline: str = option("landcover", doc="a registered pipeline: landcover, ...")
    seed: int = option(0, lo=0)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    stretch: StretchSpec = field(default_factory=StretchSpec)
    patches: PatchSpec = field(default_factory=PatchSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    hpo: HPOSpec = field(default_factory=HPOSpec)
    sweep: SweepSpec = field(default_factory=SweepSpec)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build and validate a spec from plain data (missing keys take defaults)."""
        spec = build(cls, data, "")
        spec.validate()
        return spec

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> RunSpec:
        """Parse YAML with the safe loader (no Python object tags) and validate."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise SpecError(f"{source}: not valid YAML{where}: {problem}; the safe loader builds no "
                            "Python objects, write plain mappings, lists and scalars") from err
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SpecError(f"{source}: a spec is a mapping of sections, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except SpecError as err:
            raise SpecError(f"{source}: {err}") from err

    @classmethod
    def from_preset(cls, name: str, pipeline: str | None = None) -> RunSpec:
        """Start from a preset: ``"tiny"``, ``"cpu"``, ``"paper"``, or a pipeline's own, ``"galaxy:tiny"``.

        ``from_preset("tiny", "lung")`` is ``from_preset("lung:tiny")``. See :mod:`mlwf_nb.spec.presets`.

        Raises:
            SpecError: an unknown preset (the message lists the valid ones).
        """
        data = presets.resolve(name, pipeline)
        own = data.pop("__overrides__", None)
        spec = cls.from_dict(data)
        return spec.with_overrides(own) if own else spec

    # -- output ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-safe)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal spec."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as YAML atomically."""
        from mlwf_nb._io import write_text

        return write_text(path, self.to_yaml())

    def copy(self) -> RunSpec:
        """A deep copy."""
        return copy.deepcopy(self)

    # -- edits ----------------------------------------------------------------------
    def get(self, key_path: str) -> Any:
        """Value at a dotted key path, e.g. ``train.epochs``."""
        node: Any = self
        for part in key_path.split("."):
            if not dataclasses.is_dataclass(node) or part not in field_names(type(node)):
                raise SpecError(f"unknown key {key_path!r}: {known(node, part)}")
            node = getattr(node, part)
        return node

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> RunSpec:
        """Return a new spec with ``key.path=value`` overrides applied and validated."""
        items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
        data = self.to_dict()
        for key, value in items:
            set_path(data, key, value, type(self))
        return RunSpec.from_dict(data)

    def validate(self) -> None:
        """Cross-field checks (per-field checks happen while building)."""
        total = self.split.train + self.split.val + self.split.test
        if abs(total - 1.0) > 1e-6:
            raise SpecError(f"split.train + split.val + split.test must sum to 1, got {total:g}; "
                            "adjust the ratios")
        for key in ("patches.sizes", "evaluate.window_sizes"):
            sizes = self.get(key)
            if not sizes or any((not isinstance(s, int)) or s < 4 for s in sizes):
                raise SpecError(f"{key} must be a non-empty list of integers >= 4, got {sizes!r}")
        for i, p in enumerate(self.hpo.space):
            where = f"hpo.space[{i}]"
            if p.type == "choice" and not p.choices:
                raise SpecError(f"{where}.choices is empty; list at least one value for {p.name!r}")
            if p.type in ("float", "int"):
                if p.min is None or p.max is None:
                    raise SpecError(f"{where} ({p.name}): numeric parameters need min and max")
                if p.min > p.max:
                    raise SpecError(f"{where} ({p.name}): min {p.min:g} > max {p.max:g}; swap them")
                if p.log and p.min <= 0:
                    raise SpecError(f"{where} ({p.name}): log scale needs min > 0, got {p.min:g}")
        if self.train.lr_hypergradient and self.train.distribution != "none":
            raise SpecError(f"train.lr_hypergradient does not work with train.distribution="
                            f"{self.train.distribution!r} (its per-step update is not replica-aware); "
                            "set one of them off")
        if self.hpo.strategy != "none" and not self.hpo.space:
            raise SpecError(f"hpo.strategy is {self.hpo.strategy!r} but hpo.space is empty; "
                            "add at least one parameter or set hpo.strategy=none")


def load_spec(source: str | os.PathLike[str] | None = None, *, preset: str | None = None,
              overrides: list[str] | None = None) -> RunSpec:
    """Load a spec from a YAML file or a preset, then apply overrides."""
    if source is not None and preset is not None:
        raise SpecError("give either a spec file or a preset, not both")
    if source is not None:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError(f"cannot read spec file {str(path)!r}: {err.strerror}") from err
        spec = RunSpec.from_yaml(text, source=str(path))
    else:
        spec = RunSpec.from_preset(preset or "tiny")
    return spec.with_overrides(overrides or [])
