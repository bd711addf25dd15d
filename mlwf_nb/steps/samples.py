"""Steps shared by the sample-dataset templates (galaxy, lung): split and train.

A sample dataset (:mod:`mlwf_nb.data.samples`) is a folder of shards of small
images with a class or a mask each. ``split-samples`` cuts it into
``train``/``val``/``test`` shards (stratified by class for classification);
``train-samples`` trains the spec's model on them through the one training path
(:func:`mlwf_nb.steps.landcover.train_from_shards` -> :func:`mlwf_nb.ml.train.fit`),
adding IoU and Dice metrics for segmentation so epoch events carry them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.landcover import shard_prefixes, train_from_shards, with_best
from mlwf_nb.steps.registry import step

__all__ = ["verify_samples", "split_samples", "train_samples", "segmentation_keras_metrics", "PARTS"]

PARTS = ("train", "val", "test")


def _parts(out: list[Path]) -> dict[str, str]:
    """Map ``train``/``val``/``test`` to the shard prefixes among ``out``."""
    found = {Path(p).name: p for p in shard_prefixes(out)}
    if sorted(found) != sorted(PARTS):
        raise StepError(f"split-samples: outputs must be the shards train.*, val.*, test.* ; got {sorted(found)}")
    return found


@step("verify-samples", outputs=("report",))
def verify_samples(dataset: Path, manifest: Path, files: list[Path], keys: list[str], report: Path) -> None:
    """Check every dataset file's sha256 against the manifest, and every shard against dataset.yaml.

    ``files`` are the staged files, ``keys`` their paths in the dataset folder (the manifest's keys).
    """
    from mlwf_nb.data.integrity import verify
    from mlwf_nb.data.samples import SampleDataset
    from mlwf_nb.data.shards import read_shard
    from mlwf_nb.steps._view import dataset_view

    if not files:
        raise StepError("verify-samples: no dataset files were given")
    with dataset_view(files, keys) as root:
        found = verify(root, manifest, raise_on_error=True)
        ds = SampleDataset.open(dataset)
        total = 0
        for rel in ds.shards:
            X, y, _ = read_shard(root / rel)
            labels = y[..., 4] if ds.task == "detection" else y  # detection: [x0, y0, x1, y1, class] rows
            if tuple(X.shape[1:]) != ds.shape or y.ndim != {"classification": 1}.get(ds.task, 3) or (
                    len(y) and int(labels.max()) >= ds.num_classes):
                raise StepError(f"verify-samples: shard {rel!r} holds {X.shape[1:]} images and labels {y.shape} up "
                                f"to {int(labels.max()) if len(y) else None}, but {dataset} says shape "
                                f"{list(ds.shape)}, task {ds.task!r}, {ds.num_classes} classes; regenerate the dataset")
            total += len(y)
    if total != ds.count:
        raise StepError(f"verify-samples: the shards hold {total} samples, {dataset} says {ds.count}")
    _io.write_json(report, {**found.to_dict(), "samples": total})


@step("split-samples", outputs=("out",))
def split_samples(spec: RunSpec, dataset: Path, integrity: Path, shards: list[Path], out: list[Path]) -> None:
    """Split a sample dataset into train/val/test shards (stratified by class for classification)."""
    from mlwf_nb.data.samples import SampleDataset, load_shards
    from mlwf_nb.data.samples import split_samples as split
    from mlwf_nb.data.shards import write_shard

    ds = SampleDataset.open(dataset)
    prefixes = shard_prefixes(shards)
    if not prefixes:
        raise StepError(f"split-samples: no shards of {dataset} were given")
    X, y = load_shards(prefixes)
    groups = y if ds.task == "classification" else np.zeros(len(y), np.int32)
    s = spec.split
    idx = split(list(groups), s.train, s.val, s.test, seed=s.seed, stratify=s.stratify)
    for part, prefix in _parts(out).items():
        write_shard(prefix, X[idx[part]], y[idx[part]], {"scene": part, "dataset": ds.name})
    emit("log", level="info", message=" ".join(f"{k}={len(v)}" for k, v in idx.items()))


_DICE_CLASS: type | None = None


def segmentation_keras_metrics(num_classes: int, target_class: int = 1) -> list[Any]:
    """Keras metrics ``iou`` and ``dice`` of ``target_class`` over an epoch (sparse masks, softmax output).

    Dice is computed from the same accumulated confusion matrix as IoU
    (``dice = 2 IoU / (1 + IoU)``), so both are dataset-level, not batch means.
    """
    import keras

    global _DICE_CLASS
    if _DICE_CLASS is None:

        @keras.saving.register_keras_serializable(package="mlwf_nb")
        class DiceFromIoU(keras.metrics.IoU):
            """Dice coefficient of the target classes, from the IoU's confusion matrix."""

            def result(self) -> Any:
                iou = super().result()
                return 2.0 * iou / (1.0 + iou)

        _DICE_CLASS = DiceFromIoU
    ids = [int(target_class)]
    return [keras.metrics.IoU(num_classes, ids, name="iou", sparse_y_true=True, sparse_y_pred=False),
            _DICE_CLASS(num_classes, ids, name="dice", sparse_y_true=True, sparse_y_pred=False)]


@step("train-samples", outputs=("model", "history", "tensorboard"), checkpoints=("checkpoint",), warm=True,
      runs_model=True)
def train_samples(spec: RunSpec, dataset: Path, train: list[Path], val: list[Path], model: Path,
                  history: Path, checkpoint: list[Path], best: list[Path], tensorboard: list[Path]) -> None:
    """Train the spec's model on sample shards, checkpointing; resumes after a kill.

    A detection dataset trains the detector (:func:`mlwf_nb.steps.masks.train_detector`).
    ``best`` (optional): the ``best.json`` of a hyper-parameter search; its values override the spec.
    ``tensorboard``: the job's ``[train, validation]`` event files.
    """
    from mlwf_nb.data.samples import SampleDataset

    spec = with_best(spec, best)
    ds = SampleDataset.open(dataset)
    if spec.train.train_on_val:
        train, val = [*train, *val], []
    ckpt = next((p for p in checkpoint if str(p).endswith(".keras")), None)
    if ds.task == "detection":
        from mlwf_nb.steps.masks import train_detector

        net, result = train_detector(spec, train, val, checkpoint=ckpt, num_classes=ds.num_classes,
                                     class_names=ds.class_names, tensorboard=tensorboard)
    else:
        metrics = segmentation_keras_metrics(ds.num_classes) if ds.task == "segmentation" else []
        net, result = train_from_shards(spec, train, val, checkpoint=ckpt, num_classes=ds.num_classes,
                                        metrics=metrics, tensorboard=tensorboard)
    with _io.atomic_path(model, suffix=".keras") as tmp:
        net.save(tmp)
    _io.write_json(history, result)
    emit("artifact", kind="model", path=str(model))
