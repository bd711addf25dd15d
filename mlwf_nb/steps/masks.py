"""Mask detection: the detector's training path and ``evaluate-masks`` (COCO mAP, boxes).

Verification, the split and the training job are the shared sample steps
(:mod:`mlwf_nb.steps.samples`): ``train-samples`` on a dataset with ``task:
detection`` (``(N, K, 5)`` boxes per shard, :mod:`mlwf_nb.data.masks_synth`) calls
:func:`train_detector`, and so do HPO trials (:mod:`mlwf_nb.steps.hpo`), so trials and
the final training share one path and report ``val_map50`` / ``val_map`` every epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.landcover import shard_prefixes
from mlwf_nb.steps.registry import step

__all__ = ["evaluate_masks", "train_detector", "box_augment", "predict_boxes"]


def box_augment(spec: RunSpec) -> Any:
    """The spec's ``augment`` section as box-preserving augmentation (flips, zoom, shifts).

    Raises:
        StepError: Rotation or vertical flips asked for: the boxes could not follow them exactly
            (rotation), or faces would stand on their heads (vertical flips).
    """
    from mlwf_nb.data.boxes import BoxAugment

    a = spec.augment
    if a.rotation > 0 or a.flip in ("vertical", "horizontal_and_vertical"):
        raise StepError(f"mask detection: augment.rotation={a.rotation:g}, augment.flip={a.flip!r}: rotated boxes "
                        "no longer enclose their faces tightly and faces are upright; set augment.rotation=0 "
                        "and augment.flip to 'horizontal' or 'none'")
    return BoxAugment(flip=a.flip == "horizontal", scale=a.zoom, shift_x=a.shift_width, shift_y=a.shift_height)


def predict_boxes(model: Any, X: np.ndarray, batch_size: int = 128) -> list[np.ndarray]:
    """Detections ``[x0, y0, x1, y1, score, class]`` per image of ``X`` (uint8, fed raw as in training)."""
    from mlwf_nb.ml.detector import decode

    grids = [np.asarray(model(X[i:i + batch_size].astype("float32"), training=False))
             for i in range(0, len(X), batch_size)]
    return decode(np.concatenate(grids), image_size=X.shape[1:3]) if grids else []


def _validation(X: np.ndarray, boxes: np.ndarray, names: list[str], batch_size: int) -> Any:
    """``epoch_metrics`` for fit: the validation loss and COCO mAP of the model after each epoch."""
    import keras

    from mlwf_nb.ml.coco import coco_evaluate
    from mlwf_nb.ml.detector import STRIDE, decode, detection_loss, encode_targets

    targets = encode_targets(boxes, (X.shape[1] // STRIDE, X.shape[2] // STRIDE), len(names))
    loss = detection_loss(len(names))

    def metrics(model: Any) -> dict[str, float]:
        grids = np.concatenate([np.asarray(model(X[i:i + batch_size].astype("float32"), training=False))
                                for i in range(0, len(X), batch_size)])
        m = coco_evaluate(boxes, decode(grids, image_size=X.shape[1:3]), names, X.shape[1:3])
        val_loss = float(keras.ops.convert_to_numpy(loss(targets, grids)))
        return {"val_loss": val_loss, "val_map50": m["map50"], "val_map": m["map"]}

    return metrics


def train_detector(spec: RunSpec, train: list[Path], val: list[Path], *, checkpoint: Path | None,
                   num_classes: int, class_names: list[str], epochs: int | None = None,
                   tensorboard: list[Path] | None = None) -> tuple[Any, dict[str, Any]]:
    """Build the spec's detector and train it on detection shards through :func:`mlwf_nb.ml.train.fit`."""
    from mlwf_nb.data.samples import load_shards
    from mlwf_nb.ml.detector import DetectionSequence, detection_loss
    from mlwf_nb.ml.models import build_model
    from mlwf_nb.ml.train import fit, seed_everything

    tr, va = shard_prefixes(train), shard_prefixes(val)
    if not tr:
        raise StepError("train (detector): no training shards were given (check the split job)")
    X, boxes = load_shards(tr)
    if boxes.ndim != 3:
        raise StepError(f"train (detector): the shards hold labels of shape {boxes.shape[1:]}, not (K, 5) boxes; "
                        "point dataset.path at a detection dataset (task: detection)")
    t = spec.train
    seq = DetectionSequence(X, boxes, t.batch_size, num_classes, seed=t.seed, augment=box_augment(spec))
    extra = None
    if va:
        Xv, bv = load_shards(va)
        extra = _validation(Xv, bv, class_names, spec.evaluate.batch_size)
    seed_everything(t.seed)
    model = build_model(spec.model.name, tuple(X.shape[1:]), num_classes, width=spec.model.width,
                        dropout=spec.model.dropout)
    result = fit(model, seq, None, epochs=epochs or t.epochs, learning_rate=t.learning_rate, optimizer=t.optimizer,
                 momentum=t.momentum, weight_decay=t.weight_decay, checkpoint=checkpoint,
                 checkpoint_every=t.checkpoint_every, checkpoint_minutes=t.checkpoint_minutes, seed=t.seed,
                 loss=detection_loss(num_classes), epoch_metrics=extra, tensorboard=tensorboard or ())
    return model, result


def _report(m: dict[str, Any]) -> str:
    b = m["baselines"]
    lines = ["# Evaluation (mask detection)", "",
             f"- mAP@0.5: {m['map50']:.4f} (no detections: {b['empty']['map50']:.4f}; true boxes all labelled "
             f"{b['majority_class_true_boxes']['class']}: {b['majority_class_true_boxes']['map50']:.4f})",
             f"- mAP@0.5:0.95: {m['map']:.4f}", f"- mAP@0.75: {m['map75']:.4f}",
             f"- {m['images']} test images, {m['objects']} faces; precision and recall at score >= "
             f"{m['score_threshold']:g}, IoU 0.5", "",
             "| class | AP@0.5 | AP@0.5:0.95 | precision | recall | faces | detections |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for c in m["per_class"]:
        lines.append(f"| {c['class']} | {fmt(c['ap50'])} | {fmt(c['ap'])} | {fmt(c['precision'])} | "
                     f"{fmt(c['recall'])} | {c['objects']} | {c['detections']} |")
    return "\n".join([*lines, ""])


@step("evaluate-masks", outputs=("metrics", "detections", "figure", "report"), warm=True, runs_model=True)
def evaluate_masks(spec: RunSpec, dataset: Path, model: Path, test: list[Path], metrics: Path, detections: Path,
                   figure: Path, report: Path) -> None:
    """Detect faces in the test shard: COCO mAP@0.5 and @0.5:0.95, per-class P/R, images with boxes."""
    import keras

    from mlwf_nb.data.samples import SampleDataset, load_shards
    from mlwf_nb.ml.coco import coco_evaluate, majority_baseline
    from mlwf_nb.ml.plots import plot_boxes, save_figure

    ds = SampleDataset.open(dataset)
    X, truth = load_shards(shard_prefixes(test))
    if not len(truth):
        raise StepError("evaluate-masks: the test shard is empty; raise split.test or dataset.scenes")
    net = keras.models.load_model(model, compile=False)
    found = predict_boxes(net, X, spec.evaluate.batch_size)
    size = X.shape[1:3]
    result = coco_evaluate(truth, found, ds.class_names, size)
    result["baselines"] = majority_baseline(truth, ds.class_names, size)
    _io.write_json(metrics, result)
    _io.write_json(detections, {"format": "x0 y0 x1 y1 score class (pixels)", "classes": ds.class_names,
                                "images": [np.round(d, 2).tolist() for d in found]})
    shown = np.arange(min(16, len(X)))
    threshold = result["score_threshold"]
    save_figure(plot_boxes(X[shown], [found[i][found[i][:, 4] >= threshold] for i in shown], ds.class_names,
                           ds.class_colors, truth=truth[shown]), figure)
    _io.write_text(report, _report(result))
    emit("artifact", kind="detection", path=str(metrics), map50=result["map50"], map=result["map"],
         per_class=result["per_class"])
    emit("artifact", kind="map", path=str(figure))
    emit("artifact", kind="report", path=str(report), map50=result["map50"], map=result["map"])
