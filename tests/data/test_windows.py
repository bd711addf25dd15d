"""label_masks: the label under training windows for per-pixel models."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.windows import label_masks
from mlwf_nb.errors import DatasetError


def test_masks_are_nearest_resized_and_unlabeled_is_ignored():
    label = np.zeros((8, 8), np.uint8)
    label[:, :4], label[:, 4:] = 1, 3
    label[0, 0] = 0
    same = label_masks(label, [[0, 0, 8]], 8, ignore=5)
    assert same.dtype == np.int32 and same.shape == (1, 8, 8)
    assert same[0, 0, 0] == 5 and (same[0, 1:, :4] == 0).all() and (same[0, :, 4:] == 2).all()
    half = label_masks(label, [[0, 0, 8], [2, 2, 4]], 4, ignore=5)
    np.testing.assert_array_equal(half[0], [[0, 0, 2, 2]] * 4)  # nearest: never a blend of two classes
    np.testing.assert_array_equal(half[1], [[0, 0, 2, 2]] * 4)
    up = label_masks(label, [[2, 2, 4]], 8, ignore=5)
    np.testing.assert_array_equal(up[0], [[0] * 4 + [2] * 4] * 8)
    with pytest.raises(DatasetError, match="leaves"):
        label_masks(label, [[6, 6, 4]], 4, ignore=5)
