"""Whole-scene maps: batching, scales, per-pixel models, and blending that follows class borders."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.patches import sliding_windows, stitch_probabilities
from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.evaluate import MapScores, border_mask
from mlwf_nb.ml.maps import predict_scene, window_weights


def _scene(border: int = 16) -> np.ndarray:
    """32x32x4 uint8 scene: columns left of ``border`` bright in band 0 (class 0), the others in band 1."""
    img = np.full((32, 32, 4), 20, dtype=np.uint8)
    img[:, :border, 0] = 200
    img[:, border:, 1] = 200
    return img


def _predict(batches: list[int], input_size: int):
    """A patch classifier: each class's probability is its share of bright pixels in the window."""
    def fn(batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.uint8 and batch.shape[1:] == (input_size, input_size, 4)
        batches.append(len(batch))
        share = batch[..., :2].astype(np.float64).mean(axis=(1, 2))
        return share / share.sum(axis=1, keepdims=True)

    return fn


def test_batches_scales_and_the_uniform_blend_is_the_plain_mean():
    batches: list[int] = []
    probs = predict_scene(_predict(batches, 8), _scene(), window_sizes=(8, 16), stride_fraction=0.5,
                          input_size=8, batch_size=10, blend="uniform")
    assert probs.shape == (32, 32, 2) and probs.dtype == np.float32
    assert max(batches) <= 10 and sum(batches) == 49 + 9  # 7x7 windows of 8 plus 3x3 of 16
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    ref = []
    for size in (8, 16):
        wins = sliding_windows(32, 32, size, size // 2)
        crops = np.stack([_scene()[y:y + size, x:x + size] for y, x in wins])
        share = crops[..., :2].astype(np.float64).mean(axis=(1, 2))
        ref.append(stitch_probabilities(32, 32, wins, size, share / share.sum(axis=1, keepdims=True)))
    np.testing.assert_allclose(probs, (ref[0] + ref[1]) / 2, rtol=1e-5, atol=1e-6)


def test_gaussian_weights_peak_in_the_centre():
    w = window_weights(8)
    assert w.shape == (8, 8) and w.max() == pytest.approx(1.0, rel=0.05) and (w > 0).all()
    assert w[0, 0] < w[2, 2] < w[3, 3] and np.allclose(w, w.T) and np.allclose(w, w[::-1, ::-1])
    assert (window_weights(8, "uniform") == 1).all()
    with pytest.raises(EvaluationError, match="blend must be one of"):
        window_weights(8, "median")


def test_gaussian_blending_follows_a_class_border_off_the_window_grid():
    """A border at column 13 (windows start every 8 px): the centre-weighted map puts it closer."""
    truth = np.where(np.arange(32)[None, :] < 13, 1, 2).repeat(32, axis=0).astype(np.uint8)
    scores = {}
    for blend in ("uniform", "gaussian"):
        probs = predict_scene(_predict([], 16), _scene(13), (16,), 0.5, 16, blend=blend)
        s = MapScores(2, border_width=3)
        s.add(probs.argmax(-1).astype(np.uint8) + 1, truth)
        scores[blend] = s.metrics(["a", "b"])
    assert scores["gaussian"]["border"]["overall_accuracy"] > scores["uniform"]["border"]["overall_accuracy"]
    assert scores["gaussian"]["overall_accuracy"] >= scores["uniform"]["overall_accuracy"]


def test_per_pixel_predictions_are_resized_to_their_windows():
    """A segmentation model's (n, s, s, C) output is stitched pixel by pixel (here: the exact answer)."""
    def per_pixel(batch: np.ndarray) -> np.ndarray:
        first = (batch[..., 0] > batch[..., 1]).astype(np.float32)
        return np.stack([first, 1 - first], axis=-1)

    probs = predict_scene(per_pixel, _scene(13), (8, 16), 0.5, 8)
    np.testing.assert_array_equal(probs.argmax(-1), np.where(np.arange(32) < 13, 0, 1)[None, :].repeat(32, 0))


def test_arguments_and_prediction_shapes_are_checked():
    with pytest.raises(EvaluationError, match="stride_fraction"):
        predict_scene(_predict([], 8), _scene(), (8,), 0.0, 8)
    with pytest.raises(EvaluationError, match=r"expected \(n_windows, num_classes\)"):
        predict_scene(lambda b: np.zeros((1, 2)), _scene(), (8,), 1.0, 8, batch_size=4)


def test_border_mask_and_map_scores():
    truth = np.zeros((10, 10), np.uint8)
    truth[:, :5], truth[:, 5:] = 1, 2
    truth[0, 0] = 0  # unlabeled is no class
    near = border_mask(truth, 2)
    assert near[:, 3:7].all() and not near[:, :3].any() and not near[:, 7:].any()
    assert not border_mask(truth, 0).any()
    pred = truth.copy()
    pred[:, 4] = 2  # wrong on one column next to the border
    s = MapScores(2, border_width=2)
    assert s.add(pred, truth) == 99
    m = s.metrics(["a", "b"])
    assert m["border"] == {"width": 2, "pixels": 40, "share": 40 / 99, "overall_accuracy": 30 / 40}
    assert m["overall_accuracy"] == pytest.approx(89 / 99)
