"""Sample datasets: many small images with a class (or a mask) each, stored as shards.

The galaxy and lung templates keep their data in this layout (land cover keeps
whole GeoTIFF scenes, see :mod:`mlwf_nb.data.dataset`)::

    <dataset>/
      dataset.yaml          name, version, layout: samples, task, shape, count, classes, shards
      manifest.json         sha256 per file (``mlwf data manifest``)
      shards/part-000.x.npy (N, H, W, B) uint8 images
      shards/part-000.y.npy (N,) int32 classes, (N, H, W) int32 masks (segmentation), or
                            (N, K, 5) float32 boxes [x0, y0, x1, y1, class], padding rows -1 (detection)
      shards/part-000.json  shard metadata (count, class_counts, ...)

Every shard is a :mod:`mlwf_nb.data.shards` shard, so the training path reads it
with ``ShardSequence`` exactly like land-cover patches. Unlike the scene layout,
class ``index`` *is* the model class (there is no "unlabeled" index 0):
``classes: [{index: 0, name: smooth-round, color: [r, g, b]}, ...]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from mlwf_nb._io import write_text
from mlwf_nb.data.integrity import write_manifest
from mlwf_nb.data.shards import read_shard, write_shard
from mlwf_nb.errors import DatasetError

__all__ = ["SampleDataset", "write_sample_dataset", "load_shards", "split_samples", "is_sample_dataset",
           "SAMPLES_LAYOUT", "SHARD_SIZE"]

SAMPLES_LAYOUT = "samples"
SHARD_SIZE = 512
_FIX = "see mlwf_nb/data/samples.py (or docs/pipelines.md) for the layout, or delete the folder to regenerate it"


@dataclass(frozen=True)
class SampleDataset:
    """An opened sample dataset (the parsed ``dataset.yaml``)."""

    root: Path
    name: str
    task: Literal["classification", "segmentation", "detection"]
    shape: tuple[int, int, int]
    count: int
    classes: list[dict[str, Any]]
    shards: list[str]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SampleDataset:
        """Read ``dataset.yaml`` from a folder (or the file itself).

        Raises:
            DatasetError: The file is missing or not a sample dataset.
        """
        yml = Path(path)
        if yml.is_dir():
            yml = yml / "dataset.yaml"
        try:
            data = yaml.safe_load(yml.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise DatasetError(f"cannot read {str(yml)!r}: {err}; {_FIX}") from err
        if not isinstance(data, dict) or data.get("layout") != SAMPLES_LAYOUT:
            got = data.get("layout") if isinstance(data, dict) else data
            raise DatasetError(f"{str(yml)!r} has layout {got!r}, expected {SAMPLES_LAYOUT!r}; {_FIX}")
        try:
            classes = sorted(data["classes"], key=lambda c: int(c["index"]))
            return cls(yml.parent, str(data["name"]), data["task"], tuple(data["shape"]),  # type: ignore[arg-type]
                       int(data["count"]), classes, [str(s) for s in data["shards"]])
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{str(yml)!r}: missing or malformed field {err}; {_FIX}") from err

    @property
    def class_names(self) -> list[str]:
        """Class names by model class index."""
        return [str(c["name"]) for c in self.classes]

    @property
    def class_colors(self) -> list[tuple[int, int, int]]:
        """RGB colour of each class."""
        return [(int(c["color"][0]), int(c["color"][1]), int(c["color"][2])) for c in self.classes]

    @property
    def num_classes(self) -> int:
        """Number of model classes."""
        return len(self.classes)

    def shard_files(self) -> list[str]:
        """Every shard file, relative to the root (``shards/part-000.x.npy``, ...)."""
        return [f"{s}{ext}" for s in self.shards for ext in (".x.npy", ".y.npy", ".json")]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels in memory (the sets are small)."""
        return load_shards([self.root / s for s in self.shards])


def is_sample_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a dataset folder or its ``dataset.yaml``) declares ``layout: samples``.

    A missing or unreadable file is not a sample dataset (the scene reader then says what is wrong).
    """
    yml = Path(path)
    if yml.is_dir():
        yml = yml / "dataset.yaml"
    try:
        data = yaml.safe_load(yml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("layout") == SAMPLES_LAYOUT


def load_shards(prefixes: Sequence[str | os.PathLike[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the shards ``prefixes`` into ``(X, y)`` arrays in memory."""
    parts = [read_shard(p, mmap=False)[:2] for p in prefixes]
    if not parts:
        raise DatasetError("no shards to load")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def write_sample_dataset(root: str | os.PathLike[str], name: str, X: np.ndarray, y: np.ndarray,
                         classes: Sequence[dict[str, Any]], *,
                         task: Literal["classification", "segmentation", "detection"],
                         extra: dict[str, Any] | None = None, shard_size: int = SHARD_SIZE) -> Path:
    """Write ``X``/``y`` as shards plus ``dataset.yaml`` (its presence means complete), then ``manifest.json``.

    The writer publishes the dataset as ``mlwf data manifest`` would, so runs on it check
    every file against digests taken when it was written (no warning, nothing in the user cache).

    Args:
        root: Dataset folder (created).
        name: Dataset name.
        X: ``(N, H, W, B)`` uint8 images.
        y: ``(N,)`` classes, ``(N, H, W)`` masks or ``(N, K, 5)`` boxes.
        classes: ``[{"index", "name", "color"}, ...]`` by model class.
        task: ``classification``, ``segmentation`` or ``detection``.
        extra: More fields for ``dataset.yaml`` (generator settings, ...).
        shard_size: Samples per shard.

    Returns:
        The path of ``dataset.yaml``.
    """
    base = Path(root)
    (base / "shards").mkdir(parents=True, exist_ok=True)
    shards = []
    for k, start in enumerate(range(0, len(X), shard_size)):
        rel = f"shards/part-{k:03d}"
        write_shard(base / rel, X[start:start + shard_size], y[start:start + shard_size], {"scene": rel})
        shards.append(rel)
    meta = {"name": name, "version": 1, "layout": SAMPLES_LAYOUT, "task": task, "shape": list(X.shape[1:]),
            "count": len(X), "classes": [dict(c) for c in classes], "shards": shards, **(extra or {})}
    out = write_text(base / "dataset.yaml", yaml.safe_dump(meta, sort_keys=False, default_flow_style=None))
    write_manifest(base)
    return out


def split_samples(groups: Sequence[Any], train: float, val: float, test: float, *, seed: int = 0,
                  stratify: bool = True) -> dict[str, np.ndarray]:
    """Split sample indices into train/val/test, stratified by ``groups`` (e.g. class labels).

    Uses the same deterministic allocation as the scene split
    (:func:`mlwf_nb.data.split.split_scenes`).

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` sorted int64 index arrays.
    """
    from mlwf_nb.data.split import split_scenes

    width = len(str(max(len(groups) - 1, 0)))
    pairs = [(f"{i:0{width}d}", str(g)) for i, g in enumerate(groups)]
    parts = split_scenes(pairs, train, val, test, seed=seed, stratify=stratify)
    return {k: np.array(sorted(int(i) for i in v), dtype=np.int64) for k, v in parts.items()}
