"""Augmentation: one affine warp per uint8 patch that does what Keras's layers do, and the layers themselves."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.augment import (
    build_augmenter,
    compose,
    draw,
    is_flip_only,
    layer_matrices,
    preview,
    preview_keras,
    warp,
)
from mlwf_nb.spec import AugmentSpec

PAPER = AugmentSpec(rotation=0.25, flip="horizontal_and_vertical", zoom=0.1, shift_height=0.1, shift_width=0.1)


@pytest.fixture
def patch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)


@pytest.fixture
def smooth():
    """A smooth 4-band 48 x 40 image: interpolation of it is well defined, so implementations can be compared."""
    yy, xx = np.mgrid[0:48, 0:40]
    bands = [128 + 100 * np.sin(xx / 7.0), 128 + 100 * np.cos(yy / 5.0), 3.0 * xx + 2.0 * yy,
             128 + 60 * np.sin((xx + yy) / 9.0)]
    return np.stack(bands, -1).astype(np.uint8)


def names(model):
    return [type(layer).__name__ for layer in model.layers]


def test_layers_follow_spec():
    assert names(build_augmenter(AugmentSpec(flip="none"))) == ["Identity"]
    full = AugmentSpec(rotation=0.25, flip="horizontal", zoom=0.1, shift_height=0.1, shift_width=0.0)
    assert names(build_augmenter(full)) == ["RandomFlip", "RandomRotation", "RandomZoom",
                                            "RandomTranslation"]
    assert is_flip_only(AugmentSpec()) and not is_flip_only(full)


def test_identity_and_flip_only_values(patch):
    same = preview(patch, AugmentSpec(flip="none"), n=3)
    assert same.shape == (3, 16, 16, 4) and same.dtype == np.uint8 and (same == patch).all()
    flips = preview(patch, AugmentSpec(flip="horizontal_and_vertical"), n=16, seed=1)
    allowed = [patch, patch[::-1], patch[:, ::-1], patch[::-1, ::-1]]
    kinds = {next(k for k, a in enumerate(allowed) if (img == a).all()) for img in flips}  # exact, no blur
    assert kinds == {0, 1, 2, 3}  # each axis flips on its own draw


def test_preview_deterministic_by_seed(patch):
    aug = AugmentSpec(rotation=0.2, zoom=0.2, shift_height=0.1, shift_width=0.1)
    a = preview(patch, aug, n=4, seed=3)
    b = preview(patch, aug, n=4, seed=3)
    c = preview(patch, aug, n=4, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], patch)


def test_draws_stay_in_the_spec_ranges():
    d = draw(PAPER, 4000, np.random.default_rng(1))
    assert np.abs(d.angle).max() <= 0.25 * 2 * np.pi and np.abs(d.angle).max() > 0.24 * 2 * np.pi
    assert 0.9 <= d.zoom.min() < 0.91 and 1.09 < d.zoom.max() <= 1.1
    assert np.abs(d.shift_x).max() <= 0.1 and np.abs(d.shift_y).max() <= 0.1
    assert 0.45 < d.flip_h.mean() < 0.55 and 0.45 < d.flip_v.mean() < 0.55
    assert 0.2 < (d.flip_h & d.flip_v).mean() < 0.3  # independent axes
    none = draw(AugmentSpec(flip="none"), 5, np.random.default_rng(1))
    np.testing.assert_array_equal(compose(layer_matrices(none, 8, 8)), np.tile(np.eye(3)[:2], (5, 1, 1)))


@pytest.mark.parametrize("kind", ["rotation", "zoom", "shift"])
def test_each_step_is_its_keras_layer(smooth, kind):
    """The warp with our matrix for the draw Keras's own layer made gives that layer's output (±1 grey level)."""
    import keras

    x = smooth[None].astype(np.float32)
    h, w = smooth.shape[:2]
    if kind == "rotation":
        layer = keras.layers.RandomRotation(0.25, fill_mode="reflect")
    elif kind == "zoom":
        layer = keras.layers.RandomZoom((-0.3, 0.3), fill_mode="reflect")
    else:
        layer = keras.layers.RandomTranslation(0.2, 0.3, fill_mode="reflect")
    for seed in range(3):
        change = layer.get_random_transformation(x, training=True, seed=seed)
        expected = np.rint(np.asarray(layer.transform_images(x, change, training=True)))[0]
        d = draw(AugmentSpec(flip="none"), 1, np.random.default_rng(0))
        if kind == "rotation":
            d = d._replace(angle=np.deg2rad(np.asarray(change["angle"], np.float64)))
        elif kind == "zoom":
            d = d._replace(zoom=np.asarray(change["height_zoom"], np.float64)[:, 0])
        else:
            dx, dy = np.asarray(change["translations"], np.float64)[0]
            d = d._replace(shift_x=np.array([dx / w]), shift_y=np.array([dy / h]))
        got = warp(smooth[None], compose(layer_matrices(d, h, w)))[0]
        assert np.abs(got.astype(np.float32) - expected).max() <= 1, (kind, seed)


def test_one_warp_is_keras_affine_transform_of_the_composed_matrix(smooth):
    from keras import ops

    h, w = smooth.shape[:2]
    d = draw(PAPER, 6, np.random.default_rng(4))
    m = compose(layer_matrices(d, h, w))
    got = warp(np.repeat(smooth[None], 6, 0), m)
    flat = np.concatenate([m.reshape(6, 6), np.zeros((6, 2))], 1).astype(np.float32)
    ref = np.asarray(ops.image.affine_transform(np.repeat(smooth[None], 6, 0).astype(np.float32), flat,
                                                interpolation="bilinear", fill_mode="reflect"))
    assert np.abs(got.astype(np.float32) - np.rint(ref)).max() <= 1


def test_one_warp_looks_like_the_chained_layers(smooth):
    """Same draws: one resampling vs the layers' three differ only by interpolation inside the patch."""
    a = preview(smooth, PAPER, n=16, seed=1)
    b = preview_keras(smooth, PAPER, n=16, seed=1)
    inner = np.abs(a.astype(int) - b)[:, 12:-12, 12:-12]
    assert inner.mean() < 1.0 and np.median(inner) == 0
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("bands", [1, 3, 4, 6])
def test_masks_move_with_their_images(bands):
    """A mask warped with the image's matrices (nearest) still labels the image's pixels."""
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 5, (8, 6, 6))
    masks = np.kron(blocks, np.ones((1, 8, 8), int)).astype(np.int32)  # 8 x 8 px blocks of one class
    images = np.repeat((masks * 50).astype(np.uint8)[..., None], bands, -1)
    d = draw(PAPER, 8, rng)
    m = compose(layer_matrices(d, 48, 48))
    moved_masks = warp(masks, m, nearest=True)
    assert moved_masks.dtype == np.int32 and not np.array_equal(moved_masks, masks)
    same_grid = warp(images, m, nearest=True)  # the same geometry sampled the same way
    assert same_grid.shape == images.shape
    # equal but at exact half-pixel ties, which OpenCV's int32 and uint8 kernels round apart (1 px in 18,432 here)
    assert (same_grid == (moved_masks * 50)[..., None]).mean() > 0.999
    moved = warp(images, m)[..., 0]  # bilinear: only the pixels next to a block edge blend
    assert (moved == moved_masks * 50).mean() > 0.75 > 0.5 > (moved == masks * 50).mean()


@pytest.mark.parametrize(("size", "bands"), [((224, 224), 4), ((12, 10), 1), ((3, 5), 3)])
def test_warp_is_opencvs_reflect_warp(tmp_path, size, bands):
    """The canvas warp (reflect only as far as the footprint needs, then a warp inside it) is the reflect-border
    warp: masks exactly, images within 1 grey level (OpenCV computes sample coordinates in float32, and the
    canvas shifts them by the pad: a few pixels in 10,000 round the other way, measured 0.06 % at 224 px).

    From rows of a memory-mapped array into float32, too (what ShardBatches does), and with pads larger than a
    tiny image (strong zoom and shifts reflect more than once).
    """
    import cv2

    h, w = size
    rng = np.random.default_rng(5)
    strong = AugmentSpec(rotation=0.5, flip="horizontal_and_vertical", zoom=0.9, shift_height=0.9, shift_width=0.9)
    aug = PAPER if h > 100 else strong
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (16, h, w, bands), dtype=np.uint8))
    images = np.load(tmp_path / "x.npy", mmap_mode="r")
    masks = rng.integers(0, 7, (16, h, w)).astype(np.int32)
    m = compose(layer_matrices(draw(aug, 16, rng), h, w))
    flags = cv2.WARP_INVERSE_MAP
    ref = np.stack([cv2.warpAffine(np.asarray(images[i]), m[i], (w, h), flags=flags | cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT).reshape(h, w, bands) for i in range(16)])
    ref_masks = np.stack([cv2.warpAffine(masks[i], m[i], (w, h), flags=flags | cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_REFLECT) for i in range(16)])
    got = warp(images, m)
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - ref).max() <= 1
    assert (got != ref).mean() < 0.001
    as_float = warp([images[i] for i in range(16)], m, np.empty((16, h, w, bands), np.float32))
    np.testing.assert_array_equal(as_float, got.astype(np.float32))
    np.testing.assert_array_equal(warp(masks, m, nearest=True), ref_masks)
