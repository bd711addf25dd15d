"""Patch shards on disk and a memory-mapped Keras loader over them.

A shard is three files sharing a prefix:

* ``<prefix>.x.npy`` — ``(N, S, S, B)`` uint8 patches (memory-mappable),
* ``<prefix>.y.npy`` — ``(N,)`` int32 model classes (0..C-1), or ``(N, S, S)`` int32
  per-pixel classes (segmentation masks),
* ``<prefix>.json``  — ``{"version": 1, "count", "shape", "dtype", "class_counts",
  "scene", "source", ...}``, written last: a shard with its JSON is complete.

:class:`ShardSequence` (a ``keras.utils.PyDataset``) memory-maps the shards and
reads only the rows of each batch. Keras is imported when ``ShardSequence`` is
first used, so writing and reading shards does not load TensorFlow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlwf_nb._io import atomic_path, read_json, write_json
from mlwf_nb.data.augment import augment_batch, is_flip_only
from mlwf_nb.errors import DatasetError
from mlwf_nb.spec import AugmentSpec

__all__ = ["shard_paths", "write_shard", "read_shard", "read_shard_meta", "class_counts",
           "ShardBatches", "ShardSequence", "loader_threads"]

if TYPE_CHECKING:
    ShardSequence: type[ShardBatches]  # built on first use: see _sequence_class()

_FIX = "run the preprocess step for this scene again"


def shard_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The ``(.x.npy, .y.npy, .json)`` paths of a shard."""
    p = str(prefix)
    return Path(p + ".x.npy"), Path(p + ".y.npy"), Path(p + ".json")


def write_shard(prefix: str | os.PathLike[str], X: np.ndarray, y: np.ndarray,
                meta: dict[str, Any] | None = None) -> list[Path]:
    """Write a shard; each file appears under its name only when complete.

    Args:
        prefix: Path prefix, e.g. ``shards/GF-2_000``.
        X: ``(N, S, S, B)`` uint8 patches.
        y: ``(N,)`` integer model classes, ``(N, S, S)`` per-pixel classes (masks), or ``(N, K, 5)``
            boxes ``[x0, y0, x1, y1, class]`` (detection; float32, padding rows -1).
        meta: Extra JSON-safe fields (``scene``, ``source``, ...).

    Returns:
        The three paths (x, y, json).

    Raises:
        DatasetError: Shapes or dtypes are wrong.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    boxes = y.ndim == 3 and y.shape[0] == X.shape[0] and y.shape[2] == 5
    if X.ndim != 4 or X.dtype != np.uint8 or (y.shape not in ((X.shape[0],), X.shape[:3]) and not boxes):
        raise DatasetError(f"shard {str(prefix)!r}: X must be (N, S, S, B) uint8 and y (N,), (N, S, S) or "
                           f"(N, K, 5) boxes, got X {X.shape} {X.dtype} and y {y.shape}")
    xp, yp, jp = shard_paths(prefix)
    for path, arr in ((xp, X), (yp, y.astype(np.float32 if boxes else np.int32))):
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, arr)
    labels = y[..., 4][y[..., 4] >= 0] if boxes else y  # detection: the classes of the boxes
    counts = np.bincount(labels.astype(np.int64).ravel(), minlength=1) if len(labels) else np.zeros(0, np.int64)
    info = {**(meta or {}), "version": 1, "count": int(X.shape[0]), "shape": list(X.shape[1:]),
            "dtype": "uint8", "class_counts": {str(k): int(c) for k, c in enumerate(counts) if c}}
    info.setdefault("scene", None)
    info.setdefault("source", None)
    write_json(jp, info)
    return [xp, yp, jp]


def read_shard_meta(prefix: str | os.PathLike[str]) -> dict[str, Any]:
    """The shard's JSON (raises DatasetError naming it when missing or malformed)."""
    jp = shard_paths(prefix)[2]
    try:
        meta = read_json(jp)
    except (OSError, ValueError) as err:
        raise DatasetError(f"shard metadata {str(jp)!r} is missing or unreadable ({err}); {_FIX}") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("count"), int):
        raise DatasetError(f"shard metadata {str(jp)!r} has no 'count'; {_FIX}")
    return meta


def read_shard(prefix: str | os.PathLike[str],
               mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Open a shard: ``(X, y, meta)``; X and y memory-mapped read-only by default.

    Raises:
        DatasetError: A file is missing, or the files disagree with each other.
    """
    xp, yp, _ = shard_paths(prefix)
    meta = read_shard_meta(prefix)
    mode: Literal["r"] | None = "r" if mmap else None
    try:
        X = np.load(xp, mmap_mode=mode, allow_pickle=False)
        y = np.load(yp, mmap_mode=mode, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"shard {str(prefix)!r}: cannot read {err}; {_FIX}") from err
    if X.shape[0] != meta["count"] or y.shape[0] != meta["count"] or X.dtype != np.uint8:
        raise DatasetError(f"shard {str(xp)!r}: {X.shape[0]} patches ({X.dtype}) and {y.shape[0]} "
                           f"labels, but its JSON says {meta['count']}; {_FIX}")
    return X, y, meta


def class_counts(prefixes: Sequence[str | os.PathLike[str]]) -> dict[int, int]:
    """Patches per model class over several shards (from their JSON only)."""
    total: dict[int, int] = {}
    for prefix in prefixes:
        for k, c in read_shard_meta(prefix).get("class_counts", {}).items():
            total[int(k)] = total.get(int(k), 0) + int(c)
    return dict(sorted(total.items()))


class ShardBatches:
    """Batches over memory-mapped shards (the logic of :class:`ShardSequence`, without Keras).

    Batch ``i`` of epoch ``e`` holds the samples ``order[i*b:(i+1)*b]`` of a
    permutation drawn from ``(seed, e)``: deterministic per epoch, different
    between epochs. ``e`` advances on every ``on_epoch_end`` (Keras also calls
    it once when ``fit`` starts); ``set_epoch(initial_epoch)`` before
    ``fit(initial_epoch=...)`` repeats the orders of an uninterrupted run.
    Flip-only augmentation runs as numpy flips seeded by ``(seed, e, i)``
    (exactly what RandomFlip does, much cheaper); rotation, zoom and shifts (with
    the flips) run as one affine warp per uint8 patch
    (:func:`~mlwf_nb.data.augment.augment_batch`), drawn from ``(seed, e, i)`` too,
    and masks move with their images.
    """

    def __init__(self, prefixes: Sequence[str | os.PathLike[str]], batch_size: int, shuffle: bool = True,
                 seed: int = 0, augment: AugmentSpec | None = None) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        self.prefixes = [str(p) for p in prefixes]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        counts = [read_shard_meta(p)["count"] for p in self.prefixes]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.epoch = 0
        self._order = self._make_order()
        self._arrays: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._pid = -1

    @property
    def total(self) -> int:
        """Number of samples over all shards."""
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return math.ceil(self.total / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch``'s order (e.g. when training resumes from a checkpoint)."""
        self.epoch = epoch
        self._order = self._make_order()

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order."""
        self.set_epoch(self.epoch + 1)

    def _make_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.total)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.total)

    def _open(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._arrays is None or self._pid != os.getpid():  # fresh maps in a worker process
            # Plain ndarray views of the maps: indexing a np.memmap pays its subclass hooks on every batch.
            self._arrays = [(X.view(np.ndarray), y.view(np.ndarray))
                            for X, y, _ in (read_shard(p) for p in self.prefixes)]
            self._pid = os.getpid()
        return self._arrays

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        arrays = self._open()
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        local = idx - self.offsets[shard]
        if self.augment is not None and not is_flip_only(self.augment):
            return self._warp(arrays, shard, local, index)
        x = _gather(arrays, 0, shard, local)
        y = _gather(arrays, 1, shard, local).astype(np.int32, copy=False)
        if self.augment is not None:
            self._flip(x, index, y)  # on uint8, before conversion: 4x less memory traffic
        return x.astype(np.float32), y  # raw 0..255: every model rescales with its first layer

    def _flip(self, x: np.ndarray, index: int, y: np.ndarray | None = None) -> None:
        """Random per-sample flips in place, seeded by (seed, epoch, batch); masks ``y`` flip along."""
        assert self.augment is not None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        mode = self.augment.flip
        masks = y if y is not None and y.ndim > 1 else None
        if mode in ("horizontal", "horizontal_and_vertical"):
            _flip_rows(x, masks, np.flatnonzero(rng.random(len(x)) < 0.5), axis=2)
        if mode in ("vertical", "horizontal_and_vertical"):
            _flip_rows(x, masks, np.flatnonzero(rng.random(len(x)) < 0.5), axis=1)

    def _warp(self, arrays: list[tuple[np.ndarray, np.ndarray]], shard: np.ndarray, local: np.ndarray,
              index: int) -> tuple[np.ndarray, np.ndarray]:
        """Flips, rotation, zoom and shifts in one warp per uint8 patch, drawn from (seed, epoch, batch).

        The draws depend on nothing else, so a batch is the same whichever loader thread
        makes it and in whatever order, and a resumed run sees the transforms of an
        uninterrupted one. Each patch is warped straight from its memory-mapped row into
        the float32 batch (no gathered copy); per-pixel masks move with their images
        (nearest neighbour).
        """
        assert self.augment is not None
        rows = list(zip(shard.tolist(), local.tolist(), strict=True))
        segmentation = arrays[rows[0][0]][1].ndim > 1
        rng = np.random.default_rng([self.seed, self.epoch, index, 2])
        x, masks = augment_batch([arrays[s][0][i] for s, i in rows], self.augment, rng,
                                 [arrays[s][1][i] for s, i in rows] if segmentation else None, dtype=np.float32)
        if masks is not None:
            return x, masks.astype(np.int32, copy=False)
        return x, _gather(arrays, 1, shard, local).astype(np.int32, copy=False)


def _gather(arrays: list[tuple[np.ndarray, np.ndarray]], which: int, shard: np.ndarray,
            local: np.ndarray) -> np.ndarray:
    """``arrays[shard[i]][which][local[i]]`` for every ``i``, one ascending read per shard's memory map."""
    first = arrays[int(shard[0])][which]
    out = np.empty((len(local), *first.shape[1:]), dtype=first.dtype)
    for s in np.unique(shard):
        rows = np.flatnonzero(shard == s)
        sort = np.argsort(local[rows])  # ascending reads from the memory map
        out[rows[sort]] = arrays[int(s)][which][local[rows][sort]]
    return out


def loader_threads(cores: int | None = None) -> int:
    """Loader threads for a training job on a machine with ``cores`` cores (default: this one's).

    One per four cores, at least 1 and at most 4. On a CPU-only machine the model's
    own kernels already use every core, and a second loader thread only competes
    with them: on 2 cores, the ``cpu`` preset's pipeline cost 1.0 ms of CPU per
    batch with one thread and 1.5 ms with two. A GPU host has cores to spare, and
    the 224 px loader needs several threads to feed the card.
    """
    n = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(4, n // 4))


def _flip_rows(x: np.ndarray, masks: np.ndarray | None, rows: np.ndarray, axis: int) -> None:
    """Reverse ``x[rows]`` (and ``masks[rows]``) along ``axis`` (1: rows, 2: columns), in one gather each."""
    if len(rows) == 0:
        return
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    pixels = x
    width = x.shape[-1] * x.itemsize if x.ndim == 4 else 0
    if width in (2, 4, 8) and x.flags.c_contiguous:
        # One machine word per pixel: numpy moves 4 uint8 bands at a stride of -4 bytes about 10x slower than
        # one uint32 (0.19 vs 0.02 ms for 32 of the cpu preset's 32 x 32 x 4 patches).
        pixels = x.view(f"u{width}")[..., 0]
    pixels[rows] = pixels[rows][flip]
    if masks is not None:
        masks[rows] = masks[rows][flip]


_SEQUENCE_CLASS: type | None = None


def _sequence_class() -> type:
    global _SEQUENCE_CLASS
    if _SEQUENCE_CLASS is None:
        import keras

        class ShardSequence(ShardBatches, keras.utils.PyDataset):  # type: ignore[misc,name-defined]
            """Keras PyDataset over memory-mapped shards: ``(x float32 in 0..255, y int32)`` batches."""

            def __init__(self, prefixes: Sequence[str | os.PathLike[str]], batch_size: int,
                         shuffle: bool = True, seed: int = 0, augment: AugmentSpec | None = None,
                         workers: int = 1, use_multiprocessing: bool = False,
                         max_queue_size: int = 10) -> None:
                keras.utils.PyDataset.__init__(self, workers=workers, use_multiprocessing=use_multiprocessing,
                                               max_queue_size=max_queue_size)
                ShardBatches.__init__(self, prefixes, batch_size, shuffle, seed, augment)

        ShardSequence.__module__ = __name__
        ShardSequence.__qualname__ = "ShardSequence"  # picklable by reference (worker processes)
        _SEQUENCE_CLASS = ShardSequence
    return _SEQUENCE_CLASS


def __getattr__(name: str) -> Any:
    if name == "ShardSequence":
        return _sequence_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
