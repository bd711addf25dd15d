"""Evaluation in numpy: confusion matrices, accuracy/kappa/F1/IoU, sliding-window scene inference.

Everything here is pure numpy (no Keras). Whole-scene maps are predicted by
:mod:`mlwf_nb.ml.maps`; :class:`MapScores` scores them against labels, also near class
borders (:func:`border_mask`).

Zero-division convention: a precision, recall, F1 or IoU whose denominator is
zero is reported as 0.0, and mean IoU / mean Dice average only the classes that
occur in the truth or the prediction (union > 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.maps import predict_scene

__all__ = ["confusion_matrix", "classification_metrics", "segmentation_metrics", "predict_scene", "border_mask",
           "BORDER_WIDTH", "MapScores"]

BORDER_WIDTH = 3
"""Pixels this close to a class border (Chebyshev distance) count as border pixels in the reports."""


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Count (true, predicted) pairs: ``cm[i, j]`` = samples of class i predicted as j.

    Args:
        y_true: Integer labels of any shape.
        y_pred: Integer predictions, same shape as ``y_true``.
        num_classes: Number of classes; labels must lie in ``[0, num_classes)``.
        ignore_index: A ``y_true`` value to skip (e.g. unlabeled pixels), or None.

    Returns:
        ``(num_classes, num_classes)`` int64 matrix.

    Raises:
        EvaluationError: Shapes differ or a label is out of range.
    """
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if np.asarray(y_true).shape != np.asarray(y_pred).shape:
        raise EvaluationError(f"y_true shape {np.shape(y_true)} != y_pred shape {np.shape(y_pred)}")
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise EvaluationError(f"{name} has values in [{arr.min()}, {arr.max()}] outside [0, {num_classes}); "
                                  "map dataset indices to model classes first or set ignore_index")
    flat = t.astype(np.int64) * num_classes + p.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    union = support + predicted - tp
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    return {"tp": tp, "support": support, "predicted": predicted, "union": union,
            "precision": precision, "recall": recall, "f1": _ratio(2 * tp, support + predicted),
            "iou": _ratio(tp, union)}


def _kappa(cm: np.ndarray) -> float:
    total = cm.sum()
    if total == 0:
        return 0.0
    po = np.trace(cm) / total
    pe = float((cm.sum(axis=0).astype(np.float64) * cm.sum(axis=1)).sum()) / float(total) ** 2
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return float((po - pe) / (1.0 - pe))


def _mean_present(values: np.ndarray, union: np.ndarray) -> float:
    present = union > 0
    return float(values[present].mean()) if present.any() else 0.0


def classification_metrics(cm: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Overall accuracy, Cohen's kappa, per-class precision/recall/F1/IoU/support, mIoU.

    Args:
        cm: Square confusion matrix (rows truth, columns prediction).
        class_names: One name per row.

    Returns:
        JSON-ready dict: ``overall_accuracy``, ``kappa``, ``miou``, ``mean_f1``,
        ``support`` (total), ``per_class`` ({name: {precision, recall, f1, iou, support}}).

    Raises:
        EvaluationError: ``cm`` is not square or does not match ``class_names``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise EvaluationError(f"confusion matrix of shape {cm.shape} does not match "
                              f"{len(class_names)} class names {list(class_names)}")
    pc = _per_class(cm)
    total = int(cm.sum())
    per_class = {str(name): {"precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
                             "f1": float(pc["f1"][i]), "iou": float(pc["iou"][i]),
                             "support": int(pc["support"][i])}
                 for i, name in enumerate(class_names)}
    return {"overall_accuracy": float(np.trace(cm) / total) if total else 0.0, "kappa": _kappa(cm),
            "miou": _mean_present(pc["iou"], pc["union"]), "mean_f1": _mean_present(pc["f1"], pc["union"]),
            "support": total, "per_class": per_class}


def segmentation_metrics(y_true_mask: Any, y_pred_mask: Any, num_classes: int,
                         ignore_index: int | None = None) -> dict[str, Any]:
    """Dice, IoU and pixel accuracy of a predicted class mask, per class and mean.

    Args:
        y_true_mask: Integer mask(s), e.g. ``(H, W)`` or ``(N, H, W)``.
        y_pred_mask: Predicted mask(s), same shape.
        num_classes: Number of classes.
        ignore_index: A truth value to skip, or None.

    Returns:
        ``{"pixel_accuracy", "mean_dice", "mean_iou", "dice": [...], "iou": [...],
        "class_accuracy": [...], "confusion_matrix": [[...]]}`` (lists per class).
    """
    cm = confusion_matrix(y_true_mask, y_pred_mask, num_classes, ignore_index)
    pc = _per_class(cm)
    total = int(cm.sum())
    return {"pixel_accuracy": float(np.trace(cm) / total) if total else 0.0,
            "mean_dice": _mean_present(pc["f1"], pc["union"]), "mean_iou": _mean_present(pc["iou"], pc["union"]),
            "dice": pc["f1"].tolist(), "iou": pc["iou"].tolist(), "class_accuracy": pc["recall"].tolist(),
            "confusion_matrix": cm.tolist()}


def border_mask(label: np.ndarray, width: int = BORDER_WIDTH) -> np.ndarray:
    """Pixels within ``width`` pixels of a border between two labelled classes.

    A pixel is a border pixel when the ``(2 width + 1)``-square window around it
    holds two different labelled classes (index > 0; unlabeled pixels are no
    class). Accuracy over these pixels measures how well a map follows class
    borders, which whole-scene accuracy hides (most pixels lie inside regions).

    Args:
        label: ``(H, W)`` integer class indices, 0 = unlabeled.
        width: Distance in pixels (0: no pixel is a border pixel).

    Returns:
        ``(H, W)`` bool.
    """
    from scipy import ndimage

    lab = np.asarray(label)
    if width <= 0:
        return np.zeros(lab.shape, dtype=bool)
    size = 2 * int(width) + 1
    top = ndimage.maximum_filter(lab, size=size, mode="nearest")
    low = ndimage.minimum_filter(np.where(lab > 0, lab, np.iinfo(np.int32).max).astype(np.int32),
                                 size=size, mode="nearest")
    return (top > 0) & (low < np.iinfo(np.int32).max) & (top != low)


class MapScores:
    """Confusion matrix and class-border accuracy of classification maps, summed over scenes.

    Pixels whose truth is 0 (unlabeled or nodata) are left out; model class ``k`` is
    dataset class ``k + 1`` in both maps.
    """

    def __init__(self, num_classes: int, border_width: int = BORDER_WIDTH) -> None:
        self.num_classes, self.border_width = int(num_classes), int(border_width)
        self.cm = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.border_correct = 0
        self.border_pixels = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> int:
        """Score one map ``(H, W)`` of dataset class indices against its truth; returns the labelled pixels."""
        pred, truth = np.asarray(pred), np.asarray(truth)
        labelled = truth > 0
        self.cm += confusion_matrix(truth[labelled].astype(np.int64) - 1, pred[labelled].astype(np.int64) - 1,
                                    self.num_classes)
        near = border_mask(truth, self.border_width) & labelled
        self.border_pixels += int(near.sum())
        self.border_correct += int((near & (pred == truth)).sum())
        return int(labelled.sum())

    def metrics(self, class_names: Sequence[str]) -> dict[str, Any]:
        """:func:`classification_metrics` plus ``border``: accuracy within ``border_width`` px of a class border."""
        out = classification_metrics(self.cm, class_names)
        total = int(self.cm.sum())
        out["border"] = {"width": self.border_width, "pixels": self.border_pixels,
                         "share": self.border_pixels / total if total else 0.0,
                         "overall_accuracy": self.border_correct / self.border_pixels if self.border_pixels else 0.0}
        return out
