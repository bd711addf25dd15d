"""The sections of a RunSpec: one small dataclass per concern, bounds and docs on each field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlwf_nb.spec._schema import option

__all__ = ["DatasetSpec", "SplitSpec", "StretchSpec", "PatchSpec", "AugmentSpec", "ModelSpec", "TrainSpec",
           "EvaluateSpec", "HPOParam", "HPOSpec", "SweepParam", "SweepSpec", "ExecutionSpec"]


@dataclass
class DatasetSpec:
    """Where the scenes are, and how to make a synthetic set when asked for one."""

    path: str = option("", doc="dataset folder (dataset.yaml, images/, labels/), a GID folder as downloaded "
                       "(image_NirRGB/, label_5classes/), or the http(s) URL of a published dataset")
    synthetic: bool = option(False, doc="generate a synthetic GID-like dataset at `path` if it does not exist; "
                             "an override of dataset.path without dataset.synthetic turns it off")
    scenes: int = option(12, lo=1, hi=10000, doc="synthetic: number of scenes")
    height: int = option(256, lo=32, hi=20000, doc="synthetic: scene height in pixels")
    width: int = option(256, lo=32, hi=20000, doc="synthetic: scene width in pixels")
    sources: list[str] = option(["GF-2", "GF-1", "JL-1"], doc="synthetic: sensor sources")
    seed: int = option(0, lo=0, doc="synthetic: generator seed")


@dataclass
class SplitSpec:
    """Scene-level train/val/test split."""

    train: float = option(0.6, lo=0.0, hi=1.0, lo_open=True)
    val: float = option(0.2, lo=0.0, hi=1.0)
    test: float = option(0.2, lo=0.0, hi=1.0)
    seed: int = option(0, lo=0)
    stratify: bool = option(True, doc="stratify by sensor source where counts allow")


@dataclass
class StretchSpec:
    """16-bit (or float) to 8-bit requantisation."""

    method: Literal["optimized_linear", "percentile"] = option("optimized_linear")
    low: float = option(2.5, lo=0.0, hi=50.0, doc="lower cumulative percent")
    high: float = option(99.0, lo=50.0, hi=100.0, doc="upper cumulative percent")
    per_source: bool = option(True, doc="fit one stretch per sensor source")
    nodata: float | Literal["dataset"] | None = option(
        "dataset", doc="left out of the fit and written as 0 (the 8-bit nodata) in the stretched scenes: "
        "'dataset' (dataset.yaml's nodata), a number, or null (every value is data)")
    value_range: list[float] | None = option(
        None, doc="float imagery: the [lo, hi] range binned for the fit; null: the training scenes' own "
        "min and max (one extra pass); integer imagery up to 16 bits is fitted exactly")
    write_scenes: bool = option(
        False, doc="also write each test scene stretched to 8 bits as outputs/scenes/<scene>.stretched.tif "
        "(one preprocess job a test scene); evaluate stretches the raw scenes in memory either way")


@dataclass
class PatchSpec:
    """Multi-scale patch sampling for training."""

    sizes: list[int] = option([56, 112, 224], doc="patch sizes sampled from each scene")
    input_size: int = option(224, lo=8, hi=1024, doc="patches are resized to input_size^2")
    per_scene: int = option(200, lo=1, hi=1_000_000, doc="patches sampled per scene")
    min_purity: float = option(0.6, lo=0.0, hi=1.0, doc="min fraction of the majority class")
    balance: bool = option(True, doc="balance classes when sampling")
    seed: int = option(0, lo=0)


@dataclass
class AugmentSpec:
    """Random augmentation applied to training patches."""

    rotation: float = option(0.0, lo=0.0, hi=0.5, doc="max rotation as a fraction of a full turn")
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = option(
        "horizontal_and_vertical")
    zoom: float = option(0.0, lo=0.0, hi=0.9, doc="max zoom fraction")
    shift_height: float = option(0.0, lo=0.0, hi=0.9, doc="max vertical shift fraction")
    shift_width: float = option(0.0, lo=0.0, hi=0.9, doc="max horizontal shift fraction")
    seed: int = option(0, lo=0)


@dataclass
class ModelSpec:
    """Which model to build."""

    name: str = option("small_cnn", doc="a registered model: small_cnn, resnet50, unet, centernet")
    width: int = option(32, lo=4, hi=1024, doc="base filter count for small models")
    dropout: float = option(0.2, lo=0.0, hi=0.95)
    per_source: bool = option(False, doc="one model per sensor source plus a hybrid evaluation")


@dataclass
class TrainSpec:
    """Optimisation and checkpointing."""

    epochs: int = option(10, lo=1, hi=100_000)
    batch_size: int = option(32, lo=1, hi=65536)
    learning_rate: float = option(1e-3, lo=0.0, hi=10.0, lo_open=True)
    optimizer: Literal["adam", "sgd", "adamw"] = option("adam")
    momentum: float = option(0.9, lo=0.0, hi=1.0)
    weight_decay: float = option(0.0, lo=0.0, hi=1.0)
    checkpoint_every: int = option(1, lo=1, doc="save a checkpoint every N epochs")
    checkpoint_minutes: float = option(0.0, lo=0.0, doc="also save every N minutes (0: off)")
    seed: int = option(0, lo=0)
    distribution: Literal["none", "mirrored"] = option("none")
    train_on_val: bool = option(False, doc="final training on train+val (after HPO)")
    lr_hypergradient: bool = option(False, doc="adapt the learning rate every step by hypergradient descent")
    lr_hypergradient_rate: float = option(0.02, lo=0.0, hi=0.5, lo_open=True,
                                          doc="hypergradient: a step changes the learning rate by at most this factor")
    keep_best: bool = option(True, doc="evaluate and keep the weights of the best epoch by `monitor`, "
                             "not the last epoch's")
    monitor: str = option("val_loss", doc="the epoch metric keep_best follows (val_loss, val_accuracy, ...); "
                          "names ending in 'loss' are better lower, others higher")


@dataclass
class EvaluateSpec:
    """Whole-scene sliding-window evaluation."""

    window_sizes: list[int] = option([56, 112, 224], doc="sliding-window sizes (multi-scale)")
    stride_fraction: float = option(0.5, lo=0.05, hi=1.0, doc="stride as a fraction of window size")
    blend: Literal["gaussian", "uniform"] = option(
        "gaussian", doc="how overlapping windows' class probabilities combine per pixel: gaussian "
        "(centre-weighted, maps follow class borders) or uniform (the plain mean)")
    batch_size: int = option(64, lo=1, hi=65536)


@dataclass
class HPOParam:
    """One dimension of the search space."""

    name: str = option("train.learning_rate", doc="a spec key path, e.g. train.learning_rate")
    type: Literal["float", "int", "choice"] = option("float")
    min: float | None = option(None)
    max: float | None = option(None)
    log: bool = option(False)
    step: float | None = option(None)
    choices: list[Any] = option([])


@dataclass
class HPOSpec:
    """Hyper-parameter search, unrolled into rounds of trial jobs."""

    strategy: str = option("none", doc="none, or a registered strategy: grid, random, bayesian, hyperband, "
                                       "evolutionary, gradient, ... (mlwf_nb.hpo.strategies)")
    trials: int = option(8, lo=1, hi=100_000)
    parallel: int = option(2, lo=1, hi=10_000, doc="trials per round (K)")
    objective: str = option("val_accuracy")
    direction: Literal["max", "min"] = option("max")
    space: list[HPOParam] = option([])
    seed: int = option(0, lo=0)
    max_consecutive_failures: int = option(3, lo=1)
    cheap_objective: bool = option(False, doc="replace training by an analytic function (tests)")
    options: dict[str, Any] = option({}, doc="the strategy's own options, e.g. {factor: 3} for hyperband")


@dataclass
class SweepParam:
    """One notebook parameter of a sweep and the values it takes."""

    name: str = option("", doc="a variable of the notebook's `parameters` cell")
    values: list[Any] = option([], doc="its values: one job per combination of all parameters' values")


@dataclass
class SweepSpec:
    """A notebook run once per combination of parameter values (pipeline ``sweep``, ``mlwf sweep``)."""

    notebook: str = option("", doc="the notebook to run with papermill")
    parameters: list[SweepParam] = option([])
    kernel: str = option("", doc="Jupyter kernel name (empty: the notebook's own)")
    timeout: int = option(0, lo=0, doc="per-cell execution timeout in seconds (0: none)")


@dataclass
class ExecutionSpec:
    """How and where the workflow runs."""

    backend: str = option("local", doc="a registered backend: local, pegasus")
    jobs: int = option(0, lo=0, hi=4096, doc="parallel jobs (0: number of cores)")
    retries: int = option(2, lo=0, hi=100, doc="dagman.retry: extra tries of a failed job")
    checkpoint_time: int = option(0, lo=0, doc="pegasus checkpoint.time in minutes (0: off)")
    maxwalltime: int = option(0, lo=0, doc="pegasus maxwalltime in minutes (0: off)")
    site: str = option("local", doc="execution site: local, condorpool, sharedfs, gpus")
    site_catalog: str | None = option(None, doc="your own sites.yml instead of a preset")
    container: str | None = option(None, doc="container image for the jobs, e.g. docker://mlwf/job")
    container_type: Literal["singularity", "docker"] = option("singularity")
    cores: int = option(1, lo=1)
    memory_mb: int = option(4096, lo=64)
    gpus: int = option(0, lo=0)
    cluster_size: int = option(0, lo=0, doc="pegasus: bundle this many short fan-out jobs into one (0: off)")
    staging: Literal["shared", "sandbox"] = option(
        "shared", doc="local backend: jobs in the run directory (shared) or each in an empty folder holding only "
        "its declared files, as on an HTCondor pool (sandbox)")
