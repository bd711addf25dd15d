"""Whole-scene classification maps: multi-scale sliding windows, blended where they overlap.

Pure numpy (no Keras): :func:`predict_scene` takes any ``predict_fn(batch_uint8) ->
probabilities`` — one vector per window (a patch classifier such as ``small_cnn``) or a
per-pixel map per window (a segmentation model such as ``unet``), e.g.
``lambda b: model.predict(b, verbose=0)``. Windows overlap (``evaluate.stride_fraction``)
and their class probabilities are blended per pixel with :func:`window_weights`
(``evaluate.blend``): with the default gaussian weights a pixel takes its class mostly from
the windows centred near it, so maps follow class borders instead of the window grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlwf_nb.errors import EvaluationError

__all__ = ["predict_scene", "window_weights", "BLENDS", "GAUSSIAN_SIGMA"]

PredictFn = Callable[[np.ndarray], Any]

BLENDS = ("gaussian", "uniform")
GAUSSIAN_SIGMA = 0.25
"""Standard deviation of the gaussian window weight, as a fraction of the window size."""


def window_weights(size: int, blend: str = "gaussian") -> np.ndarray:
    """``(size, size)`` float32 weights of one window's prediction over its pixels (peak 1).

    ``gaussian`` weighs each pixel by a gaussian of its distance to the window centre
    (sigma = :data:`GAUSSIAN_SIGMA` of the size): a pixel takes its class mostly from the
    windows centred near it, so maps follow class borders instead of the window grid.
    ``uniform`` weighs all pixels alike (the plain mean of the covering windows).
    """
    if blend not in BLENDS:
        raise EvaluationError(f"blend must be one of {list(BLENDS)}, got {blend!r} (evaluate.blend)")
    if blend == "uniform":
        return np.ones((size, size), dtype=np.float32)
    d = (np.arange(size, dtype=np.float64) + 0.5 - size / 2.0) / (GAUSSIAN_SIGMA * size)
    g = np.exp(-0.5 * d * d)
    return np.outer(g, g).astype(np.float32) / np.float32(g.max() ** 2)


def predict_scene(predict_fn: PredictFn, image_u8: np.ndarray, window_sizes: Sequence[int],
                  stride_fraction: float, input_size: int, batch_size: int = 64,
                  blend: str = "gaussian") -> np.ndarray:
    """Multi-scale sliding-window class probabilities over a whole scene, blended where windows overlap.

    For each window size, windows at stride ``size * stride_fraction`` are cut,
    resized to ``input_size`` and classified ``batch_size`` at a time (memory stays
    bounded by one batch plus the output). A window's prediction (one probability
    vector for a patch classifier, or a per-pixel map for a segmentation model such as
    ``unet``, resized back to the window) is spread over its pixels with
    :func:`window_weights`; each pixel gets the weighted mean of the windows covering
    it, and the scales are averaged.

    Args:
        predict_fn: ``(n, input_size, input_size, B) uint8 -> (n, C)`` or ``(n, input_size, input_size, C)``
            probabilities.
        image_u8: ``(H, W, B)`` uint8 scene.
        window_sizes: Window sizes in scene pixels, e.g. ``(56, 112, 224)``.
        stride_fraction: Stride as a fraction of the window size, in (0, 1].
        input_size: Model input size.
        batch_size: Windows per ``predict_fn`` call.
        blend: ``gaussian`` (centre-weighted) or ``uniform``.

    Returns:
        ``(H, W, C)`` float32 probabilities.

    Raises:
        EvaluationError: Bad arguments or predictions of the wrong shape.
    """
    from mlwf_nb.data.patches import sliding_windows

    image = np.asarray(image_u8)
    if image.ndim != 3 or not window_sizes or not 0 < stride_fraction <= 1 or batch_size < 1:
        raise EvaluationError(f"predict_scene needs an (H, W, B) image, window sizes, 0 < stride_fraction <= 1 "
                              f"and batch_size >= 1; got image {image.shape}, {list(window_sizes)}, "
                              f"{stride_fraction}, {batch_size}")
    h, w = image.shape[:2]
    total: np.ndarray | None = None
    for size in (int(s) for s in window_sizes):
        windows = sliding_windows(h, w, size, max(1, round(size * stride_fraction)))
        weights = window_weights(size, blend)
        acc: np.ndarray | None = None
        cover = np.zeros((h, w, 1), dtype=np.float32)
        for i in range(0, len(windows), batch_size):
            part = windows[i:i + batch_size]
            probs = _predict_batch(predict_fn, image, part, size, int(input_size))
            if acc is None:
                acc = np.zeros((h, w, probs.shape[-1]), dtype=np.float32)
            _accumulate(acc, cover, part, size, probs, weights)
        assert acc is not None
        scale = acc / np.maximum(cover, np.float32(1e-12))
        total = scale if total is None else total + scale
    assert total is not None
    return total / np.float32(len(window_sizes))


def _accumulate(acc: np.ndarray, cover: np.ndarray, windows: np.ndarray, size: int, probs: np.ndarray,
                weights: np.ndarray) -> None:
    """Add weighted window predictions (``(n, C)`` or per pixel ``(n, size, size, C)``) into ``acc``."""
    h, w = acc.shape[:2]
    for (y, x), p in zip(windows, probs, strict=True):
        hy, wx = min(size, h - y), min(size, w - x)  # a scene smaller than the window was padded
        wv = weights[:hy, :wx, None]
        acc[y:y + hy, x:x + wx] += wv * (p[:hy, :wx] if p.ndim == 3 else p)
        cover[y:y + hy, x:x + wx] += wv


def _predict_batch(predict_fn: PredictFn, image: np.ndarray, windows: np.ndarray, size: int,
                   input_size: int) -> np.ndarray:
    from mlwf_nb.data.patches import extract_windows, resize_batch

    batch = extract_windows(image, windows, size, input_size)
    probs = np.asarray(predict_fn(batch), dtype=np.float32)
    per_pixel = probs.ndim == 4 and probs.shape[1:3] == (input_size, input_size)
    if probs.shape[0] != len(windows) or not (probs.ndim == 2 or per_pixel):
        raise EvaluationError(f"predict_fn returned shape {probs.shape} for {len(windows)} windows; expected "
                              f"(n_windows, num_classes) or (n_windows, {input_size}, {input_size}, num_classes)")
    if per_pixel and input_size != size:
        probs = resize_batch(probs, size)  # float: bilinear, back to the window's pixels
    return probs
