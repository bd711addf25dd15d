from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.augment import build_augmenter, is_flip_only, preview
from mlwf_nb.spec import AugmentSpec


@pytest.fixture
def patch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)


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
    for img in flips:
        assert any((img == a).all() for a in allowed)
    assert len({img.tobytes() for img in flips}) > 1  # really random


def test_preview_deterministic_by_seed(patch):
    aug = AugmentSpec(rotation=0.2, zoom=0.2, shift_height=0.1, shift_width=0.1)
    a = preview(patch, aug, n=4, seed=3)
    b = preview(patch, aug, n=4, seed=3)
    c = preview(patch, aug, n=4, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], patch)

