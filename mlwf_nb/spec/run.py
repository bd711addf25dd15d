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

from mlwf_nb import _yaml
from mlwf_nb.errors import SpecError
from mlwf_nb.spec import presets
from mlwf_nb.spec._schema import build, check_value, field_names, known, option, parse_override, set_path
from mlwf_nb.spec.sections import (
    AugmentSpec,
    DatasetSpec,
    EvaluateSpec,
    ExecutionSpec,
    HPOParam,
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
        """Parse YAML with the safe loader (no Python object tags, no key given twice) and validate."""
        try:
            data = _yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            hint = "" if "given twice" in problem else ("; the safe loader builds no Python objects, write "
                                                        "plain mappings, lists and scalars")
            raise SpecError(f"{source}: not valid YAML{where}: {problem}{hint}") from err
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
        """Return a new spec with ``key.path=value`` overrides applied and validated.

        Setting ``dataset.path`` without ``dataset.synthetic`` in the same call turns synthetic
        generation off: a preset's synthetic dataset is generated only at the preset's own path
        (or where ``dataset.synthetic=true`` is given with the path), so a mistyped path is an
        error instead of a fresh synthetic dataset.
        """
        items = list(overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides))
        data = self.to_dict()
        for key, value in items:
            set_path(data, key, value, type(self))
        keys = {key for key, _ in items}
        if "dataset.path" in keys and "dataset.synthetic" not in keys:
            # a dataset you point at is real data: a mistyped path must fail, not fill with synthetic scenes
            data["dataset"]["synthetic"] = False
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
        vr = self.stretch.value_range
        if vr is not None and (len(vr) != 2 or not vr[0] < vr[1]):
            raise SpecError(f"stretch.value_range must be [lo, hi] with lo < hi, got {vr!r}; or null to fit "
                            "it from the training scenes")
        if not self.train.monitor.strip():
            raise SpecError("train.monitor is empty; name an epoch metric such as val_loss or val_accuracy")
        for i, p in enumerate(self.hpo.space):
            self._check_param(f"hpo.space[{i}]", p)
        if self.train.lr_hypergradient and self.train.distribution != "none":
            raise SpecError(f"train.lr_hypergradient does not work with train.distribution="
                            f"{self.train.distribution!r} (its per-step update is not replica-aware); "
                            "set one of them off")
        if self.hpo.strategy != "none" and not self.hpo.space:
            raise SpecError(f"hpo.strategy is {self.hpo.strategy!r} but hpo.space is empty; "
                            "add at least one parameter or set hpo.strategy=none")

    def _check_param(self, where: str, p: HPOParam) -> None:
        """One search dimension: its key exists and holds a value of the kind the search draws."""
        try:
            current = self.get(p.name)
        except SpecError as err:
            raise SpecError(f"{where}.name: {err}; the search can only set existing keys") from err
        if dataclasses.is_dataclass(current):
            raise SpecError(f"{where}.name {p.name!r} is a section, not a value; name a key inside it "
                            f"(one of {', '.join(field_names(type(current)))})")
        if p.type == "choice":
            if not p.choices:
                raise SpecError(f"{where}.choices is empty; list at least one value for {p.name!r}")
            for choice in p.choices:  # each choice must be a valid value for the key
                try:
                    check_value(type(self), p.name, choice)
                except SpecError as err:
                    raise SpecError(f"{where}: choice {choice!r} for {p.name!r} is not valid: {err}") from err
            return
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise SpecError(f"{where} ({p.name}): type {p.type!r} draws numbers but {p.name} holds "
                            f"{current!r}; use type: choice with its values")
        if p.type == "float" and isinstance(current, int):
            raise SpecError(f"{where} ({p.name}): {p.name} is an integer setting; use type: int")
        if p.min is None or p.max is None:
            raise SpecError(f"{where} ({p.name}): numeric parameters need min and max")
        if p.min > p.max:
            raise SpecError(f"{where} ({p.name}): min {p.min:g} > max {p.max:g}; swap them")
        if p.log and p.min <= 0:
            raise SpecError(f"{where} ({p.name}): log scale needs min > 0, got {p.min:g}")
        for bound in (p.min, p.max):  # both ends must be valid values of the key
            value = int(bound) if p.type == "int" else float(bound)
            try:
                check_value(type(self), p.name, value)
            except SpecError as err:
                raise SpecError(f"{where} ({p.name}): the range [{p.min:g}, {p.max:g}] leaves the key's "
                                f"bounds: {err}") from err


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
