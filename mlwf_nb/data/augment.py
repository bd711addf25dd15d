"""Training-time augmentation: flips, rotation, zoom and shifts as one affine warp per image, on uint8.

The geometric augmentation of :class:`~mlwf_nb.spec.AugmentSpec` is what Keras's
``RandomFlip -> RandomRotation -> RandomZoom -> RandomTranslation`` layers do
(the same parameter distributions, rotation and zoom about the image centre,
reflect fill, bilinear interpolation), but the four transforms are composed
into one matrix per image and applied once, with OpenCV's ``warpAffine`` on
the uint8 patch in the loader thread (:func:`warp`: reflected into a canvas only as far
as needed, then warped inside it). That is one resampling instead of three
(a little sharper than the chained layers; border reflections are of the
patch itself, not of an intermediate image) at about 30-60x the layers' speed
on a CPU (docs/benchmarks.md, row "augment").

Conventions are Keras's: a matrix maps an *output* pixel ``(x, y, 1)`` to the
*input* coordinates it samples, pixel centres at integers. ``layer_matrices``
gives the four matrices the layers would use, so a test (or the
:func:`preview_keras` side-by-side) can run Keras's own ``affine_transform``
with them. Keras is imported only by the Keras reference functions, OpenCV at the first warp.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mlwf_nb.spec import AugmentSpec

if TYPE_CHECKING:
    import keras

__all__ = ["is_flip_only", "Draws", "draw", "layer_matrices", "compose", "footprint_pads", "warp", "augment_batch",
           "preview", "augment_layers", "build_augmenter", "preview_keras"]

_LAYERS = ("flip", "rotation", "zoom", "shift")


@functools.cache
def _cv2() -> ModuleType:
    """OpenCV, imported on first use (steps that only write shards do not pay for it)."""
    import cv2

    # The loader threads are the parallelism: OpenCV's own pool would compete with them and with the
    # model's kernels for the same cores (one 224 px warp is a fraction of a millisecond, too small to split).
    cv2.setNumThreads(1)
    return cv2


def is_flip_only(aug: AugmentSpec) -> bool:
    """True when ``aug`` only flips (then exact numpy flips do it; no interpolation at all)."""
    return aug.rotation == 0 and aug.zoom == 0 and aug.shift_height == 0 and aug.shift_width == 0


class Draws(NamedTuple):
    """One batch's random transforms, one entry per image (what Keras's layers draw for the same settings)."""

    flip_h: np.ndarray  # bool: mirror left-right
    flip_v: np.ndarray  # bool: mirror top-bottom
    angle: np.ndarray  # radians, counter-clockwise as Keras's RandomRotation
    zoom: np.ndarray  # scale of the sampling grid: above 1 zooms out
    shift_y: np.ndarray  # fraction of the height
    shift_x: np.ndarray  # fraction of the width


def draw(aug: AugmentSpec, n: int, rng: np.random.Generator) -> Draws:
    """Draw ``n`` random transforms for ``aug`` (no-ops where a setting is 0 / "none").

    Each axis flips with probability 1/2, independently (four outcomes; Keras 3's
    ``RandomFlip("horizontal_and_vertical")`` draws once for both axes, so it only
    ever rotates by 180 degrees or not at all); the angle is uniform in ``±rotation``
    of a full turn, the zoom uniform in ``1 ± zoom`` (both axes), the shifts uniform in
    ``±shift_height`` / ``±shift_width`` of the size.
    """
    none, zero = np.zeros(n, bool), np.zeros(n)
    h = rng.random(n) < 0.5 if aug.flip in ("horizontal", "horizontal_and_vertical") else none
    v = rng.random(n) < 0.5 if aug.flip in ("vertical", "horizontal_and_vertical") else none
    angle = rng.uniform(-aug.rotation, aug.rotation, n) * 2.0 * np.pi if aug.rotation > 0 else zero
    zoom = rng.uniform(1.0 - aug.zoom, 1.0 + aug.zoom, n) if aug.zoom > 0 else np.ones(n)
    shifts = aug.shift_height > 0 or aug.shift_width > 0
    dy = rng.uniform(-aug.shift_height, aug.shift_height, n) if shifts else zero
    dx = rng.uniform(-aug.shift_width, aug.shift_width, n) if shifts else zero
    return Draws(h, v, angle, zoom, dy, dx)


def layer_matrices(d: Draws, height: int, width: int) -> np.ndarray:
    """``(n, 4, 3, 3)``: the flip, rotation, zoom and shift matrices Keras's layers build for ``d``.

    Rotation and zoom are about the centre ``((width - 1) / 2, (height - 1) / 2)``, as
    in the layers; identity where a step does nothing.
    """
    n = len(d.angle)
    out = np.tile(np.eye(3), (n, 4, 1, 1))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    flip, rot, zoom, shift = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    flip[d.flip_h, 0, 0], flip[d.flip_h, 0, 2] = -1.0, width - 1.0
    flip[d.flip_v, 1, 1], flip[d.flip_v, 1, 2] = -1.0, height - 1.0
    c, s = np.cos(d.angle), np.sin(d.angle)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 0, 2] = c, -s, cx - cx * c + cy * s
    rot[:, 1, 0], rot[:, 1, 1], rot[:, 1, 2] = s, c, cy - cx * s - cy * c
    zoom[:, 0, 0], zoom[:, 0, 2] = d.zoom, cx * (1.0 - d.zoom)
    zoom[:, 1, 1], zoom[:, 1, 2] = d.zoom, cy * (1.0 - d.zoom)
    shift[:, 0, 2], shift[:, 1, 2] = -d.shift_x * width, -d.shift_y * height
    return out


def compose(layers: np.ndarray) -> np.ndarray:
    """One ``(n, 2, 3)`` affine per image from the steps of :func:`layer_matrices`.

    The layers run flip, rotation, zoom, shift in that order, each sampling the
    previous image at its matrix times the output pixel, so the output pixel ``p``
    samples the input at ``flip @ rotation @ zoom @ shift @ p``.
    """
    m = layers[:, 0] @ layers[:, 1] @ layers[:, 2] @ layers[:, 3]
    return np.ascontiguousarray(m[:, :2])


def footprint_pads(matrices: np.ndarray, height: int, width: int, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(before, after)``, each ``(n, 2)`` ints ``(x, y)``: the border each image needs for its warp.

    The output's corners mapped through ``matrices`` bound the source pixels a warp
    samples (an affine map sends the output rectangle to a parallelogram); ``margin``
    more pixels cover the bilinear neighbours and OpenCV's rounding. Zero where the
    footprint stays inside the image.
    """
    corners = np.array([[0.0, 0.0, 1.0], [width - 1.0, 0.0, 1.0], [0.0, height - 1.0, 1.0],
                        [width - 1.0, height - 1.0, 1.0]])
    source = np.einsum("kj,nij->nki", corners, np.asarray(matrices, np.float64))  # (n, 4 corners, xy)
    low = np.floor(source.min(axis=1)) - margin
    high = np.ceil(source.max(axis=1)) + margin
    before = np.maximum(0, -low).astype(np.int64)
    after = np.maximum(0, high - (width - 1, height - 1)).astype(np.int64)
    return before, after


def warp(images: np.ndarray | Sequence[np.ndarray], matrices: np.ndarray, out: np.ndarray | None = None, *,
         nearest: bool = False) -> np.ndarray:
    """Apply one affine per image: ``out[i](p) = images[i](matrices[i] @ p)``, reflect fill.

    Each image is first reflected into a scratch canvas only as far as its footprint
    needs (:func:`footprint_pads`, OpenCV ``copyMakeBorder``, BORDER_REFLECT = Keras's
    "reflect"), then warped with every sample inside that canvas: OpenCV's vectorised
    warp, about 1.8x cheaper than ``warpAffine`` with BORDER_REFLECT (docs/benchmarks.md,
    row "augment"). The result is the reflect-border warp up to OpenCV's float32
    coordinate rounding (at most 1 grey level on a few pixels in 10,000); images and
    masks go through the same canvas, so a mask moves exactly as its image.

    Args:
        images: ``(n, H, W)`` or ``(n, H, W, B)`` array (uint8 patches, or int32 masks
            with ``nearest``), or a sequence of ``n`` such images (e.g. rows of
            memory-mapped shards: each is read in place, never gathered first);
            any number of bands.
        matrices: ``(n, 2, 3)`` output-to-input maps (:func:`compose`).
        out: Where to write: ``(n, H, W[, B])`` of the images' dtype or float32 (each
            warped image is converted while it is in cache); not ``images`` itself.
        nearest: Nearest-neighbour sampling (for class masks) instead of bilinear.

    Returns:
        ``out`` (a new array of the images' dtype when None was given).
    """
    n = len(images)
    if n == 0:
        return np.array(images) if out is None else out
    first = np.asarray(images[0])
    if out is None:
        out = np.empty((n, *first.shape), first.dtype)
    cv2 = _cv2()
    height, width = first.shape[:2]
    flat = first.ndim == 3 and first.shape[2] == 1  # OpenCV hands one band back as (H, W): work on (H, W) views
    shape = first.shape[:2] if flat else first.shape
    before, after = footprint_pads(matrices, height, width)
    shifted = np.array(matrices, np.float64)
    shifted[:, :, 2] += before  # the same map, in the canvas's coordinates
    grow = (before + after).max(axis=0)
    canvas = np.empty((height + int(grow[1]), width + int(grow[0]), *shape[2:]), first.dtype)
    scratch = None if out.dtype == first.dtype else np.empty(shape, first.dtype)
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    sides = np.concatenate([before, after], axis=1).tolist()  # per image: left, top, right, bottom
    for i, (left, top, right, bottom) in enumerate(sides):
        padded = canvas[:height + top + bottom, :width + left + right]
        got = cv2.copyMakeBorder(np.asarray(images[i]).reshape(shape), top, bottom, left, right,
                                 cv2.BORDER_REFLECT, dst=padded)
        if got is not padded:  # OpenCV wrote elsewhere (never seen): use what it wrote
            padded = got
        dst = out[i].reshape(shape) if scratch is None else scratch
        got = cv2.warpAffine(padded, shifted[i], (width, height), dst=dst, flags=flags,
                             borderMode=cv2.BORDER_REPLICATE)  # never used: every sample is inside (a bit faster)
        if got is not dst:
            dst[...] = got.reshape(dst.shape)
        if scratch is not None:
            out[i] = scratch.reshape(out.shape[1:])
    return out


def augment_batch(x: np.ndarray | Sequence[np.ndarray], aug: AugmentSpec, rng: np.random.Generator,
                  masks: np.ndarray | Sequence[np.ndarray] | None = None, *,
                  dtype: type[np.generic] = np.uint8) -> tuple[np.ndarray, np.ndarray | None]:
    """Flips, rotation, zoom and shifts of a uint8 batch in one warp per image.

    Args:
        x: ``(n, H, W, B)`` uint8 patches, or a sequence of ``n`` ``(H, W, B)`` patches
            (rows of memory-mapped shards: read in place).
        aug: Augmentation settings (geometric; flip-only batches are cheaper with numpy flips).
        rng: Source of the draws: the same generator state gives the same batch.
        masks: Optional ``(n, H, W)`` class masks (or a sequence of them), moved with their
            images (nearest neighbour).
        dtype: Of the patches returned: uint8, or float32 (converted image by image, while in cache).

    Returns:
        ``(patches, masks)``: new arrays (``masks`` None when none were given).
    """
    n = len(x)
    shape = np.shape(x[0]) if n else np.shape(x)[1:]
    matrices = compose(layer_matrices(draw(aug, n, rng), shape[0], shape[1]))
    moved = warp(x, matrices, np.empty((n, *shape), dtype))
    return moved, (None if masks is None else warp(masks, matrices, nearest=True))


def preview(patch: np.ndarray, aug: AugmentSpec, n: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` augmented copies of one ``(H, W, B)`` uint8 patch, ``(n, H, W, B)`` uint8, as training makes them.

    Deterministic for a given ``seed``. Flip-only settings flip exactly (what the
    loader's numpy flips do); anything else goes through :func:`augment_batch`.
    """
    batch = np.repeat(np.asarray(patch, dtype=np.uint8)[None], n, axis=0)
    if aug.flip == "none" and is_flip_only(aug):
        return batch
    return augment_batch(batch, aug, np.random.default_rng([seed, 2]))[0]


# -- the Keras layers: the reference the warp reproduces (preview side by side, benchmarks, tests) ----


def augment_layers(aug: AugmentSpec, seed: int | None = None) -> list[Any]:
    """The Keras layers for ``aug`` (none for settings that are 0 / "none"): the reference implementation.

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
    """A ``keras.Sequential`` of :func:`augment_layers` (identity when there are none)."""
    import keras

    layers = augment_layers(aug, seed) or [keras.layers.Identity()]
    return keras.Sequential(layers, name="augment")


def preview_keras(patch: np.ndarray, aug: AugmentSpec, n: int = 8, seed: int = 0) -> np.ndarray:
    """The same draws as :func:`preview`, through Keras's ``affine_transform`` one layer at a time.

    What the chained Keras layers make of exactly these transforms (three bilinear
    resamplings, each reflecting the previous image at the border): put beside
    :func:`preview` to see that one warp gives the same picture.
    """
    from keras import ops

    batch = np.repeat(np.asarray(patch, dtype=np.uint8)[None], n, axis=0)
    if aug.flip == "none" and is_flip_only(aug):
        return batch
    layers = layer_matrices(draw(aug, n, np.random.default_rng([seed, 2])), batch.shape[1], batch.shape[2])
    out: Any = batch.astype(np.float32)
    for step in range(len(_LAYERS)):
        flat = layers[:, step].reshape(n, 9)[:, :8].astype(np.float32)  # Keras's 8-number form
        out = ops.image.affine_transform(out, flat, interpolation="bilinear", fill_mode="reflect")
    return np.clip(np.rint(np.asarray(out)), 0, 255).astype(np.uint8)
