"""Box-preserving augmentation: a transformed box still encloses its transformed object."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwf_nb.data.boxes import BoxAugment, augment_boxes, box_iou, flip_horizontal, scale_shift, valid_rows
from mlwf_nb.errors import DatasetError

SIZE = 48


def _scene(boxes: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with one bright solid rectangle per box (channel k+1 marks object k), and its boxes."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    rows = np.full((4, 5), -1.0, np.float32)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        img[y0:y1, x0:x1, k] = 255
        rows[k] = (x0, y0, x1, y1, k)
    return img, rows


def _encloses(img: np.ndarray, rows: np.ndarray, k: int, slack: float = 1.0) -> bool:
    """Every pixel of object k lies inside its box row (pixel i spans [i, i+1)), up to ``slack`` px."""
    ys, xs = np.nonzero(img[..., k] > 127)
    if rows[k, 4] < 0:
        return True  # dropped: nothing to check
    x0, y0, x1, y1 = rows[k, :4]
    return bool(len(xs)) and xs.min() >= x0 - slack and xs.max() + 1 <= x1 + slack and \
        ys.min() >= y0 - slack and ys.max() + 1 <= y1 + slack


def test_a_flipped_box_still_encloses_the_flipped_object():
    img, rows = _scene([(3, 5, 15, 20), (30, 30, 47, 40)])
    flipped, fb = flip_horizontal(img[None], rows[None])
    assert np.array_equal(fb[0, :2], [[33, 5, 45, 20, 0], [1, 30, 18, 40, 1]])
    assert all(_encloses(flipped[0], fb[0], k, slack=0.0) for k in range(2))
    assert (fb[0, 2:] == -1).all()  # padding stays padding
    back, bb = flip_horizontal(flipped, fb)
    assert np.array_equal(back, img[None]) and np.array_equal(bb, rows[None])


@given(scale=st.floats(0.6, 1.4), dx=st.floats(-12, 12), dy=st.floats(-12, 12))
def test_zoomed_and_shifted_boxes_enclose_their_objects(scale, dx, dy):
    img, rows = _scene([(8, 10, 20, 26), (26, 4, 40, 18)])
    out, moved = scale_shift(img, rows, scale, dx, dy)
    for k in range(2):
        assert _encloses(out, moved, k), (k, moved[k])
        if moved[k, 4] >= 0:  # and tightly: the box is not much larger than the object
            ys, xs = np.nonzero(out[..., k] > 127)
            assert box_iou(moved[k:k + 1, :4], [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]])[0, 0] > 0.7


def test_boxes_pushed_out_of_the_frame_are_dropped_and_cut_ones_clipped():
    img, rows = _scene([(2, 2, 12, 12), (20, 20, 30, 30)])
    _, moved = scale_shift(img, rows, 1.0, -9.0, 0.0)  # 30 % of object 0 stays: dropped
    assert moved[0, 4] == -1 and (moved[0] == -1).all()
    assert np.allclose(moved[1], [11, 20, 21, 30, 1])
    _, cut = scale_shift(img, rows, 1.0, -4.0, 0.0)   # 80 % of object 0 stays: kept, clipped at 0
    assert np.allclose(cut[0], [0, 2, 8, 12, 0])


def test_batch_augmentation_is_reproducible_and_keeps_objects_boxed():
    imgs, rows = zip(*[_scene([(4 + i, 6, 18 + i, 22), (28, 24 - i, 44, 40 - i)]) for i in range(6)], strict=True)
    X, B = np.stack(imgs), np.stack(rows)
    aug = BoxAugment(flip=True, scale=0.3, shift_x=0.2, shift_y=0.2)
    out, moved = augment_boxes(X, B, np.random.default_rng([7, 1, 0]), aug)
    again, moved2 = augment_boxes(X, B, np.random.default_rng([7, 1, 0]), aug)
    assert np.array_equal(out, again) and np.array_equal(moved, moved2)
    assert not np.array_equal(out, X) and np.array_equal(X, np.stack(imgs))  # inputs untouched
    for i in range(len(X)):
        assert all(_encloses(out[i], moved[i], k) for k in range(2))
    assert valid_rows(moved).sum() >= 6


def test_bad_settings_are_refused():
    with pytest.raises(DatasetError, match="scale and shifts"):
        BoxAugment(scale=1.5)
