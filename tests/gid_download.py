"""A tiny Gaofen Image Dataset folder as it unpacks from the download, written WITHOUT the toolkit.

Only numpy and Pillow: no mlwf_nb code, no rasterio or GDAL writer, no dataset.yaml, no manifest.
Like GID's large-scale classification set: ``image_NirRGB/<scene>.tif`` (4-band uint8, band order
NIR, R, G, B, no georeference), ``label_5classes/<scene>_label.tif`` (RGB colour-coded labels: built-up
red, farmland green, forest cyan, meadow yellow, water blue, unlabeled black) and scene names in GID's
own style (``GF2_PMS1__L1A0001064454-MSS1``). Each scene has a black (nodata, unlabeled) border
strip, as real GID scenes have outside the imaged area.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["write_gid_download", "SCENES", "COLOURS", "SIGNATURES"]

SCENES = ["GF2_PMS1__L1A0001064454-MSS1", "GF2_PMS2__L1A0001118839-MSS2", "GF2_PMS1__L1A0001334311-MSS1",
          "GF2_PMS2__L1A0001517494-MSS2"]
COLOURS = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 255, 255), (255, 255, 0), (0, 0, 255)]
# NIR, R, G, B of built-up, farmland, forest, meadow, water (8-bit DN)
SIGNATURES = np.array([[0, 0, 0, 0], [90, 150, 140, 135], [170, 70, 110, 60], [200, 40, 80, 45],
                       [150, 95, 120, 80], [25, 45, 70, 95]], dtype=np.float64)


def _label(rng: np.random.Generator, size: int) -> np.ndarray:
    """Class blocks of 8-16 px (a random Voronoi-like tiling), a 4 px unlabeled border on the left."""
    n = 9
    centres = rng.uniform(0, size, (n, 2))
    classes = np.concatenate([np.arange(1, 6), rng.integers(1, 6, n - 5)])
    yy, xx = np.mgrid[0:size, 0:size]
    d = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    label = classes[np.argmin(d, axis=-1)].astype(np.uint8)
    label[:, :4] = 0
    return label


def write_gid_download(root: Path, size: int = 48, seed: int = 0, scenes: list[str] | None = None) -> Path:
    """Write the folder (see the module docstring) and return it."""
    rng = np.random.default_rng(seed)
    (root / "image_NirRGB").mkdir(parents=True, exist_ok=True)
    (root / "label_5classes").mkdir(parents=True, exist_ok=True)
    for name in scenes or SCENES:
        label = _label(rng, size)
        image = SIGNATURES[label] + rng.normal(0, 6, (size, size, 4))
        image = np.clip(np.rint(image), 1, 255).astype(np.uint8)
        image[label == 0] = 0  # the black border outside the imaged area
        Image.fromarray(image, "RGBA").save(root / "image_NirRGB" / f"{name}.tif", format="TIFF")
        rgb = np.array(COLOURS, dtype=np.uint8)[label]
        Image.fromarray(rgb, "RGB").save(root / "label_5classes" / f"{name}_label.tif", format="TIFF")
    return root
