"""Confusion matrix and metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.evaluate import classification_metrics, confusion_matrix, segmentation_metrics


def test_confusion_matrix_matches_loop_and_ignores_index():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, size=(7, 9))
    p = rng.integers(0, 4, size=(7, 9))
    expected = np.zeros((4, 4), dtype=np.int64)
    for a, b in zip(t.ravel(), p.ravel(), strict=True):
        expected[a, b] += 1
    cm = confusion_matrix(t, p, 4)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    cm_ignored = confusion_matrix(t, p, 4, ignore_index=0)
    np.testing.assert_array_equal(cm_ignored[0], 0)
    np.testing.assert_array_equal(cm_ignored[1:], expected[1:])


def test_confusion_matrix_errors():
    with pytest.raises(EvaluationError, match=r"y_pred has values in \[0, 3\] outside \[0, 3\)"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(EvaluationError, match="shape"):
        confusion_matrix([0, 1], [0, 1, 1], 3)
    # An ignored label may lie outside the class range (e.g. 255 = nodata).
    assert confusion_matrix([255, 1], [0, 1], 2, ignore_index=255).sum() == 1


def test_classification_metrics_known_two_class_matrix():
    # Textbook example: po = 0.7, pe = 0.5, kappa = 0.4.
    m = classification_metrics([[20, 5], [10, 15]], ["yes", "no"])
    assert m["overall_accuracy"] == pytest.approx(0.7)
    assert m["kappa"] == pytest.approx(0.4)
    assert m["support"] == 50
    yes = m["per_class"]["yes"]
    assert yes["precision"] == pytest.approx(20 / 30)
    assert yes["recall"] == pytest.approx(20 / 25)
    assert yes["f1"] == pytest.approx(40 / 55)
    assert yes["iou"] == pytest.approx(20 / 35)
    assert yes["support"] == 25
    no = m["per_class"]["no"]
    assert no["iou"] == pytest.approx(15 / 30)
    assert m["miou"] == pytest.approx((20 / 35 + 15 / 30) / 2)


def test_classification_metrics_zero_division_and_absent_class():
    m = classification_metrics(np.array([[5, 0, 0], [1, 3, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0, "support": 0}
    assert m["miou"] == pytest.approx((5 / 6 + 3 / 4) / 2)  # class c is absent: not averaged
    assert m["overall_accuracy"] == pytest.approx(8 / 9)
    perfect = classification_metrics(np.diag([3, 4]), ["a", "b"])
    assert perfect["kappa"] == 1.0 and perfect["miou"] == 1.0
    assert classification_metrics(np.zeros((2, 2)), ["a", "b"])["kappa"] == 0.0
    with pytest.raises(EvaluationError, match="class names"):
        classification_metrics(np.zeros((2, 2)), ["a", "b", "c"])


def test_segmentation_metrics_known_masks():
    t = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    p = np.array([[0, 1, 1, 1], [0, 0, 1, 0]])
    s = segmentation_metrics(t, p, 3)
    # class 0: tp 3, fp 1, fn 1 -> dice 6/8, iou 3/5; class 1: tp 3, fp 1, fn 1 likewise
    assert s["dice"][:2] == pytest.approx([0.75, 0.75])
    assert s["iou"][:2] == pytest.approx([0.6, 0.6])
    assert s["dice"][2] == 0.0 and s["mean_iou"] == pytest.approx(0.6)
    assert s["pixel_accuracy"] == pytest.approx(6 / 8)
    assert s["class_accuracy"][:2] == pytest.approx([0.75, 0.75])
    ignored = segmentation_metrics(t, p, 3, ignore_index=0)
    assert ignored["pixel_accuracy"] == pytest.approx(3 / 4)
