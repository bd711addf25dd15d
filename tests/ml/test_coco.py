"""COCO metrics through pycocotools: perfect detections score 1, shuffled boxes and the baselines score low."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.masks_synth import MASK_CLASSES, draw_face_scenes
from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.coco import coco_evaluate, majority_baseline

NAMES = [c["name"] for c in MASK_CLASSES]


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return draw_face_scenes(40, 64, seed=5)[1]


def _as_detections(truth: np.ndarray) -> list[np.ndarray]:
    return [np.array([[*r[:4], 0.9, r[4]] for r in t if r[4] >= 0], np.float32).reshape(-1, 6) for t in truth]


def test_perfect_detections_score_one(truth):
    m = coco_evaluate(truth, _as_detections(truth), NAMES, (64, 64))
    assert m["map50"] == pytest.approx(1.0) and m["map"] == pytest.approx(1.0)
    assert m["objects"] == int((truth[..., 4] >= 0).sum()) and m["images"] == 40
    for row in m["per_class"]:
        assert row["ap50"] == pytest.approx(1.0) and row["precision"] == 1.0 and row["recall"] == 1.0


def test_shuffled_boxes_score_low(truth):
    dets = _as_detections(truth)
    flat = np.concatenate(dets)
    perm = np.random.default_rng(0).permutation(len(flat))
    shuffled, start = [], 0
    for d in dets:  # the same classes and scores per image, boxes of other faces
        shuffled.append(np.concatenate([flat[perm[start:start + len(d)], :4], d[:, 4:]], axis=1))
        start += len(d)
    assert coco_evaluate(truth, shuffled, NAMES, (64, 64))["map50"] < 0.15


def test_half_shifted_boxes_pass_at_iou_half_but_not_above(truth):
    dets = _as_detections(truth)
    for d in dets:  # shift by a fifth of the width: IoU = 0.8 / 1.2 = 0.67
        w = d[:, 2] - d[:, 0]
        d[:, 0] += 0.2 * w
        d[:, 2] += 0.2 * w
    m = coco_evaluate(truth, dets, NAMES, (64, 64))
    assert m["map50"] > 0.95 and 0.3 < m["map"] < 0.45  # passes 4 of the 10 IoU thresholds 0.5..0.95


def test_baselines_and_an_empty_detector(truth):
    b = majority_baseline(truth, NAMES, (64, 64))
    assert b["empty"]["map50"] == 0.0
    assert b["majority_class_true_boxes"]["class"] == "with_mask"
    assert 0.1 < b["majority_class_true_boxes"]["map50"] < 0.4  # right boxes, classes not told apart
    empty = coco_evaluate(truth, [np.zeros((0, 6))] * len(truth), NAMES, (64, 64))
    assert empty["map50"] == 0.0 and all(r["recall"] == 0.0 for r in empty["per_class"])


def test_mismatched_inputs_are_refused(truth):
    with pytest.raises(EvaluationError, match="detection lists"):
        coco_evaluate(truth, [], NAMES, (64, 64))
    with pytest.raises(EvaluationError, match="no boxes"):
        coco_evaluate(np.full((2, 3, 5), -1.0), [np.zeros((0, 6))] * 2, NAMES, (64, 64))
