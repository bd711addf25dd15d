"""Tiny real GeoTIFF datasets written with rasterio (no dependency on synth.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32650"
TRANSFORM = from_origin(500000.0, 4000000.0, 4.0, 4.0)
COLORS = {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 255, 255), 4: (255, 255, 0),
          5: (0, 0, 255)}


def write_tif(path: Path, array: np.ndarray, transform=TRANSFORM, nodata=None) -> Path:
    """Write a (bands, H, W) or (H, W) array with plain rasterio."""
    arr = array[None] if array.ndim == 2 else array
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype.name, crs=CRS, transform=transform,
                       nodata=nodata, tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(arr)
    return path


def make_label(h: int, w: int, seed: int) -> np.ndarray:
    """Blocky class map 0..5 (0 = unlabeled in one corner)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 6, size=(h // 8 + 1, w // 8 + 1), dtype=np.uint8)
    label = np.kron(coarse, np.ones((8, 8), np.uint8))[:h, :w].copy()
    label[:3, :3] = 0
    return label


def make_image(label: np.ndarray, seed: int, bands: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = 300 + 400 * label.astype(np.int64)
    img = np.stack([base * (b + 1) // 2 + rng.integers(0, 200, label.shape) for b in range(bands)])
    return np.clip(img, 1, 65535).astype(np.uint16)


def write_yaml(root: Path, scenes: list[tuple[str, str]], layout: str = "mlwf", **extra) -> Path:
    lines = [f"name: tiny\nversion: 1\nlayout: {layout}\nbands: [blue, green, red, nir]\n",
             "dtype: uint16\nnodata: 0\nclasses:\n"]
    names = ["unlabeled", "built-up", "farmland", "forest", "meadow", "water"]
    for i, n in enumerate(names):
        lines.append(f"  - {{index: {i}, name: {n}, color: {list(COLORS[i])}}}\n")
    sources = sorted({s for _, s in scenes}) or ["GF2"]
    lines.append("sources:\n" + "".join(f"  - {{name: {s}, pixel_size: 4.0}}\n" for s in sources))
    if scenes:
        lines.append("scenes:\n" + "".join(f"  - {{id: {i}, source: {s}}}\n" for i, s in scenes))
    for k, v in extra.items():
        lines.append(f"{k}: {v}\n")
    path = root / "dataset.yaml"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """mlwf layout: 4 scenes over 2 sources, 40x36 pixels, 4-band uint16 + uint8 labels."""
    root = tmp_path / "ds"
    scenes = [("GF-2_000", "GF-2"), ("GF-2_001", "GF-2"), ("GF-1_000", "GF-1"), ("GF-1_001", "GF-1")]
    for k, (sid, _) in enumerate(scenes):
        label = make_label(40, 36, k)
        write_tif(root / "images" / f"{sid}.tif", make_image(label, k), nodata=0)
        write_tif(root / "labels" / f"{sid}.tif", label)
    write_yaml(root, scenes)
    return root


@pytest.fixture
def gid_dataset(tmp_path: Path) -> Path:
    """gid layout: images beside RGB labels in label_5classes/, no scenes list."""
    root = tmp_path / "gid"
    for k, sid in enumerate(["GF2_PMS1__L1A0001", "GF2_PMS2__L1A0002"]):
        label = make_label(24, 32, k + 10)
        write_tif(root / f"{sid}.tif", make_image(label, k), nodata=0)
        rgb = np.stack([np.vectorize(lambda v, c=c: COLORS[int(v)][c])(label) for c in range(3)])
        write_tif(root / "label_5classes" / f"{sid}_label.tif", rgb.astype(np.uint8))
    write_yaml(root, [], layout="gid")
    return root


_THIS = sys.modules[__name__]  # taken at import: several test folders have a module named "conftest"


@pytest.fixture
def geo():
    """These helpers (write_tif, make_label, make_image, write_yaml, CRS, TRANSFORM, COLORS)."""
    return _THIS
