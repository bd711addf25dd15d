"""Land-cover class tables: index, name and label colour, and RGB colour-coded labels to indices.

Index 0 is always ``unlabeled`` (black). Two built-in tables follow the Gaofen Image
Dataset: ``gid-5`` (its large-scale classification set: built-up, farmland, forest,
meadow, water) and ``gid-15`` (its fine land-cover set). ``dataset.yaml`` may name one
(``classes: gid-5``) instead of listing the classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["ClassInfo", "DEFAULT_CLASSES", "GID5_CLASSES", "GID15_CLASSES", "CLASS_TABLES", "colors_to_index"]


@dataclass(frozen=True)
class ClassInfo:
    """One land-cover class: dataset index (0 = unlabeled), name and label colour."""

    index: int
    name: str
    color: tuple[int, int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for dataset.yaml."""
        return {"index": self.index, "name": self.name, "color": list(self.color)}


def _table(rows: list[tuple[str, tuple[int, int, int]]]) -> list[ClassInfo]:
    return [ClassInfo(0, "unlabeled", (0, 0, 0))] + [ClassInfo(i, n, c) for i, (n, c) in enumerate(rows, 1)]


GID5_CLASSES: list[ClassInfo] = _table([
    ("built-up", (255, 0, 0)), ("farmland", (0, 255, 0)), ("forest", (0, 255, 255)),
    ("meadow", (255, 255, 0)), ("water", (0, 0, 255)),
])
GID15_CLASSES: list[ClassInfo] = _table([
    ("industrial land", (200, 0, 0)), ("urban residential", (250, 0, 150)),
    ("rural residential", (200, 150, 150)), ("traffic land", (250, 150, 150)),
    ("paddy field", (0, 200, 0)), ("irrigated land", (150, 250, 0)), ("dry cropland", (150, 200, 150)),
    ("garden plot", (200, 0, 200)), ("arbor woodland", (150, 0, 250)), ("shrub land", (150, 150, 250)),
    ("natural grassland", (250, 200, 0)), ("artificial grassland", (200, 200, 0)),
    ("river", (0, 0, 200)), ("lake", (0, 150, 200)), ("pond", (0, 200, 250)),
])
DEFAULT_CLASSES = GID5_CLASSES
CLASS_TABLES: dict[str, list[ClassInfo]] = {"gid-5": GID5_CLASSES, "gid-15": GID15_CLASSES}


def colors_to_index(rgb: np.ndarray, classes: list[ClassInfo], where: str = "label") -> np.ndarray:
    """Map an RGB colour-coded label ``(3, H, W)`` to class indices ``(H, W)`` uint8.

    Raises:
        DatasetError: A colour is not in the class table; the message names
            ``where``, the colour and how many pixels have it.
    """
    r, g, b = (np.asarray(rgb[i], dtype=np.int64) for i in range(3))
    code = (r << 16) | (g << 8) | b
    table = np.array([(c.color[0] << 16) | (c.color[1] << 8) | c.color[2] for c in classes])
    order = np.argsort(table)
    pos = np.clip(np.searchsorted(table[order], code), 0, len(table) - 1)
    found = table[order][pos] == code
    if not found.all():
        bad = code[~found]
        first = int(bad.flat[0])
        colour = ((first >> 16) & 255, (first >> 8) & 255, first & 255)
        raise DatasetError(f"{where}: colour {colour} ({int((bad == first).sum())} pixels) is not in the "
                           f"class table {[c.color for c in classes]}; add it to classes[] in "
                           "dataset.yaml or fix the label")
    index = np.array([c.index for c in classes], dtype=np.uint8)[order]
    return index[pos]
