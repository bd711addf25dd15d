"""Lung-segmentation step: ``evaluate-lung`` (Dice, IoU, pixel accuracy, overlays).

Split and training are the shared sample steps (:mod:`mlwf_nb.steps.samples`);
training adds ``iou``/``dice`` Keras metrics so the epoch events (and the
RunMonitor's curves) carry them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb import _io
from mlwf_nb.errors import StepError
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.galaxy import predict_classes
from mlwf_nb.steps.landcover import shard_prefixes
from mlwf_nb.steps.registry import step

__all__ = ["evaluate_lung", "lung_metrics"]


def lung_metrics(truth: np.ndarray, pred: np.ndarray, num_classes: int = 2, target: int = 1) -> dict[str, Any]:
    """Segmentation metrics plus the lung class's Dice/IoU and the all-background baseline."""
    from mlwf_nb.ml.evaluate import segmentation_metrics

    result = segmentation_metrics(truth, pred, num_classes)
    base = segmentation_metrics(truth, np.zeros_like(truth), num_classes)
    result.update(dice_lung=result["dice"][target], iou_lung=result["iou"][target],
                  baseline_all_background={"dice_lung": base["dice"][target], "iou_lung": base["iou"][target],
                                           "pixel_accuracy": base["pixel_accuracy"]})
    return result


def _report(m: dict[str, Any], names: list[str]) -> str:
    b = m["baseline_all_background"]
    lines = ["# Evaluation (lung segmentation)", "",
             f"- Dice (lung): {m['dice_lung']:.4f} (all-background baseline {b['dice_lung']:.4f})",
             f"- IoU (lung): {m['iou_lung']:.4f}", f"- pixel accuracy: {m['pixel_accuracy']:.4f} "
             f"(all-background baseline {b['pixel_accuracy']:.4f})", f"- mean Dice: {m['mean_dice']:.4f}",
             f"- mean IoU: {m['mean_iou']:.4f}", "", "| class | Dice | IoU | accuracy |", "| --- | --- | --- | --- |"]
    for i, name in enumerate(names):
        lines.append(f"| {name} | {m['dice'][i]:.3f} | {m['iou'][i]:.3f} | {m['class_accuracy'][i]:.3f} |")
    return "\n".join([*lines, ""])


@step("evaluate-lung", outputs=("metrics", "confusion", "figure", "overlays", "report"), warm=True, runs_model=True)
def evaluate_lung(spec: RunSpec, dataset: Path, model: Path, test: list[Path], metrics: Path, confusion: Path,
                  figure: Path, overlays: Path, report: Path) -> None:
    """Segment the test shard: Dice, IoU, pixel accuracy, pixel confusion matrix, mask overlays."""
    import keras

    from mlwf_nb.data.samples import SampleDataset, load_shards
    from mlwf_nb.ml.plots import plot_confusion_matrix, plot_samples, save_figure

    ds = SampleDataset.open(dataset)
    X, y = load_shards(shard_prefixes(test))
    if not len(y):
        raise StepError("evaluate-lung: the test shard is empty; raise split.test or dataset.scenes")
    net = keras.models.load_model(model, compile=False)
    pred = predict_classes(net, X, spec.evaluate.batch_size).argmax(axis=-1).astype(np.int32)
    result = lung_metrics(y, pred, ds.num_classes)
    cm = np.asarray(result["confusion_matrix"])
    _io.write_json(metrics, result)
    _io.write_json(confusion, {"classes": ds.class_names, "colors": [list(c) for c in ds.class_colors],
                               "matrix": cm.tolist(), "title": "lung (pixels)"})
    save_figure(plot_confusion_matrix(cm, ds.class_names, ds.class_colors), figure)
    shown = np.arange(min(8, len(y)))
    per_image = [lung_metrics(y[i], pred[i])["dice_lung"] for i in shown]
    save_figure(plot_samples(X[shown], [f"Dice {d:.2f}" for d in per_image], masks=y[shown],
                             pred_masks=pred[shown], columns=4), overlays)
    _io.write_text(report, _report(result, ds.class_names))
    emit("artifact", kind="confusion_matrix", path=str(confusion), figure=str(figure), matrix=cm.tolist(),
         classes=ds.class_names)
    emit("artifact", kind="segmentation", path=str(metrics), dice=result["dice_lung"], iou=result["iou_lung"],
         pixel_accuracy=result["pixel_accuracy"])
    emit("artifact", kind="map", path=str(overlays))
    emit("artifact", kind="report", path=str(report), dice=result["dice_lung"], iou=result["iou_lung"])
