"""Detection metrics by the COCO reference implementation (pycocotools).

Mean average precision at IoU 0.5 and averaged over IoU 0.5:0.95 (the COCO
"AP"), per-class AP, and per-class precision and recall at one score threshold,
all from :class:`pycocotools.cocoeval.COCOeval` (its matching of detections to
ground truth, its 101-point interpolation). Boxes are ``[x0, y0, x1, y1]`` in
pixels (:mod:`mlwf_nb.data.boxes`); they are handed to COCO as ``[x, y, w, h]``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlwf_nb.data.boxes import valid_rows
from mlwf_nb.errors import EvaluationError

__all__ = ["coco_evaluate", "majority_baseline"]


def _coco(truth: np.ndarray, class_names: Sequence[str], image_size: tuple[int, int]) -> Any:
    from pycocotools.coco import COCO

    height, width = image_size
    anns: list[dict[str, Any]] = []
    for n, k in zip(*np.nonzero(valid_rows(truth)), strict=True):
        x0, y0, x1, y1, cls = (float(v) for v in truth[n, k])
        anns.append({"id": len(anns) + 1, "image_id": int(n), "category_id": int(cls), "iscrowd": 0,
                     "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "height": height, "width": width} for i in range(len(truth))],
                  "annotations": anns, "categories": [{"id": i, "name": n} for i, n in enumerate(class_names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def coco_evaluate(truth: np.ndarray, detections: Sequence[np.ndarray], class_names: Sequence[str],
                  image_size: tuple[int, int], score_threshold: float = 0.3) -> dict[str, Any]:
    """COCO box metrics of ``detections`` against ``truth``.

    Args:
        truth: ``(N, K, 5)`` ground-truth boxes ``[x0, y0, x1, y1, class]``, padding rows -1.
        detections: One ``(M, 6)`` array per image: ``[x0, y0, x1, y1, score, class]``.
        class_names: Names by class index.
        image_size: ``(height, width)`` of the images.
        score_threshold: Operating point of the per-class precision/recall table.

    Returns:
        ``{"map50", "map", "map75", "per_class": [{"class", "ap50", "ap", "precision", "recall",
        "objects", "detections"}], "score_threshold", "images", "objects"}``; precision and recall
        count the detections scoring at least ``score_threshold`` matched at IoU 0.5 (None where undefined).

    Raises:
        EvaluationError: The number of images differs, or there are no ground-truth boxes.
    """
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(truth):
        raise EvaluationError(f"coco_evaluate: {len(detections)} detection lists for {len(truth)} images")
    if not valid_rows(truth).any():
        raise EvaluationError("coco_evaluate: the ground truth has no boxes; nothing to evaluate against")
    gt = _coco(truth, class_names, image_size)
    rows = [[n, d[0], d[1], d[2] - d[0], d[3] - d[1], d[4], d[5]] for n, dets in enumerate(detections)
            for d in np.asarray(dets, np.float64).reshape(-1, 6)]
    num_classes = len(class_names)
    if not rows:  # an empty detector: AP is 0 by definition (COCO's loadRes refuses an empty list)
        return _empty_result(truth, class_names, score_threshold)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(np.asarray(rows, np.float64))
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.imgIds = list(range(len(truth)))
        ev.params.catIds = list(range(num_classes))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class) at area 'all', 100 detections
    per_class = []
    for c, name in enumerate(class_names):
        pr = precision[:, :, c]
        ap = float(np.mean(pr[pr > -1])) if (pr > -1).any() else None
        ap50 = float(np.mean(pr[0][pr[0] > -1])) if (pr[0] > -1).any() else None
        per_class.append({"class": name, "ap50": ap50, "ap": ap, **_operating_point(ev, c, score_threshold)})
    return {"map50": _stat(ev.stats[1]), "map": _stat(ev.stats[0]), "map75": _stat(ev.stats[2]),
            "per_class": per_class, "score_threshold": score_threshold, "images": len(truth),
            "objects": int(valid_rows(truth).sum())}


def _stat(value: float) -> float:
    return max(float(value), 0.0)  # COCO writes -1 where a quantity is undefined (no objects): 0 AP


def _operating_point(ev: Any, cls: int, threshold: float) -> dict[str, Any]:
    """Precision and recall of class ``cls`` at IoU 0.5 over detections scoring >= ``threshold``."""
    tp = fp = objects = found = 0
    for img in ev.evalImgs:
        if img is None or img["category_id"] != cls or img["aRng"] != ev.params.areaRng[0]:
            continue
        ignore_gt = np.asarray(img["gtIgnore"], bool)
        objects += int((~ignore_gt).sum())
        scores = np.asarray(img["dtScores"])
        kept = (scores >= threshold) & ~np.asarray(img["dtIgnore"][0], bool)
        matched = np.asarray(img["dtMatches"][0]) > 0
        tp += int((kept & matched).sum())
        fp += int((kept & ~matched).sum())
        found += int(kept.sum())
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / objects if objects else None,
            "objects": objects, "detections": found}


def _empty_result(truth: np.ndarray, class_names: Sequence[str], threshold: float) -> dict[str, Any]:
    counts = np.bincount(truth[..., 4][valid_rows(truth)].astype(int), minlength=len(class_names))
    return {"map50": 0.0, "map": 0.0, "map75": 0.0, "score_threshold": threshold, "images": len(truth),
            "objects": int(counts.sum()),
            "per_class": [{"class": n, "ap50": 0.0, "ap": 0.0, "precision": None, "recall": 0.0,
                           "objects": int(counts[c]), "detections": 0} for c, n in enumerate(class_names)]}


def majority_baseline(truth: np.ndarray, class_names: Sequence[str], image_size: tuple[int, int]) -> dict[str, Any]:
    """The baselines a detector must beat: no detections, and every true box labelled the majority class.

    The second is a perfect localiser that does not tell the classes apart: its mAP is
    about the majority class's share divided by the number of classes.
    """
    ok = valid_rows(truth)
    majority = int(np.bincount(truth[..., 4][ok].astype(int), minlength=len(class_names)).argmax())
    dets = [np.array([[*r[:4], 1.0, majority] for r in truth[n][ok[n]]], np.float32).reshape(-1, 6)
            for n in range(len(truth))]
    m = coco_evaluate(truth, dets, class_names, image_size)
    return {"empty": {"map50": 0.0, "map": 0.0},
            "majority_class_true_boxes": {"class": class_names[majority], "map50": m["map50"], "map": m["map"]}}
