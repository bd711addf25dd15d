from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlwf_nb.data.patches import (
    class_map,
    extract_windows,
    resize,
    resize_batch,
    sample_patches,
    sliding_windows,
    stitch_multiscale,
    stitch_probabilities,
)
from mlwf_nb.errors import DatasetError


def halves_scene(h=64, w=64):
    """Left half class 1 (image value 10), right half class 3 (image value 200); top rows class 5."""
    label = np.ones((h, w), np.uint8)
    label[:, w // 2:] = 3
    label[:8] = 5
    image = np.zeros((h, w, 4), np.uint8)
    image[label == 1] = 10
    image[label == 3] = 200
    image[label == 5] = 90
    return image, label


def test_resize_area_and_bilinear():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(resize_batch(x, 2)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    up = resize(np.array([[[0], [100]]], np.uint8), 4)  # 1x2 -> 4x4, half-pixel centres
    assert up.dtype == np.uint8 and up[0, :, 0].tolist() == [0, 25, 75, 100]
    const = np.full((3, 7, 5, 2), 77, np.uint8)
    assert (resize_batch(const, 11) == 77).all() and resize_batch(const, 11).shape == (3, 11, 11, 2)



@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_bilinear_resize_is_the_float32_formula_bit_for_bit(dtype):
    """The in-place resize gives, bit for bit, the float32 formula every patch shard was made with.

    ``rows = x[y0] (1 - wy) + x[y1] wy``, then ``rows[:, x0] (1 - wx) + rows[:, x1] wx``, rounded:
    one float32 operation each, in that order (a fused multiply-add or another order would round
    some values the other way and change the shards).
    """
    from mlwf_nb.data.patches import _axis_weights

    rng = np.random.default_rng(7)
    for (h, w), size, bands in [((56, 56), 224, 4), ((112, 112), 224, 4), ((57, 30), 41, 3), ((300, 5), 224, 1),
                                ((1, 2), 6, 2)]:
        x = (rng.random((5, h, w, bands)) * (255 if dtype == np.uint8 else 4000)).astype(dtype)
        y0, y1, wy = _axis_weights(h, size)
        x0, x1, wx = _axis_weights(w, size)
        wy32, wx32 = wy.astype(np.float32), wx.astype(np.float32)
        f = x.astype(np.float32)
        rows = f[:, y0] * (1 - wy32)[None, :, None, None] + f[:, y1] * wy32[None, :, None, None]
        ref = rows[:, :, x0] * (1 - wx32)[None, None, :, None] + rows[:, :, x1] * wx32[None, None, :, None]
        if dtype != np.float32:
            ref = np.clip(np.rint(ref), 0, np.iinfo(dtype).max)
        got = resize_batch(x, size)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, ref.astype(dtype))

def test_sample_patches_labels_are_majority_and_pure():
    image, label = halves_scene()
    X, y, meta = sample_patches(image, label, sizes=[8, 16], n=60, input_size=12, min_purity=1.0,
                                balance=False, rng=np.random.default_rng(0), num_classes=5)
    assert X.shape == (60, 12, 12, 4) and X.dtype == np.uint8 and y.dtype == np.int32
    assert set(np.unique(y)) <= {0, 2, 4}  # class index k -> k - 1
    value = {0: 10, 2: 200, 4: 90}
    for xi, yi, (y0, x0, s) in zip(X, y, meta["windows"], strict=True):
        assert (xi == value[int(yi)]).all()  # pure windows, correctly labelled
        assert (label[y0:y0 + s, x0:x0 + s] == yi + 1).all() and s in (8, 16)
    assert sum(meta["class_counts"].values()) == 60 and meta["requested"] == 60


def test_sampling_is_deterministic_by_rng():
    image, label = halves_scene()
    a = sample_patches(image, label, [16], 20, 8, 0.6, True, np.random.default_rng(5), 5)
    b = sample_patches(image, label, [16], 20, 8, 0.6, True, np.random.default_rng(5), 5)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]


def test_balance_equalises_classes():
    image, label = halves_scene()
    kw = dict(sizes=[8], n=60, input_size=8, min_purity=0.9, num_classes=5)
    _, y_bal, _ = sample_patches(image, label, balance=True, rng=np.random.default_rng(1), **kw)
    _, y_raw, _ = sample_patches(image, label, balance=False, rng=np.random.default_rng(1), **kw)
    assert np.bincount(y_bal, minlength=5)[[0, 2, 4]].tolist() == [20, 20, 20]
    assert np.bincount(y_raw, minlength=5)[4] < 20  # class 5 covers only the top 8 rows


def test_impure_or_unlabeled_scene_returns_fewer():
    label = np.zeros((32, 32), np.uint8)
    image = np.zeros((32, 32, 3), np.uint8)
    X, y, meta = sample_patches(image, label, [8], 10, 8, 0.5, True, np.random.default_rng(0), 5)
    assert X.shape == (0, 8, 8, 3) and y.shape == (0,) and meta["drawn"] == 500
    with pytest.raises(DatasetError, match="same size"):
        sample_patches(image, label[:5], [8], 10, 8, 0.5, True, np.random.default_rng(0), 5)


def test_scene_smaller_than_sizes_uses_short_side():
    image, label = halves_scene(6, 10)
    label[:] = 2
    X, _, meta = sample_patches(image, label, [56], 3, 16, 0.5, False, np.random.default_rng(0), 5)
    assert X.shape == (3, 16, 16, 4) and {w[2] for w in meta["windows"]} == {6}


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 90), w=st.integers(1, 90), size=st.integers(1, 40), frac=st.floats(0.05, 1.0))
def test_sliding_windows_cover_every_pixel(h, w, size, frac):
    stride = max(1, int(size * frac))
    wins = sliding_windows(h, w, size, stride)
    cover = np.zeros((h, w), np.int32)
    for y, x in wins:
        assert y >= 0 and x >= 0 and (y + size <= h or y == 0) and (x + size <= w or x == 0)
        cover[y:y + size, x:x + size] += 1
    assert (cover > 0).all()
    assert len({tuple(v) for v in wins}) == len(wins)


def test_sliding_windows_exact_grid():
    wins = sliding_windows(10, 7, 4, 3)
    assert sorted({int(y) for y, _ in wins}) == [0, 3, 6]
    assert sorted({int(x) for _, x in wins}) == [0, 3]
    with pytest.raises(DatasetError):
        sliding_windows(10, 10, 0, 1)


def test_extract_windows_pads_small_scene():
    img = np.arange(5 * 3 * 1, dtype=np.uint8).reshape(5, 3, 1) + 1
    wins = sliding_windows(5, 3, 8, 4)
    out = extract_windows(img, wins, 8, 8)
    assert out.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(out[0, :5, :3, 0], img[..., 0])
    assert (out[0, 5:] == 0).all() and (out[0, :, 3:] == 0).all()


def test_stitch_average_and_class_map():
    wins = np.array([[0, 0], [0, 2]])
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = stitch_probabilities(3, 5, wins, 3, probs)
    assert out.shape == (3, 5, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], [1, 1, 0.5, 0, 0])
    assert class_map(out)[0].tolist() == [1, 1, 1, 2, 2]  # tie -> first class
    multi = stitch_multiscale(3, 5, [(wins, 3, probs), (np.array([[0, 0]]), 5, np.array([[0.0, 1.0]]))])
    np.testing.assert_allclose(multi[0, :, 1], [0.5, 0.5, 0.75, 1.0, 1.0])
    assert class_map(multi).dtype == np.uint8


def test_windows_roundtrip_recovers_label():
    """Windows -> one-hot 'predictions' of the true majority -> stitched map equals the label."""
    _, label = halves_scene(40, 40)
    wins = sliding_windows(40, 40, 4, 4)
    probs = np.eye(5)[[label[y, x] - 1 for y, x in wins]]
    np.testing.assert_array_equal(class_map(stitch_probabilities(40, 40, wins, 4, probs)), label)


def test_windows_then_crops_then_patches_is_sample_patches():
    """The pieces sample_patches is made of give its patches, also when a per-pixel map goes before the resize."""
    from mlwf_nb.data.patches import crop_windows, patches_from_crops, sample_patches, sample_windows

    rng = np.random.default_rng(1)
    raw = rng.integers(0, 4000, (90, 80, 3), dtype=np.uint16)
    lab = rng.integers(0, 4, (90, 80)).astype(np.uint8)
    lab[:45] = 2

    def to_u8(a):  # any per-pixel map, e.g. a stretch
        return (a // 16).astype(np.uint8)

    X, y, meta = sample_patches(to_u8(raw), lab, [12, 24, 40], 30, 16, 0.3, True, np.random.default_rng(5), 4)
    wins, drawn = sample_windows(lab, [12, 24, 40], 30, 0.3, True, np.random.default_rng(5), 4)
    crops = crop_windows(raw, wins)
    assert sorted(crops) == sorted({int(s) for s in wins[:, 2]}) and all(c.dtype == np.uint16 for c in crops.values())
    np.testing.assert_array_equal(patches_from_crops(crops, wins, 16, 3, to_u8), X)
    assert wins[:, :3].tolist() == meta["windows"] and drawn == meta["drawn"] and (wins[:, 3] - 1 == y).all()


@pytest.mark.parametrize("sizes", [[8, 16, 32], [300], [5, 17]])  # 300 px: the 32-bit tables
def test_window_counts_from_tables_are_the_pixel_counts(sizes):
    from mlwf_nb.data.patches import _class_tables, _window_counts

    rng = np.random.default_rng(4)
    label = rng.integers(0, 7, (320, 330)).astype(np.uint8)  # values above num_classes are ignored
    s = rng.choice(sizes, 200)
    ys = (rng.random(200) * (320 - s + 1)).astype(np.int64)
    xs = (rng.random(200) * (330 - s + 1)).astype(np.int64)
    got = _window_counts(_class_tables(label, 5, max(sizes)), ys, xs, s)
    want = [np.bincount(label[y:y + k, x:x + k].ravel(), minlength=7)[1:6] for y, x, k in zip(ys, xs, s, strict=True)]
    np.testing.assert_array_equal(got, np.array(want))


@pytest.mark.parametrize("after", [0, 10**9])  # summed-area tables from the first draw, or never
def test_sampling_is_the_same_whichever_way_windows_are_counted(monkeypatch, after):
    from mlwf_nb.data import patches

    rng = np.random.default_rng(6)
    label = np.kron(rng.integers(0, 6, (9, 10)), np.ones((20, 20), int)).astype(np.uint8)
    ref = patches.sample_windows(label, [16, 32, 64], 40, 0.6, True, np.random.default_rng(2), 5)
    monkeypatch.setattr(patches, "TABLES_AFTER", after)
    got = patches.sample_windows(label, [16, 32, 64], 40, 0.6, True, np.random.default_rng(2), 5)
    assert got[1] == ref[1] and np.array_equal(got[0], ref[0]) and len(got[0]) == 40
