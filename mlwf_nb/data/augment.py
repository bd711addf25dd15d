"""Training-time augmentation: Keras preprocessing layers from an AugmentSpec.

Keras is imported inside the functions, so ``import mlwf_nb.data`` stays light.
The layers work on any float range; :func:`preview` feeds uint8 patches as
float32 and rounds back. Rotation, zoom and shift fill uncovered pixels by
reflection, so patches keep no black corners.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlwf_nb.spec import AugmentSpec

if TYPE_CHECKING:
    import keras

__all__ = ["augment_layers", "build_augmenter", "preview", "is_flip_only"]


def augment_layers(aug: AugmentSpec, seed: int | None = None) -> list[Any]:
    """The Keras layers for ``aug`` (none for settings that are 0 / "none").

    Args:
        aug: Augmentation settings.
        seed: Base seed (default ``aug.seed``); layer ``i`` gets ``seed + i``.
    """
    import keras

    base = aug.seed if seed is None else seed
    layers: list[Any] = []
    if aug.flip != "none":
        layers.append(keras.layers.RandomFlip(mode=aug.flip, seed=base))
    if aug.rotation > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation, fill_mode="reflect", seed=base + 1))
    if aug.zoom > 0:
        layers.append(keras.layers.RandomZoom(height_factor=(-aug.zoom, aug.zoom), fill_mode="reflect",
                                              seed=base + 2))
    if aug.shift_height > 0 or aug.shift_width > 0:
        layers.append(keras.layers.RandomTranslation(aug.shift_height, aug.shift_width,
                                                     fill_mode="reflect", seed=base + 3))
    return layers


def build_augmenter(aug: AugmentSpec, seed: int | None = None) -> keras.Sequential:
    """A ``keras.Sequential`` of the augmentation layers (identity when there are none).

    Args:
        aug: Augmentation settings.
        seed: Base seed (default ``aug.seed``); the same seed gives the same
            sequence of random transforms.
    """
    import keras

    layers = augment_layers(aug, seed) or [keras.layers.Identity()]
    return keras.Sequential(layers, name="augment")


def is_flip_only(aug: AugmentSpec) -> bool:
    """True when ``aug`` only flips (then cheap numpy flips are exactly equivalent)."""
    return aug.rotation == 0 and aug.zoom == 0 and aug.shift_height == 0 and aug.shift_width == 0


def preview(patch: np.ndarray, aug: AugmentSpec, n: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` augmented copies of one ``(H, W, B)`` uint8 patch, ``(n, H, W, B)`` uint8.

    Deterministic for a given ``seed`` (a fresh augmenter is built each call).
    """
    model = build_augmenter(aug, seed=seed)
    batch = np.repeat(np.asarray(patch, dtype=np.float32)[None], n, axis=0)
    out = np.asarray(model(batch, training=True))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
