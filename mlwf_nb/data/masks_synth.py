"""Synthetic street scenes with faces, with and without masks, for the mask-detection template.

Each RGB image holds one to ``max_faces`` faces on a cluttered background, each
with a box and one of three classes (as in the public face-mask detection sets):

* ``with_mask``: a surgical/cloth mask covers nose, mouth and chin;
* ``without_mask``: nose and mouth visible;
* ``mask_weared_incorrect``: the mask sits below the nose (nose visible, mouth covered).

A face is an ellipse of one of several skin tones with hair, eyes, brows, nose and
mouth, drawn at a random size (``0.16``-``0.36`` of the image), in-plane tilt and
yaw (features shifted sideways), with masks of varying colour, pleats and ear
straps. Backgrounds are colour gradients with smooth noise and random clutter
(rectangles and ellipses). Global lighting, blur and sensor noise follow.
Boxes are the tight pixel box of the drawn head (face plus hair), ``[x0, y0, x1,
y1]`` in pixels with exclusive ends. Deterministic by seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["MASK_CLASSES", "CLASS_SHARES", "draw_face_scenes", "generate_masks_dataset"]

MASK_CLASSES: list[dict[str, Any]] = [
    {"index": 0, "name": "with_mask", "color": [60, 200, 90]},
    {"index": 1, "name": "without_mask", "color": [235, 60, 60]},
    {"index": 2, "name": "mask_weared_incorrect", "color": [250, 170, 40]},
]
CLASS_SHARES = (0.5, 0.3, 0.2)
_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 125], [198, 134, 86], [141, 85, 54],
                  [95, 60, 40]], dtype=np.float64) / 255.0
_HAIR = np.array([[25, 20, 18], [70, 45, 30], [130, 90, 50], [200, 170, 110], [160, 160, 160],
                  [110, 40, 25]], dtype=np.float64) / 255.0
_MASK = np.array([[235, 240, 245], [150, 200, 235], [40, 40, 48], [90, 160, 140], [225, 160, 190],
                  [60, 80, 150]], dtype=np.float64) / 255.0


def _paint(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend ``color`` into ``img`` (both float, in place)."""
    img += alpha[..., None] * (np.asarray(color)[None, None, :] - img)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Bilinear up-sampling of a ``cells x cells`` random grid: low-frequency noise in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i, f = t.astype(int), t - t.astype(int)
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    a, b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)
    img = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    img *= 0.75 + 0.5 * _smooth_noise(rng, size, int(rng.integers(2, 6)))[..., None]
    for _ in range(int(rng.integers(2, 7))):  # clutter: signs, windows, bags, other people's shoulders
        color = rng.uniform(0.05, 0.95, 3)
        cx, cy = rng.uniform(0, size, 2)
        w, h = rng.uniform(0.05, 0.35, 2) * size
        if rng.random() < 0.5:
            alpha = ((np.abs(xx * size - cx) < w / 2) & (np.abs(yy * size - cy) < h / 2)).astype(np.float64)
        else:
            alpha = (((xx * size - cx) / (w / 2)) ** 2 + ((yy * size - cy) / (h / 2)) ** 2 < 1.0).astype(np.float64)
        _paint(img, alpha * rng.uniform(0.6, 1.0), color)
    return img


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """Antialiased inside-ness of a signed 'distance' (< 0 inside), edge in the same units."""
    return np.clip(0.5 - d / edge, 0.0, 1.0)


def _face(img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, h: float,
          cls: int) -> tuple[int, int, int, int]:
    """Draw one head centred at (cx, cy) of height ``h`` (pixels); return its box (x0, y0, x1, y1)."""
    size = img.shape[0]
    w = h * rng.uniform(0.68, 0.82)
    tilt = rng.uniform(-0.3, 0.3)
    yaw = rng.uniform(-0.18, 0.18)          # features shift sideways when the head turns
    r = int(np.ceil(h * 0.55)) + 2          # the head's window: everything is drawn there only
    wy0, wx0 = max(int(cy) - r, 0), max(int(cx) - r, 0)
    win = img[wy0:min(int(cy) + r, size), wx0:min(int(cx) + r, size)]
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]].astype(np.float64) + 0.5
    dx, dy = xx + wx0 - cx, yy + wy0 - cy
    # u across the face (-1..1 at the cheeks), v down the face (-1 crown .. 1 chin)
    u = (dx * np.cos(tilt) + dy * np.sin(tilt)) / (w / 2)
    v = (-dx * np.sin(tilt) + dy * np.cos(tilt)) / (h / 2)
    px = 2.0 / max(h, 1.0)                  # one pixel in face units, for antialiasing
    head = _soft(np.hypot(u, v) - 1.0, 2 * px)
    img = win
    skin, hair = _SKIN[rng.integers(len(_SKIN))], _HAIR[rng.integers(len(_HAIR))]
    _paint(img, head, skin * rng.uniform(0.85, 1.1))
    fu = u - yaw                            # face-feature coordinates
    hairline = rng.uniform(-0.55, -0.3)
    _paint(img, head * _soft(v - hairline + 0.08 * fu**2, 2 * px), hair)
    for side in (-1.0, 1.0):
        eye = _soft(np.hypot((fu - side * 0.36) / 0.17, (v + 0.12) / 0.09) - 1.0, 3 * px)
        _paint(img, eye, np.array([0.95, 0.95, 0.95]))
        _paint(img, _soft(np.hypot((fu - side * 0.36) / 0.08, (v + 0.12) / 0.08) - 1.0, 3 * px), hair * 0.5)
        brow = _soft(np.hypot((fu - side * 0.36) / 0.22, (v + 0.3) / 0.045) - 1.0, 3 * px)
        _paint(img, brow, hair * 0.8)
    nose = _soft(np.maximum(np.abs(fu) - 0.1 * (v + 0.05) / 0.35, np.abs(v - 0.12) - 0.17), 2 * px)
    _paint(img, nose, skin * 0.7)
    mouth = _soft(np.hypot(fu / 0.3, (v - 0.5 - 0.12 * fu**2) / 0.07) - 1.0, 3 * px)
    _paint(img, mouth, np.array([0.62, 0.2, 0.22]) * rng.uniform(0.7, 1.1))
    if cls != 1:
        top = rng.uniform(-0.02, 0.06) if cls == 0 else rng.uniform(0.3, 0.36)  # over the nose / below it
        mask_color = _MASK[rng.integers(len(_MASK))]
        cover = head * _soft(top - v, 2 * px) * _soft(np.abs(u) - 0.97, 2 * px)
        _paint(img, cover, mask_color)
        pleats = cover * (np.abs(np.sin((v - top) * np.pi * 5.0)) < 0.18) * (v < 0.85)
        _paint(img, 0.35 * pleats, mask_color * 0.6)
        for side in (-1.0, 1.0):            # ear straps
            strap = _soft(np.abs(v - top - 0.18 - 0.25 * (u - side) * side) - 0.04, 2 * px)
            _paint(img, strap * head * (side * u > 0.8), mask_color * 0.85)
    cover = head > 0.5
    rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
    return wx0 + int(cols[0]), wy0 + int(rows[0]), wx0 + int(cols[-1]) + 1, wy0 + int(rows[-1]) + 1


def _place(rng: np.random.Generator, size: int, count: int, lo: float, hi: float) -> list[tuple[float, float, float]]:
    """Up to ``count`` non-overlapping head centres and heights (pixels)."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        h = rng.uniform(lo, hi) * size
        cx, cy = rng.uniform(h * 0.45, size - h * 0.45), rng.uniform(h * 0.55, size - h * 0.55)
        if all(abs(cx - x) > (h + ph) * 0.45 or abs(cy - y) > (h + ph) * 0.55 for x, y, ph in placed):
            placed.append((cx, cy, h))
    return placed


def _scene(rng: np.random.Generator, size: int, max_faces: int, p: np.ndarray,
           face_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    img = _background(rng, size)
    boxes = np.full((max_faces, 5), -1.0, np.float32)
    faces = _place(rng, size, int(rng.integers(1, max_faces + 1)), *face_range)
    for k, (cx, cy, h) in enumerate(faces):
        cls = int(rng.choice(len(p), p=p))
        boxes[k] = (*_face(img, rng, cx, cy, h, cls), cls)
    img = img * rng.uniform(0.7, 1.2) + rng.uniform(-0.08, 0.08, 3)[None, None]  # lighting, colour cast
    blur = rng.uniform(0.0, 0.6)
    if blur > 0.2:  # a 3-tap separable blur: slightly soft focus
        taps = np.array([blur / 2, 1.0, blur / 2]) / (1.0 + blur)
        img = taps[0] * np.roll(img, 1, 0) + taps[1] * img + taps[2] * np.roll(img, -1, 0)
        img = taps[0] * np.roll(img, 1, 1) + taps[1] * img + taps[2] * np.roll(img, -1, 1)
    img += rng.normal(0.0, rng.uniform(0.01, 0.04), img.shape)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), boxes


def draw_face_scenes(count: int, size: int = 96, seed: int = 0, max_faces: int = 4,
                     shares: tuple[float, ...] = CLASS_SHARES,
                     face_range: tuple[float, float] = (0.16, 0.36)) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` scenes with their face boxes.

    Args:
        count: Number of images.
        size: Image height and width in pixels (>= 32).
        seed: Generator seed: the same seed gives the same images and boxes.
        max_faces: Most faces in one image (each image has 1..max_faces).
        shares: Class frequencies of faces (normalised), one per class of :data:`MASK_CLASSES`.
        face_range: Head height as a fraction of the image size, (smallest, largest).

    Returns:
        ``(images (count, size, size, 3) uint8, boxes (count, max_faces, 5) float32)``; a box row is
        ``[x0, y0, x1, y1, class]`` in pixels, padding rows are all -1.

    Raises:
        DatasetError: Bad count, size, max_faces, shares or face_range.
    """
    lo, hi = face_range
    if (count < 1 or size < 32 or max_faces < 1 or len(shares) != len(MASK_CLASSES) or min(shares) < 0
            or sum(shares) <= 0 or not 0.05 <= lo <= hi <= 0.9):
        raise DatasetError(f"draw_face_scenes needs count >= 1, size >= 32, max_faces >= 1, "
                           f"{len(MASK_CLASSES)} non-negative shares and 0.05 <= face_range <= 0.9; got "
                           f"count={count}, size={size}, max_faces={max_faces}, shares={shares}, "
                           f"face_range={face_range}")
    p = np.asarray(shares, dtype=np.float64) / float(sum(shares))
    images = np.empty((count, size, size, 3), np.uint8)
    boxes = np.empty((count, max_faces, 5), np.float32)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(count)):  # image i depends on (seed, i) only
        images[i], boxes[i] = _scene(np.random.default_rng(child), size, max_faces, p, face_range)
    return images, boxes


def generate_masks_dataset(root: str | os.PathLike[str], count: int = 600, size: int = 96, seed: int = 0,
                           max_faces: int = 4) -> Path:
    """Write a synthetic face-mask detection dataset (sample layout, ``task: detection``).

    Returns:
        The path of its ``dataset.yaml``.
    """
    from mlwf_nb.data.samples import write_sample_dataset

    images, boxes = draw_face_scenes(count, size, seed, max_faces)
    return write_sample_dataset(root, f"masks-synth-{count}", images, boxes, MASK_CLASSES, task="detection",
                                extra={"bands": ["red", "green", "blue"], "max_boxes": max_faces,
                                       "box_format": "xyxy-pixels",
                                       "generator": {"module": __name__, "count": count, "size": size,
                                                     "seed": seed, "max_faces": max_faces,
                                                     "shares": list(CLASS_SHARES)}})
