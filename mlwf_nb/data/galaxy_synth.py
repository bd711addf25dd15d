"""Synthetic galaxy images for the galaxy-morphology template (Galaxy Zoo style classes).

Each image is an RGB cut-out with one galaxy drawn from physical light profiles:

* Sérsic profiles ``I(r) = exp(-b_n ((r / r_e)^(1/n) - 1))`` on elliptical radii
  (axis ratio ``q``, position angle), for bulges and ellipticals;
* exponential disks (Sérsic ``n = 1``), seen face-on with logarithmic spiral arms
  ``cos(m (theta - ln(r) / tan(pitch)))`` or edge-on with a dust lane;
* clumpy irregulars (gaussian star-forming knots);
* a gaussian point-spread function (FFT), sky noise, and an asinh stretch to uint8.

Classes (model index): smooth-round, smooth-elongated, edge-on-disk, spiral,
irregular, with imbalanced frequencies (:data:`CLASS_SHARES`). Everything is
vectorised numpy over a batch and deterministic by seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["GALAXY_CLASSES", "CLASS_SHARES", "draw_galaxies", "generate_galaxy_dataset"]

GALAXY_CLASSES: list[dict[str, Any]] = [
    {"index": 0, "name": "smooth-round", "color": [230, 180, 60]},
    {"index": 1, "name": "smooth-elongated", "color": [240, 110, 40]},
    {"index": 2, "name": "edge-on-disk", "color": [150, 90, 220]},
    {"index": 3, "name": "spiral", "color": [60, 130, 240]},
    {"index": 4, "name": "irregular", "color": [60, 190, 120]},
]
CLASS_SHARES = (0.34, 0.26, 0.11, 0.21, 0.08)
_RED = np.array([1.0, 0.78, 0.52])      # old stellar populations: bulges, ellipticals
_BLUE = np.array([0.62, 0.78, 1.0])     # young disks, arms, knots
_CHUNK = 256


def _b(n: np.ndarray) -> np.ndarray:
    """Sérsic b_n (Ciotti & Bertin expansion)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n)


def _col(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def _coords(n: int, size: int, rng: np.random.Generator, pa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in pixels along each galaxy's major (x) and minor (y) axes, ``(n, S, S)``."""
    c = (size - 1) / 2.0 + rng.uniform(-0.04, 0.04, size=(2, n)) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx = xx[None] - _col(c[0])
    dy = yy[None] - _col(c[1])
    cos, sin = _col(np.cos(pa)), _col(np.sin(pa))
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _sersic(x: np.ndarray, y: np.ndarray, re: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    r = np.hypot(x, y / _col(q)) + 1e-3
    nn = _col(n)
    return np.exp(-_b(nn) * ((r / _col(re)) ** (1.0 / nn) - 1.0))


def _smooth(rng: np.random.Generator, n: int, size: int, x: np.ndarray, y: np.ndarray,
            q: np.ndarray) -> np.ndarray:
    re = rng.uniform(0.09, 0.18, n) * size
    prof = _sersic(x, y, re, rng.uniform(2.5, 4.5, n), q)
    return prof[..., None] * _RED


def _edge_on(rng: np.random.Generator, n: int, size: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h = rng.uniform(0.13, 0.2, n) * size
    disk = _sersic(x, y, h, np.ones(n), rng.uniform(0.07, 0.15, n))
    bulge = _sersic(x, y, rng.uniform(0.03, 0.06, n) * size, np.full(n, 4.0), rng.uniform(0.55, 0.8, n))
    lane = 1.0 - _col(rng.uniform(0.4, 0.8, n)) * np.exp(-(y / _col(0.012 * size * rng.uniform(0.8, 1.5, n))) ** 2)
    return (disk * lane)[..., None] * _BLUE + (0.4 * bulge * lane)[..., None] * _RED


def _spiral(rng: np.random.Generator, n: int, size: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = rng.uniform(0.55, 1.0, n)
    xd, yd = x, y / _col(q)
    r = np.hypot(xd, yd) + 1e-3
    theta = np.arctan2(yd, xd)
    h = rng.uniform(0.12, 0.2, n) * size
    disk = np.exp(-r / _col(h))
    m = _col(rng.choice([2, 2, 3], n).astype(np.float64))
    pitch = _col(np.deg2rad(rng.uniform(12.0, 28.0, n)))
    sign = _col(rng.choice([-1.0, 1.0], n))
    phase = m * (theta - sign * np.log(r / _col(h)) / np.tan(pitch)) + _col(rng.uniform(0, 2 * np.pi, n))
    amp = _col(rng.uniform(0.7, 0.95, n))
    arms = disk * (1.0 - amp + amp * ((1.0 + np.cos(phase)) / 2.0) ** 3)
    bulge = _sersic(x, y, rng.uniform(0.03, 0.06, n) * size, np.full(n, 4.0), q)
    return (2.0 * arms)[..., None] * _BLUE + (0.3 * bulge)[..., None] * _RED


def _irregular(rng: np.random.Generator, n: int, size: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros((*x.shape, 3))
    sigma = _col(rng.uniform(0.1, 0.16, n) * size)
    diffuse = np.exp(-(x**2 + (y / _col(rng.uniform(0.5, 1.0, n))) ** 2) / (2 * sigma**2))
    out += 0.35 * diffuse[..., None] * _BLUE
    knots = rng.integers(3, 8, n)
    for j in range(7):
        on = _col((knots > j).astype(np.float64))
        cx, cy = (_col(rng.normal(0, 0.13, n) * size) for _ in range(2))
        s = _col(rng.uniform(0.02, 0.05, n) * size)
        w = _col(rng.uniform(0.4, 1.0, n))
        blob = on * w * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))
        tint = _BLUE if j % 3 else np.array([1.0, 0.7, 0.85])  # some pink HII regions
        out += blob[..., None] * tint
    return out


def _psf(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian point-spread blur of ``(n, S, S, 3)`` images (FFT, one sigma per image)."""
    size = img.shape[1]
    f = np.fft.fftfreq(size)
    f2 = f[:, None] ** 2 + f[None, : size // 2 + 1] ** 2
    transfer = np.exp(-2.0 * np.pi**2 * sigma[:, None, None] ** 2 * f2[None])
    spec = np.fft.rfft2(img, axes=(1, 2)) * transfer[..., None]
    return np.fft.irfft2(spec, s=(size, size), axes=(1, 2))


def _draw_chunk(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    pa = rng.uniform(0.0, np.pi, n)
    x, y = _coords(n, size, rng, pa)
    img = np.zeros((n, size, size, 3))
    for cls in range(len(GALAXY_CLASSES)):
        sel = np.flatnonzero(labels == cls)
        if not len(sel):
            continue
        k = len(sel)
        xs, ys = x[sel], y[sel]
        if cls == 0:
            img[sel] = _smooth(rng, k, size, xs, ys, rng.uniform(0.8, 1.0, k))
        elif cls == 1:
            img[sel] = _smooth(rng, k, size, xs, ys, rng.uniform(0.3, 0.55, k))
        elif cls == 2:
            img[sel] = _edge_on(rng, k, size, xs, ys)
        elif cls == 3:
            img[sel] = _spiral(rng, k, size, xs, ys)
        else:
            img[sel] = _irregular(rng, k, size, xs, ys)
    img /= np.percentile(img.reshape(n, -1), 99.0, axis=1)[:, None, None, None] + 1e-9  # cores saturate
    img *= _col(rng.uniform(0.6, 1.3, n))[..., None]
    img = _psf(img, rng.uniform(0.5, 1.4, n) * size / 64.0)
    img += rng.normal(0.0, 1.0, img.shape) * _col(rng.uniform(0.01, 0.035, n))[..., None]
    soft = 0.08
    u8 = np.arcsinh(np.clip(img, 0.0, None) / soft) / np.arcsinh(1.5 / soft)
    return np.clip(u8 * 255.0 + 0.5, 0, 255).astype(np.uint8)


def draw_galaxies(count: int, size: int = 64, seed: int = 0,
                  shares: tuple[float, ...] = CLASS_SHARES) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` galaxy images with their morphology class.

    Args:
        count: Number of images.
        size: Image height and width in pixels (>= 16).
        seed: Generator seed: the same seed gives the same images.
        shares: Class frequencies (normalised), one per class of :data:`GALAXY_CLASSES`.

    Returns:
        ``(images (count, size, size, 3) uint8, labels (count,) int32)``.

    Raises:
        DatasetError: Bad count, size or shares.
    """
    if count < 1 or size < 16 or len(shares) != len(GALAXY_CLASSES) or min(shares) < 0 or sum(shares) <= 0:
        raise DatasetError(f"draw_galaxies needs count >= 1, size >= 16 and {len(GALAXY_CLASSES)} non-negative "
                           f"class shares; got count={count}, size={size}, shares={shares}")
    rng = np.random.default_rng(seed)
    p = np.asarray(shares, dtype=np.float64) / float(sum(shares))
    labels = rng.choice(len(p), size=count, p=p).astype(np.int32)
    images = np.empty((count, size, size, 3), np.uint8)
    for start in range(0, count, _CHUNK):
        images[start:start + _CHUNK] = _draw_chunk(labels[start:start + _CHUNK], size, rng)
    return images, labels


def generate_galaxy_dataset(root: str | os.PathLike[str], count: int = 600, size: int = 64,
                            seed: int = 0) -> Path:
    """Write a synthetic galaxy dataset (sample layout, see :mod:`mlwf_nb.data.samples`).

    Returns:
        The path of its ``dataset.yaml``.
    """
    from mlwf_nb.data.samples import write_sample_dataset

    images, labels = draw_galaxies(count, size, seed)
    return write_sample_dataset(root, f"galaxy-synth-{count}", images, labels, GALAXY_CLASSES,
                                task="classification",
                                extra={"bands": ["red", "green", "blue"], "generator":
                                       {"module": __name__, "count": count, "size": size, "seed": seed,
                                        "shares": list(CLASS_SHARES)}})
