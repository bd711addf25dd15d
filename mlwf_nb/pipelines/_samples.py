"""What the sample-dataset pipelines (galaxy, lung) share: data preparation and the split.

A sample pipeline reads a dataset in the layout of :mod:`mlwf_nb.data.samples`;
``prepare`` generates the synthetic one when asked, ``add_split`` registers the
dataset files and adds ``integrity -> split-samples``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlwf_nb.errors import DatasetError
from mlwf_nb.pipelines.base import Graph
from mlwf_nb.spec import RunSpec

__all__ = ["DATA", "WORK", "OUT", "prepare_samples", "add_split", "add_training"]

DATA, WORK, OUT = "dataset", "work", "outputs"


def prepare_samples(spec: RunSpec, generate: Callable[[RunSpec, Path], object]) -> None:
    """Check the sample dataset (generate the synthetic one only when asked for); nothing is written into it."""
    from mlwf_nb.data.cache import run_inputs
    from mlwf_nb.pipelines._prepare import require_dataset

    def missing(root: str | Path) -> DatasetError:
        where = f"at {str(root)!r} (no dataset.yaml)" if str(root) else "(dataset.path is empty)"
        return DatasetError(f"no sample dataset {where}; point dataset.path at one "
                            "(docs/pipelines.md), or ask for synthetic data: the tiny or cpu preset, or "
                            "dataset.synthetic: true with a path that does not exist yet")

    root = require_dataset(spec, lambda r: (r / "dataset.yaml").is_file(), generate, missing, "synthetic dataset",
                           "images")
    run_inputs(root)


def add_split(spec: RunSpec, g: Graph) -> dict[str, list[str]]:
    """Register the dataset, add verify-samples and split-samples; return the split's shard LFNs by part."""
    from mlwf_nb import _io
    from mlwf_nb.data.cache import run_inputs
    from mlwf_nb.data.samples import SampleDataset

    inputs = run_inputs(spec.dataset.path, notify=False)  # prepare() gave the notice
    root = inputs.root
    ds = SampleDataset.open(root)
    manifest = _io.read_json(inputs.manifest)
    keys = {g.add_input(f"{DATA}/{rel}", root / rel, info["sha256"]): rel for rel, info in manifest["files"].items()}
    g.add_input(f"{DATA}/manifest.json", inputs.manifest)
    yaml_lfn = f"{DATA}/dataset.yaml"
    missing = [f for f in ds.shard_files() if f"{DATA}/{f}" not in keys]
    if yaml_lfn not in keys or missing:
        raise DatasetError(f"{inputs.manifest} does not list {missing or ['dataset.yaml']}; "
                           f"run `mlwf data manifest {root}` again")
    g.add("verify-samples", "integrity", dataset=yaml_lfn, manifest=f"{DATA}/manifest.json", files=list(keys),
          keys=list(keys.values()), report=f"{WORK}/integrity.json")
    parts = {p: [f"{WORK}/split/{p}{ext}" for ext in (".x.npy", ".y.npy", ".json")] for p in ("train", "val", "test")}
    g.add("split-samples", dataset=yaml_lfn, integrity=f"{WORK}/integrity.json",
          shards=[f"{DATA}/{f}" for f in ds.shard_files()], out=[f for p in parts.values() for f in p])
    return parts


def add_training(g: Graph, train: list[str], val: list[str], best: list[str]) -> str:
    """Add the ``train-samples`` job (checkpointed, TensorBoard logs); return the model's LFN."""
    from mlwf_nb.ml.tensorboard import event_files

    model = f"{OUT}/model.keras"
    g.add("train-samples", "train", dataset=f"{DATA}/dataset.yaml", train=train, val=val, model=model,
          history=f"{OUT}/history.json", best=best, tensorboard=event_files("train"),
          checkpoint=[f"{WORK}/checkpoints/train.keras", f"{WORK}/checkpoints/train.keras.json"])
    return model
