"""Label windows for per-pixel models: the label under each training window, at the model's input size.

A patch classifier learns one class per window (:func:`mlwf_nb.data.patches.sample_patches`);
a per-pixel model (``unet``) learns the label mask under the window. The mask is resized to
the model input by nearest neighbour (labels are never blended), and unlabeled or nodata
pixels (dataset index 0) become ``ignore`` so the loss skips them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlwf_nb.errors import DatasetError

__all__ = ["label_masks"]


def _nearest(size: int, out: int) -> np.ndarray:
    """Source rows of a nearest-neighbour resize from ``size`` to ``out`` (pixel centres)."""
    return np.minimum(((np.arange(out) + 0.5) * (size / out)).astype(np.int64), size - 1)


def label_masks(label: np.ndarray, windows: Sequence[Sequence[int]], input_size: int, ignore: int) -> np.ndarray:
    """``(N, input_size, input_size)`` int32 model classes under ``windows`` of ``(y0, x0, size)``.

    Args:
        label: ``(H, W)`` dataset class indices (0 = unlabeled or nodata).
        windows: ``[[y0, x0, size], ...]`` (``sample_patches``' ``meta["windows"]``).
        input_size: The model's input side.
        ignore: The class the loss ignores (the number of model classes).

    Raises:
        DatasetError: A window leaves the label.
    """
    lab = np.asarray(label)
    out = np.empty((len(windows), input_size, input_size), dtype=np.int32)
    for i, (y0, x0, size) in enumerate(windows):
        if y0 < 0 or x0 < 0 or y0 + size > lab.shape[0] or x0 + size > lab.shape[1]:
            raise DatasetError(f"window {(y0, x0, size)} leaves the {lab.shape} label")
        idx = _nearest(int(size), input_size)
        crop = lab[y0:y0 + size, x0:x0 + size][np.ix_(idx, idx)].astype(np.int32)
        out[i] = np.where(crop > 0, crop - 1, ignore)
    return out
