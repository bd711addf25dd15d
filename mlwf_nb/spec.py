"""RunSpec: one validated, YAML-round-trippable description of a run.

The spec is a tree of small dataclasses. Validation is driven by the type hints
and by ``field(metadata=...)`` bounds, so every section checks the same way:
unknown keys, wrong types and out-of-range values raise :class:`SpecError`
naming the key path (``train.epochs``) and what is allowed.

    >>> spec = RunSpec.from_preset("tiny").with_overrides(["train.epochs=2"])
    >>> spec.train.epochs
    2
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from mlwf_nb.errors import SpecError

__all__ = [
    "RunSpec", "DatasetSpec", "SplitSpec", "StretchSpec", "PatchSpec", "AugmentSpec",
    "ModelSpec", "TrainSpec", "EvaluateSpec", "HPOParam", "HPOSpec", "ExecutionSpec",
    "PRESETS", "SPEC_VERSION", "load_spec", "parse_override",
]

SPEC_VERSION = 1
T = TypeVar("T")


def _f(default: Any, *, lo: float | None = None, hi: float | None = None,
       doc: str = "", lo_open: bool = False) -> Any:
    """A dataclass field with bounds and a one-line description."""
    meta = {"lo": lo, "hi": hi, "doc": doc, "lo_open": lo_open}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DatasetSpec:
    """Where the scenes are, and how to make a synthetic set when there are none."""

    path: str = _f("data/gid-synth", doc="dataset folder (dataset.yaml, images/, labels/)")
    synthetic: bool = _f(True, doc="generate a synthetic GID-like dataset at `path` if missing")
    scenes: int = _f(12, lo=1, hi=10000, doc="synthetic: number of scenes")
    height: int = _f(256, lo=32, hi=20000, doc="synthetic: scene height in pixels")
    width: int = _f(256, lo=32, hi=20000, doc="synthetic: scene width in pixels")
    sources: list[str] = _f(["GF-2", "GF-1", "JL-1"], doc="synthetic: sensor sources")
    seed: int = _f(0, lo=0, doc="synthetic: generator seed")


@dataclass
class SplitSpec:
    """Scene-level train/val/test split."""

    train: float = _f(0.6, lo=0.0, hi=1.0, lo_open=True)
    val: float = _f(0.2, lo=0.0, hi=1.0)
    test: float = _f(0.2, lo=0.0, hi=1.0)
    seed: int = _f(0, lo=0)
    stratify: bool = _f(True, doc="stratify by sensor source where counts allow")


@dataclass
class StretchSpec:
    """16-bit to 8-bit requantisation."""

    method: Literal["optimized_linear", "percentile"] = _f("optimized_linear")
    low: float = _f(2.5, lo=0.0, hi=50.0, doc="lower cumulative percent")
    high: float = _f(99.0, lo=50.0, hi=100.0, doc="upper cumulative percent")
    per_source: bool = _f(True, doc="fit one stretch per sensor source")
    nodata: int = _f(0, doc="pixel value ignored when fitting")


@dataclass
class PatchSpec:
    """Multi-scale patch sampling for training."""

    sizes: list[int] = _f([56, 112, 224], doc="patch sizes sampled from each scene")
    input_size: int = _f(224, lo=8, hi=1024, doc="patches are resized to input_size^2")
    per_scene: int = _f(200, lo=1, hi=1_000_000, doc="patches sampled per scene")
    min_purity: float = _f(0.6, lo=0.0, hi=1.0, doc="min fraction of the majority class")
    balance: bool = _f(True, doc="balance classes when sampling")
    seed: int = _f(0, lo=0)


@dataclass
class AugmentSpec:
    """Random augmentation applied to training patches."""

    rotation: float = _f(0.0, lo=0.0, hi=0.5, doc="max rotation as a fraction of a full turn")
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = _f(
        "horizontal_and_vertical")
    zoom: float = _f(0.0, lo=0.0, hi=0.9, doc="max zoom fraction")
    shift_height: float = _f(0.0, lo=0.0, hi=0.9, doc="max vertical shift fraction")
    shift_width: float = _f(0.0, lo=0.0, hi=0.9, doc="max horizontal shift fraction")
    seed: int = _f(0, lo=0)


@dataclass
class ModelSpec:
    """Which model to build."""

    name: str = _f("small_cnn", doc="a registered model: small_cnn, resnet50, unet")
    width: int = _f(32, lo=4, hi=1024, doc="base filter count for small models")
    dropout: float = _f(0.2, lo=0.0, hi=0.95)
    per_source: bool = _f(False, doc="one model per sensor source plus a hybrid evaluation")


@dataclass
class TrainSpec:
    """Optimisation and checkpointing."""

    epochs: int = _f(10, lo=1, hi=100_000)
    batch_size: int = _f(32, lo=1, hi=65536)
    learning_rate: float = _f(1e-3, lo=0.0, hi=10.0, lo_open=True)
    optimizer: Literal["adam", "sgd", "adamw"] = _f("adam")
    momentum: float = _f(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _f(0.0, lo=0.0, hi=1.0)
    checkpoint_every: int = _f(1, lo=1, doc="save a checkpoint every N epochs")
    checkpoint_minutes: float = _f(0.0, lo=0.0, doc="also save every N minutes (0: off)")
    seed: int = _f(0, lo=0)
    distribution: Literal["none", "mirrored"] = _f("none")
    train_on_val: bool = _f(False, doc="final training on train+val (after HPO)")


@dataclass
class EvaluateSpec:
    """Whole-scene sliding-window evaluation."""

    window_sizes: list[int] = _f([56, 112, 224], doc="sliding-window sizes (multi-scale)")
    stride_fraction: float = _f(0.5, lo=0.05, hi=1.0, doc="stride as a fraction of window size")
    batch_size: int = _f(64, lo=1, hi=65536)


@dataclass
class HPOParam:
    """One dimension of the search space."""

    name: str = _f("train.learning_rate", doc="a spec key path, e.g. train.learning_rate")
    type: Literal["float", "int", "choice"] = _f("float")
    min: float | None = _f(None)
    max: float | None = _f(None)
    log: bool = _f(False)
    step: float | None = _f(None)
    choices: list[Any] = _f([])


@dataclass
class HPOSpec:
    """Hyper-parameter search, unrolled into rounds of trial jobs."""

    strategy: Literal["none", "grid", "random", "bayesian", "hyperband", "evolutionary"] = _f("none")
    trials: int = _f(8, lo=1, hi=100_000)
    parallel: int = _f(2, lo=1, hi=10_000, doc="trials per round (K)")
    objective: str = _f("val_accuracy")
    direction: Literal["max", "min"] = _f("max")
    space: list[HPOParam] = _f([])
    seed: int = _f(0, lo=0)
    max_consecutive_failures: int = _f(3, lo=1)
    cheap_objective: bool = _f(False, doc="replace training by an analytic function (tests)")


@dataclass
class ExecutionSpec:
    """How and where the workflow runs."""

    backend: str = _f("local", doc="a registered backend: local, pegasus")
    jobs: int = _f(0, lo=0, hi=4096, doc="parallel jobs (0: number of cores)")
    retries: int = _f(2, lo=0, hi=100, doc="dagman.retry: extra tries of a failed job")
    checkpoint_time: int = _f(0, lo=0, doc="pegasus checkpoint.time in minutes (0: off)")
    maxwalltime: int = _f(0, lo=0, doc="pegasus maxwalltime in minutes (0: off)")
    site: str = _f("local", doc="execution site: local, condorpool, sharedfs, gpus")
    site_catalog: str | None = _f(None, doc="your own sites.yml instead of a preset")
    container: str | None = _f(None, doc="container image for the jobs, e.g. docker://mlwf/job")
    container_type: Literal["singularity", "docker"] = _f("singularity")
    cores: int = _f(1, lo=1)
    memory_mb: int = _f(4096, lo=64)
    gpus: int = _f(0, lo=0)
    cluster_size: int = _f(0, lo=0, doc="pegasus: bundle this many short fan-out jobs into one (0: off)")


@dataclass
class RunSpec:
    """The whole description of a run."""

    version: int = _f(SPEC_VERSION, lo=1, hi=SPEC_VERSION)
    name: str = _f("landcover")
    pipeline: str = _f("landcover", doc="a registered pipeline: landcover, ...")
    seed: int = _f(0, lo=0)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    stretch: StretchSpec = field(default_factory=StretchSpec)
    patches: PatchSpec = field(default_factory=PatchSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    hpo: HPOSpec = field(default_factory=HPOSpec)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build and validate a spec from plain data (missing keys take defaults)."""
        spec = _build(cls, data, "")
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
    def from_preset(cls, name: str) -> RunSpec:
        """Start from a named preset (tiny, cpu, paper)."""
        if name not in PRESETS:
            raise SpecError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        return cls.from_dict(copy.deepcopy(PRESETS[name]))

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
            if not dataclasses.is_dataclass(node) or part not in _field_names(type(node)):
                raise SpecError(f"unknown key {key_path!r}: {_known(node, part)}")
            node = getattr(node, part)
        return node

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> RunSpec:
        """Return a new spec with ``key.path=value`` overrides applied and validated."""
        items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
        data = self.to_dict()
        for key, value in items:
            _set_path(data, key, value, type(self))
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
        if self.hpo.strategy != "none" and not self.hpo.space:
            raise SpecError(f"hpo.strategy is {self.hpo.strategy!r} but hpo.space is empty; "
                            "add at least one parameter or set hpo.strategy=none")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value``; the value is parsed as YAML (safe loader)."""
    if "=" not in text:
        raise SpecError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise SpecError(f"override {key!r}: value {raw!r} is not valid YAML") from err
    return key.strip(), value


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


# -- building and checking ------------------------------------------------------------

def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _known(node: Any, part: str) -> str:
    if dataclasses.is_dataclass(node):
        return f"{part!r} is not a key here; known keys: {', '.join(_field_names(type(node)))}"
    return f"{part!r} cannot be addressed inside a {type(node).__name__}"


def _set_path(data: dict[str, Any], key: str, value: Any, cls: type) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        names = _field_names(cls)
        if part not in names:
            raise SpecError(f"unknown key {path!r}; known keys here: {', '.join(names)}")
        hint = typing.get_type_hints(cls)[part]
        if depth == len(parts) - 1:
            node[part] = value
            return
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise SpecError(f"{path!r} is a value, not a section; cannot set {key!r}")
        node = node.setdefault(part, {})
        cls = hint


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise SpecError(f"{where or 'spec'} must be a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = _field_names(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise SpecError(f"unknown key {_join(where, str(unknown[0]))!r}; "
                        f"known keys{' in ' + where if where else ''}: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _check(hints[f.name], data[f.name], _join(where, f.name), f.metadata)
    return cls(**kwargs)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _check(hint: Any, value: Any, where: str, meta: Any) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check(inner[0], value, where, meta)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise SpecError(f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SpecError(f"{where} must be a list, got {type(value).__name__} {value!r}")
        (item,) = get_args(hint)
        return [_check(item, v, f"{where}[{i}]", {}) for i, v in enumerate(value)]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where} must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, str):
            value = _yaml11_float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise SpecError(f"{where} must be a string, got {value!r}")
        return value
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = ">" if meta.get("lo_open") else ">="
        raise SpecError(f"{where} must be {op} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
                        + f", got {value!r}")
    if hi is not None and value > hi:
        raise SpecError(f"{where} must be <= {hi:g}, got {value!r}")
    return value


def _yaml11_float(text: str) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; accept it as the number it means."""
    try:
        return float(text) if text.strip().lower() not in ("nan", "inf", "-inf", "+inf") else text
    except ValueError:
        return text


# -- presets ---------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "name": "tiny",
        "dataset": {"path": "data/gid-synth-tiny", "scenes": 6, "height": 96, "width": 96,
                    "sources": ["GF-2", "GF-1"]},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "patches": {"sizes": [16, 32], "input_size": 16, "per_scene": 48, "min_purity": 0.5},
        "augment": {"flip": "horizontal_and_vertical"},
        "model": {"name": "small_cnn", "width": 8, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 32, "learning_rate": 3e-3},
        "evaluate": {"window_sizes": [16, 32], "stride_fraction": 1.0, "batch_size": 256},
        "execution": {"jobs": 2, "retries": 1},
    },
    "cpu": {
        "name": "cpu",
        "dataset": {"path": "data/gid-synth-cpu", "scenes": 12, "height": 384, "width": 384,
                    "sources": ["GF-2", "GF-1", "JL-1"]},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "patches": {"sizes": [24, 48, 96], "input_size": 32, "per_scene": 400, "min_purity": 0.6},
        "augment": {"flip": "horizontal_and_vertical", "rotation": 0.0},
        "model": {"name": "small_cnn", "width": 24, "dropout": 0.2},
        "train": {"epochs": 8, "batch_size": 64, "learning_rate": 2e-3},
        "evaluate": {"window_sizes": [24, 48, 96], "stride_fraction": 0.5, "batch_size": 256},
    },
    "paper": {
        "name": "paper",
        "dataset": {"path": "data/gid-synth-paper", "scenes": 150, "height": 6800, "width": 7200,
                    "sources": ["GF-2", "GF-1", "JL-1", "ZY-3", "Sentinel-2A"]},
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        "patches": {"sizes": [56, 112, 224], "input_size": 224, "per_scene": 2000},
        # flips only by default: numpy flips on uint8 in the loader; Keras rotation/zoom/shift layers
        # ran ~20x slower on CPU (benchmarks: augment) and 45x inside a jitted JAX model
        "augment": {"flip": "horizontal_and_vertical"},
        "model": {"name": "resnet50", "dropout": 0.0},
        "train": {"epochs": 50, "batch_size": 256, "learning_rate": 1e-3, "optimizer": "sgd",
                  "momentum": 0.9, "weight_decay": 1e-4},
        "evaluate": {"window_sizes": [56, 112, 224], "stride_fraction": 0.5, "batch_size": 256},
        "execution": {"site": "gpus", "gpus": 1, "cores": 8, "memory_mb": 32768,
                      "checkpoint_time": 60, "maxwalltime": 240},
    },
}
