"""One read of a scene: its sha256, its histograms and its raw training windows in the same pass.

The land-cover preparation used to decode every training scene twice, in two jobs
(the stretch fit, one job over all training scenes of a source, then the stretched
patches), and to write whole 8-bit copies of the scenes. A scene's own job now
reads it once (:func:`read_scene`): a thread hashes the file while GDAL decodes it
chunk by chunk on others, and each chunk is counted into the per-band histograms as
it arrives. The training windows are cut raw from the scene in memory
(:func:`mlwf_nb.data.patches.crop_windows`) and kept in a windows file
(:func:`write_windows`); the fit adds the scenes' small histogram files
(:func:`~mlwf_nb.data.stretch.fit_histograms`: the parameters of :func:`~mlwf_nb.data.stretch.fit_stretch`
over the same scenes), and the stretch goes onto the windows where a stretched
scene used to be cropped (:func:`~mlwf_nb.data.patches.patches_from_crops`): the
same patches, bit for bit (tests/data/test_scan.py).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlwf_nb._io import atomic_path
from mlwf_nb.errors import DatasetError

__all__ = ["SceneRead", "read_scene", "write_windows", "read_windows", "write_histograms", "read_histograms"]


@dataclass
class SceneRead:
    """What one pass over a scene gives."""

    image: np.ndarray
    """``(H, W, B)`` raw pixels (channels last; a view of the ``(B, H, W)`` read)."""
    histograms: np.ndarray | None
    """``(B, 65536)`` int64 per-band counts, nodata left out (None when not asked for)."""
    sha256: str | None
    """Hex digest of the file's bytes (None when not asked for)."""


def read_scene(path: str | os.PathLike[str], *, histograms: bool, nodata: Any = 0,
               value_range: tuple[float, float] | None = None, digest: bool = True) -> SceneRead:
    """Read a GeoTIFF scene once: pixels into memory, per-band histograms and the file's sha256 on the way.

    Args:
        path: The scene.
        histograms: Count the per-band histograms (training scenes) or not.
        nodata: What the stretch leaves out of the counts, as :func:`~mlwf_nb.data.stretch.band_histograms`
            takes it.
        value_range: Binning range of float data (needed for them: scenes must share one binning).
        digest: Hash the file's bytes (read by a thread beside GDAL's; the second read of a byte comes
            from the page cache).

    Raises:
        DatasetError: Float data without ``value_range``.
        RasterError: The file is not a readable GeoTIFF.
    """
    from mlwf_nb.data.chunks import chunk_slices, stream
    from mlwf_nb.data.integrity import sha256_file
    from mlwf_nb.data.raster import capped_block_cache, open_raster
    from mlwf_nb.data.stretch import band_histograms

    with ThreadPoolExecutor(1, thread_name_prefix="mlwf-sha256") as hasher, capped_block_cache():
        hashed = hasher.submit(sha256_file, path) if digest else None
        data = open_raster(path).data
        dtype = np.dtype(data.dtype)
        if histograms and value_range is None and not (dtype.kind in "ub" and dtype.itemsize <= 2):
            raise DatasetError(f"{str(path)!r} holds {dtype} pixels: their histograms need stretch.value_range "
                               "(lo, hi) so that every scene shares one binning")

        def count(block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return block, (band_histograms(block, nodata=nodata, value_range=value_range) if histograms else None)

        pixels = np.empty(data.shape, dtype=dtype)
        total: np.ndarray | None = None
        for index, (block, counts) in stream(data, chunk_slices(data, axes=(1, 2)), count):
            pixels[index] = block  # every chunk holds all bands: its counts add up band by band
            if counts is not None:
                total = counts if total is None else total + counts
        sha = hashed.result() if hashed is not None else None
    return SceneRead(np.moveaxis(pixels, 0, -1), total, sha)


def write_windows(path: str | os.PathLike[str], crops: dict[int, np.ndarray], wins: np.ndarray,
                  meta: dict[str, Any]) -> Path:
    """Write a scene's raw training windows: one ``.npz`` (uncompressed), complete or absent.

    Args:
        path: The file (``.npz``).
        crops: ``{size: (k, size, size, B)}`` from :func:`~mlwf_nb.data.patches.crop_windows`.
        wins: Rows ``(y0, x0, size, class index)``.
        meta: JSON-safe facts (scene, source, bands, requested, drawn, ...).
    """
    arrays = {"wins": np.asarray(wins, dtype=np.int64), "meta": np.array(json.dumps(meta)),
              **{f"size_{s}": np.ascontiguousarray(c) for s, c in crops.items()}}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
    return Path(path)


def read_windows(path: str | os.PathLike[str]) -> tuple[dict[int, np.ndarray], np.ndarray, dict[str, Any]]:
    """Inverse of :func:`write_windows`: ``(crops, wins, meta)``.

    Raises:
        DatasetError: The file is missing or not a windows file; the message names it.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            crops = {int(k[len("size_"):]): f[k] for k in f.files if k.startswith("size_")}
            return crops, f["wins"], dict(json.loads(str(f["meta"])))
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"windows file {str(path)!r} is missing or unreadable ({err}); run the scan step "
                           "of its scene again") from err


def write_histograms(path: str | os.PathLike[str], counts: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write one scene's ``(B, 65536)`` histograms (compressed: a few kB for 12-bit data)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, counts=np.asarray(counts, dtype=np.int64), meta=np.array(json.dumps(meta)))
    return Path(path)


def read_histograms(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Inverse of :func:`write_histograms`: ``(counts, meta)``.

    Raises:
        DatasetError: The file is missing or not a histogram file; the message names it.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            return f["counts"], dict(json.loads(str(f["meta"])))
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"histogram file {str(path)!r} is missing or unreadable ({err}); run the scan step "
                           "of its scene again") from err
