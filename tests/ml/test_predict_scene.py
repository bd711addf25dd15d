"""predict_scene: batching, scale averaging, and the real mlwf_nb.data.patches windows."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.evaluate import predict_scene


def _stub_patches() -> types.ModuleType:
    """A reference implementation of the three window functions (mean over covering windows)."""
    mod = types.ModuleType("mlwf_nb.data.patches")

    def sliding_windows(h, w, size, stride):
        ys = sorted({*range(0, max(h - size, 0) + 1, stride), max(h - size, 0)})
        xs = sorted({*range(0, max(w - size, 0) + 1, stride), max(w - size, 0)})
        return np.array([(y, x) for y in ys for x in xs], dtype=np.int64).reshape(-1, 2)

    def extract_windows(image, windows, size, input_size):
        out = np.stack([image[y:y + size, x:x + size] for y, x in windows])
        step = size // input_size
        return out[:, ::step, ::step][:, :input_size, :input_size]

    def stitch_probabilities(h, w, windows, size, probs):
        acc = np.zeros((h, w, probs.shape[1]))
        cnt = np.zeros((h, w, 1))
        for (y, x), p in zip(windows, probs, strict=True):
            acc[y:y + size, x:x + size] += p
            cnt[y:y + size, x:x + size] += 1
        return acc / np.maximum(cnt, 1)

    mod.sliding_windows, mod.extract_windows = sliding_windows, extract_windows
    mod.stitch_probabilities = stitch_probabilities
    return mod


def _scene() -> np.ndarray:
    """32x32x4 uint8 scene: left half bright in band 0 (class 0), right half bright in band 1."""
    img = np.full((32, 32, 4), 20, dtype=np.uint8)
    img[:, :16, 0] = 200
    img[:, 16:, 1] = 200
    return img


def _predict(batches: list[int], input_size: int):
    def fn(batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.uint8 and batch.shape[1:] == (input_size, input_size, 4)
        batches.append(len(batch))
        share = batch[..., :2].astype(np.float64).mean(axis=(1, 2))
        return share / share.sum(axis=1, keepdims=True)

    return fn


def test_predict_scene_with_reference_windows(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlwf_nb.data.patches", _stub_patches())
    batches: list[int] = []
    probs = predict_scene(_predict(batches, 8), _scene(), window_sizes=(8, 16), stride_fraction=0.5,
                          input_size=8, batch_size=10)
    assert probs.shape == (32, 32, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    assert max(batches) <= 10 and sum(batches) == 49 + 9  # 7x7 windows of 8 plus 3x3 of 16
    labels = probs.argmax(axis=-1)
    assert (labels[:, :12] == 0).all() and (labels[:, 20:] == 1).all()


def test_predict_scene_checks_arguments_and_predictions(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlwf_nb.data.patches", _stub_patches())
    with pytest.raises(EvaluationError, match="stride_fraction"):
        predict_scene(_predict([], 8), _scene(), (8,), 0.0, 8)
    with pytest.raises(EvaluationError, match="expected \\(n_windows, num_classes\\)"):
        predict_scene(lambda b: np.zeros((1, 2)), _scene(), (8,), 1.0, 8, batch_size=4)


def test_predict_scene_with_real_patches_module():
    patches = pytest.importorskip("mlwf_nb.data.patches")
    if not all(hasattr(patches, n) for n in ("sliding_windows", "extract_windows", "stitch_probabilities")):
        pytest.skip("mlwf_nb.data.patches lacks the window functions")
    probs = predict_scene(_predict([], 8), _scene(), window_sizes=(8, 16), stride_fraction=0.5,
                          input_size=8, batch_size=7)
    assert probs.shape == (32, 32, 2)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-4)
    labels = probs.argmax(axis=-1)
    assert (labels[:, :12] == 0).all() and (labels[:, 20:] == 1).all()
