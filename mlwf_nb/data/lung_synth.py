"""Synthetic chest X-rays with lung masks for the lung-segmentation template.

Each image is a grayscale frontal radiograph-like picture: a bright body outline
(an ellipse of soft tissue) on dark air, a brighter spine/mediastinum band, two
dark lung fields of varying size and shape (ellipses deformed by low-order
harmonics, cut by the mediastinum, the heart shadow and the diaphragm dome),
curved rib-like bands over the thorax, a smooth intensity gradient, gamma and
gain variation, blur and noise. The mask is 1 on lung pixels, 0 elsewhere.
Vectorised numpy over a batch, deterministic by seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["LUNG_CLASSES", "draw_chest_xrays", "generate_lung_dataset"]

LUNG_CLASSES: list[dict[str, Any]] = [
    {"index": 0, "name": "background", "color": [0, 0, 0]},
    {"index": 1, "name": "lung", "color": [255, 80, 80]},
]
_CHUNK = 128


def _col(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def _lung(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, n: int, side: float) -> np.ndarray:
    """One lung field per image in unit coordinates (u across, v down; body centre at 0)."""
    cx = _col(side * rng.uniform(0.17, 0.24, n))
    cy = _col(rng.uniform(-0.08, 0.0, n))
    a = _col(rng.uniform(0.11, 0.16, n))
    b = _col(rng.uniform(0.25, 0.34, n))
    du, dv = (u - cx) / a, (v - cy) / b
    r = np.hypot(du, dv)
    t = np.arctan2(dv, du)
    wobble = 1.0 + sum(_col(rng.uniform(0.0, 0.08, n)) * np.cos(k * t + _col(rng.uniform(0, 2 * np.pi, n)))
                       for k in (2, 3))
    inside = r < wobble
    medial = side * u > _col(rng.uniform(0.05, 0.08, n))          # mediastinum
    dome = v < cy + b * 0.8 - _col(rng.uniform(0.5, 1.2, n)) * (u - cx) ** 2 * 3.0  # diaphragm
    mask = inside & medial & dome
    if side > 0:  # the heart shadow bites into the lower medial left lung (image right)
        heart = np.hypot((u - _col(rng.uniform(0.05, 0.1, n))) / 0.14, (v - cy - b * 0.55) / 0.16) < 1.0
        mask &= ~heart
    return mask


def _blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    size_y, size_x = img.shape[1:]
    fy, fx = np.fft.fftfreq(size_y), np.fft.rfftfreq(size_x)
    transfer = np.exp(-2.0 * np.pi**2 * _col(sigma) ** 2 * (fy[:, None] ** 2 + fx[None] ** 2)[None])
    return np.fft.irfft2(np.fft.rfft2(img, axes=(1, 2)) * transfer, s=(size_y, size_x), axes=(1, 2))


def _draw_chunk(n: int, height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u = (xx[None] - (width - 1) / 2.0) / width + _col(rng.uniform(-0.03, 0.03, n))
    v = (yy[None] - (height - 1) / 2.0) / height + _col(rng.uniform(-0.03, 0.03, n))
    body = np.hypot(u / _col(rng.uniform(0.40, 0.48, n)), (v - 0.05) / _col(rng.uniform(0.5, 0.6, n))) < 1.0
    lungs = _lung(u, v, rng, n, -1.0) | _lung(u, v, rng, n, 1.0)
    img = np.where(body, _col(rng.uniform(0.55, 0.75, n)), _col(rng.uniform(0.02, 0.08, n)))
    img = img + body * 0.25 * np.exp(-(u / _col(rng.uniform(0.035, 0.05, n))) ** 2)   # spine
    img = np.where(lungs, _col(rng.uniform(0.18, 0.32, n)) + 0.1 * (v + 0.3), img)
    phase = (v - _col(rng.uniform(1.0, 2.0, n)) * u**2) / _col(rng.uniform(0.07, 0.1, n))
    ribs = ((1.0 + np.cos(2 * np.pi * phase + _col(rng.uniform(0, 2 * np.pi, n)))) / 2.0) ** 4
    thorax = body & (v < 0.3)
    img = img + thorax * _col(rng.uniform(0.08, 0.18, n)) * ribs
    img = img * (1.0 + _col(rng.uniform(-0.15, 0.15, n)) * u)                         # exposure gradient
    img = _blur(img, rng.uniform(0.4, 1.0, n) * width / 64.0)
    img = np.clip(img, 0.0, None) ** _col(rng.uniform(0.8, 1.25, n)) * _col(rng.uniform(0.85, 1.15, n))
    img = img + rng.normal(0.0, 1.0, img.shape) * _col(rng.uniform(0.02, 0.05, n))
    u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return u8[..., None], lungs.astype(np.int32)


def draw_chest_xrays(count: int, height: int = 64, width: int = 64,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` synthetic chest X-rays and their lung masks.

    Args:
        count: Number of images.
        height: Image height in pixels (>= 16).
        width: Image width in pixels (>= 16).
        seed: Generator seed: the same seed gives the same images.

    Returns:
        ``(images (count, H, W, 1) uint8, masks (count, H, W) int32 with 0 background, 1 lung)``.

    Raises:
        DatasetError: Bad count or size.
    """
    if count < 1 or height < 16 or width < 16:
        raise DatasetError(f"draw_chest_xrays needs count >= 1 and a size of at least 16x16; got count={count}, "
                           f"size={height}x{width}")
    rng = np.random.default_rng(seed)
    images = np.empty((count, height, width, 1), np.uint8)
    masks = np.empty((count, height, width), np.int32)
    for start in range(0, count, _CHUNK):
        k = min(_CHUNK, count - start)
        images[start:start + k], masks[start:start + k] = _draw_chunk(k, height, width, rng)
    return images, masks


def generate_lung_dataset(root: str | os.PathLike[str], count: int = 200, height: int = 64, width: int = 64,
                          seed: int = 0) -> Path:
    """Write a synthetic lung dataset (sample layout, see :mod:`mlwf_nb.data.samples`).

    Returns:
        The path of its ``dataset.yaml``.
    """
    from mlwf_nb.data.samples import write_sample_dataset

    images, masks = draw_chest_xrays(count, height, width, seed)
    return write_sample_dataset(root, f"lung-synth-{count}", images, masks, LUNG_CLASSES, task="segmentation",
                                extra={"bands": ["xray"], "generator": {"module": __name__, "count": count,
                                                                        "height": height, "width": width,
                                                                        "seed": seed}})
