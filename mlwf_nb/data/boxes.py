"""Boxes: augmentation that moves boxes with the pixels, and box arithmetic.

Pure numpy over ``(N, H, W, B)`` uint8 images and ``(N, K, 5)`` float boxes
``[x0, y0, x1, y1, class]`` in pixels (pixel ``i`` spans ``[i, i + 1)``; padding
rows are all -1, see :mod:`mlwf_nb.data.masks_synth`). Every transform maps a
continuous image coordinate ``X`` to ``X' = (X - c) * scale + c + shift`` (and
``W - X`` for a horizontal flip), applied to pixel centres for the image and to
the box corners for the boxes, so a box keeps enclosing its object. A box pushed
mostly out of the frame is dropped (its row becomes padding), one cut by the
border is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["BoxAugment", "flip_horizontal", "scale_shift", "augment_boxes", "valid_rows", "box_iou"]

MIN_VISIBLE = 0.4
"""A transformed box keeps its row only if this share of its area stays inside the image."""


@dataclass(frozen=True)
class BoxAugment:
    """What :func:`augment_boxes` may do to a batch.

    Attributes:
        flip: Flip half of the images left-right.
        scale: Largest relative zoom in or out (0.25: scale drawn in [0.75, 1.25]).
        shift_x: Largest left-right shift as a fraction of the image width.
        shift_y: Largest up-down shift as a fraction of the image height.
    """

    flip: bool = True
    scale: float = 0.25
    shift_x: float = 0.15
    shift_y: float = 0.15

    def __post_init__(self) -> None:
        if not (0.0 <= self.scale < 1.0 and 0.0 <= self.shift_x < 1.0 and 0.0 <= self.shift_y < 1.0):
            raise DatasetError(f"box augmentation: scale and shifts must be in [0, 1), got scale={self.scale}, "
                               f"shift_x={self.shift_x}, shift_y={self.shift_y}")


def valid_rows(boxes: np.ndarray) -> np.ndarray:
    """Which box rows are real boxes (not padding): a boolean array of ``boxes.shape[:-1]``."""
    return np.asarray(boxes)[..., 4] >= 0


def flip_horizontal(images: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror images left-right and their boxes with them (``x -> W - x``)."""
    width = images.shape[2]
    out = np.array(boxes, dtype=np.float32, copy=True)
    ok = valid_rows(out)
    x0 = out[..., 0].copy()
    out[..., 0] = np.where(ok, width - out[..., 2], -1)
    out[..., 2] = np.where(ok, width - x0, -1)
    return np.ascontiguousarray(images[:, :, ::-1]), out


def scale_shift(image: np.ndarray, boxes: np.ndarray, scale: float, dx: float, dy: float,
                fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zoom one ``(H, W, B)`` image about its centre by ``scale`` and shift it by ``(dx, dy)`` pixels.

    The image is resampled (nearest neighbour) at the inverse-mapped pixel centres;
    pixels that come from outside get ``fill`` (default: the image's mean colour).
    Boxes ``(K, 5)`` are mapped with the same transform, clipped to the frame, and
    dropped when less than :data:`MIN_VISIBLE` of them stays inside.
    """
    h, w = image.shape[:2]
    cx, cy = w / 2.0, h / 2.0
    xs = np.floor((np.arange(w) + 0.5 - cx - dx) / scale + cx).astype(np.intp)
    ys = np.floor((np.arange(h) + 0.5 - cy - dy) / scale + cy).astype(np.intp)
    inside = (ys[:, None] >= 0) & (ys[:, None] < h) & (xs[None] >= 0) & (xs[None] < w)
    out = image[np.clip(ys, 0, h - 1)[:, None], np.clip(xs, 0, w - 1)[None]]
    fill = image.reshape(-1, image.shape[-1]).mean(axis=0) if fill is None else fill
    out[~inside] = np.asarray(fill, dtype=image.dtype)
    b = np.array(boxes, dtype=np.float32, copy=True)
    ok = valid_rows(b)
    moved = b[:, :4].copy()
    moved[:, [0, 2]] = (moved[:, [0, 2]] - cx) * scale + cx + dx
    moved[:, [1, 3]] = (moved[:, [1, 3]] - cy) * scale + cy + dy
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    clipped = np.clip(moved, 0.0, [w, h, w, h])
    kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = ok & (kept >= MIN_VISIBLE * np.maximum(area, 1e-6)) & (clipped[:, 2] - clipped[:, 0] >= 1.0) & (
        clipped[:, 3] - clipped[:, 1] >= 1.0)
    b[:, :4] = clipped
    b[~keep] = -1.0
    return out, b


def augment_boxes(images: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                  aug: BoxAugment = BoxAugment()) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, zooms and shifts of a batch, boxes moved with the pixels.

    Args:
        images: ``(N, H, W, B)`` uint8 images (not modified).
        boxes: ``(N, K, 5)`` boxes in pixels, padding rows -1.
        rng: The draws (seed it by ``(seed, epoch, batch)`` for reproducible epochs).
        aug: What to do.

    Returns:
        New ``(images, boxes)`` arrays.
    """
    imgs = np.array(images, copy=True)
    out = np.array(boxes, dtype=np.float32, copy=True)
    n, h, w = imgs.shape[:3]
    flips = np.asarray(rng.random(n) < 0.5) & bool(aug.flip)
    if flips.any():
        imgs[flips], out[flips] = flip_horizontal(imgs[flips], out[flips])
    if aug.scale > 0 or aug.shift_x > 0 or aug.shift_y > 0:
        scales = np.asarray(rng.uniform(1.0 - aug.scale, 1.0 + aug.scale, n))
        shifts = rng.uniform(-1.0, 1.0, (n, 2)) * np.array([aug.shift_x * w, aug.shift_y * h])
        for i in range(n):
            imgs[i], out[i] = scale_shift(imgs[i], out[i], scales[i], shifts[i, 0], shifts[i, 1])
    return imgs, out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(M, 4)`` and ``(N, 4)`` xyxy boxes: an ``(M, N)`` array."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)
