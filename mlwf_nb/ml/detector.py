"""A small single-stage object detector (CenterNet style: objects as points) in Keras 3.

The network maps an ``(H, W, B)`` image to an ``(H/4, W/4, C + 4)`` grid: per cell,
``C`` class logits of a heat map that peaks at object centres, and four box values
(sub-cell centre offset x, y and ``log`` width, height in cells). Training targets
are Gaussian bumps at each box centre (one class channel per box) plus the box
values at the centre cell; the loss is the penalty-reduced focal loss of
Zhou et al. (2019, "Objects as Points") plus an L1 loss on the box values at the
centres. Decoding keeps the cells whose best class score is a 3x3 local maximum,
so there is no non-maximum suppression step.

Why not a library detector: keras-hub's detectors (RetinaNet, D-FINE) pull in full
TensorFlow, tensorflow-text, hub clients and tokenizers beside this project's
tensorflow-cpu, and their ResNet-class backbones do not train from scratch on two
CPU cores in minutes. This one (0.5 M parameters at width 12) trains through the one
training path (:func:`mlwf_nb.ml.train.fit`) and uses only ``keras`` / ``keras.ops``
(TensorFlow and JAX backends alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from mlwf_nb.data.boxes import BoxAugment, augment_boxes, valid_rows
from mlwf_nb.errors import SpecError
from mlwf_nb.ml.models import _conv_bn_relu, _scaled_input

__all__ = ["STRIDE", "build_detector", "encode_targets", "detection_loss", "decode", "DetectionSequence"]

STRIDE = 4
_PRIOR = -math.log((1 - 0.1) / 0.1)  # heat-map logits start at p = 0.1 (focal-loss prior)


def _down(x: Any, filters: int, name: str) -> Any:
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_detector(input_shape: tuple[int, ...], num_classes: int, *, width: int = 16, dropout: float = 0.0,
                   **_: Any) -> keras.Model:
    """The detector: a stride-16 encoder, a decoder back to stride 4 with skips, two heads.

    Args:
        input_shape: ``(height, width, bands)``, height and width divisible by 16.
        num_classes: Object classes (a heat-map channel each).
        width: Filters of the first stage; stages double it up to 8x.
        dropout: Spatial dropout before the heads.
        **_: Ignored options.

    Returns:
        The model; output ``(H/4, W/4, num_classes + 4)`` float32 (logits, then box values).

    Raises:
        SpecError: The input size is not divisible by 16.
    """
    if input_shape[0] % 16 or input_shape[1] % 16:
        raise SpecError(f"model 'centernet' needs height and width divisible by 16, got {input_shape}; "
                        "set dataset.height/width to a multiple of 16")
    w = int(width)
    inputs, x = _scaled_input(input_shape)
    x = _conv_bn_relu(x, w, "stem")
    x = _conv_bn_relu(_down(x, 2 * w, "s2"), 2 * w, "s2b")
    s4 = _conv_bn_relu(_down(x, 4 * w, "s4"), 4 * w, "s4b")
    s8 = _conv_bn_relu(_down(s4, 8 * w, "s8"), 8 * w, "s8b")
    x = _conv_bn_relu(_down(s8, 8 * w, "s16"), 8 * w, "s16b")
    x = layers.UpSampling2D(2, name="up8")(x)
    x = _conv_bn_relu(layers.Concatenate(name="cat8")([x, s8]), 4 * w, "dec8")
    x = layers.UpSampling2D(2, name="up4")(x)
    x = _conv_bn_relu(layers.Concatenate(name="cat4")([x, s4]), 4 * w, "dec4")
    if dropout > 0:
        x = layers.SpatialDropout2D(float(dropout), name="dropout")(x)
    heat = layers.Conv2D(4 * w, 3, padding="same", activation="relu", name="heat_conv")(x)
    heat = layers.Conv2D(num_classes, 1, name="heat", bias_initializer=keras.initializers.Constant(_PRIOR))(heat)
    box = layers.Conv2D(4 * w, 3, padding="same", activation="relu", name="box_conv")(x)
    box = layers.Conv2D(4, 1, name="box")(box)
    out = layers.Concatenate(name="grid", dtype="float32")([heat, box])
    return keras.Model(inputs, out, name="centernet")


def encode_targets(boxes: np.ndarray, grid: tuple[int, int], num_classes: int,
                   stride: int = STRIDE) -> np.ndarray:
    """Training targets of ``(N, K, 5)`` pixel boxes on an ``(h, w)`` output grid.

    Returns:
        ``(N, h, w, C + 5)`` float32: C heat maps (1 at each centre cell, a Gaussian of
        sigma = box size / 6 around it), offset x, y, log width, log height at the centre
        cells, and a 0/1 centre mask.
    """
    gh, gw = grid
    out = np.zeros((len(boxes), gh, gw, num_classes + 5), np.float32)
    ys, xs = np.arange(gh, dtype=np.float32)[:, None], np.arange(gw, dtype=np.float32)[None, :]
    for n, k in zip(*np.nonzero(valid_rows(boxes)), strict=True):
        x0, y0, x1, y1, cls = boxes[n, k]
        cx, cy = (x0 + x1) / (2 * stride), (y0 + y1) / (2 * stride)
        bw, bh = max(x1 - x0, 1.0) / stride, max(y1 - y0, 1.0) / stride
        ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
        sx, sy = max(bw / 6, 0.5), max(bh / 6, 0.5)
        bump = np.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
        c = int(cls)
        np.maximum(out[n, :, :, c], bump, out=out[n, :, :, c])
        out[n, iy, ix, c] = 1.0
        out[n, iy, ix, num_classes:] = (cx - ix, cy - iy, math.log(bw), math.log(bh), 1.0)
    return out


def detection_loss(num_classes: int, box_weight: float = 1.0) -> Callable[[Any, Any], Any]:
    """The loss of :func:`build_detector`'s grid against :func:`encode_targets`' targets."""
    c = int(num_classes)

    def centernet_loss(y_true: Any, y_pred: Any) -> Any:
        heat_t, box_t, centre = y_true[..., :c], y_true[..., c:c + 4], y_true[..., c + 4:c + 5]
        p = ops.clip(ops.sigmoid(y_pred[..., :c]), 1e-4, 1.0 - 1e-4)
        pos = ops.cast(heat_t >= 1.0 - 1e-6, "float32")
        pos_loss = -ops.log(p) * (1.0 - p) ** 2 * pos
        neg_loss = -ops.log(1.0 - p) * p**2 * (1.0 - heat_t) ** 4 * (1.0 - pos)
        n = ops.maximum(ops.sum(pos), 1.0)
        l1 = ops.sum(ops.abs(y_pred[..., c:c + 4] - box_t) * centre)
        return (ops.sum(pos_loss) + ops.sum(neg_loss) + box_weight * l1) / n

    return centernet_loss


def decode(grid: np.ndarray, stride: int = STRIDE, score_threshold: float = 0.05,
           max_detections: int = 50, image_size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Boxes from the network's output grid, per image.

    Returns:
        One ``(M, 6)`` float32 array per image: ``[x0, y0, x1, y1, score, class]`` in pixels, by score.
    """
    grid = np.asarray(grid, np.float32)
    n, gh, gw, depth = grid.shape
    c = depth - 4
    heat = 1.0 / (1.0 + np.exp(-grid[..., :c]))
    score, cls = heat.max(axis=-1), heat.argmax(axis=-1)
    padded = np.pad(score, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    local = np.max([padded[:, dy:dy + gh, dx:dx + gw] for dy in range(3) for dx in range(3)], axis=0)
    height, width = image_size or (gh * stride, gw * stride)
    out = []
    for i in range(n):
        iy, ix = np.nonzero((score[i] >= local[i]) & (score[i] >= score_threshold))
        order = np.argsort(-score[i, iy, ix])[:max_detections]
        iy, ix = iy[order], ix[order]
        ox, oy, lw, lh = np.moveaxis(grid[i, iy, ix, c:], -1, 0)
        cx, cy = (ix + ox) * stride, (iy + oy) * stride
        bw, bh = np.exp(np.clip(lw, -4, 6)) * stride, np.exp(np.clip(lh, -4, 6)) * stride
        boxes = np.stack([np.clip(cx - bw / 2, 0, width), np.clip(cy - bh / 2, 0, height),
                          np.clip(cx + bw / 2, 0, width), np.clip(cy + bh / 2, 0, height),
                          score[i, iy, ix], cls[i, iy, ix]], axis=-1)
        out.append(boxes.astype(np.float32).reshape(-1, 6))
    return out


class DetectionSequence(keras.utils.PyDataset):
    """Batches of ``(images float32 0..255, targets)`` for the detector, boxes augmented with the pixels.

    Like :class:`mlwf_nb.data.shards.ShardSequence`: the order of epoch ``e`` is a
    permutation drawn from ``(seed, e)`` and batch ``i``'s augmentation from
    ``(seed, e, i)``, so a resumed run (``set_epoch``) sees what an uninterrupted one saw.
    """

    def __init__(self, images: np.ndarray, boxes: np.ndarray, batch_size: int, num_classes: int, *,
                 shuffle: bool = True, seed: int = 0, augment: BoxAugment | None = None, workers: int = 1) -> None:
        super().__init__(workers=workers)
        if len(images) != len(boxes) or len(images) == 0:
            raise SpecError(f"detection data: {len(images)} images and {len(boxes)} box rows; need the same, >= 1")
        self.images, self.boxes = images, boxes
        self.batch_size, self.num_classes = int(batch_size), int(num_classes)
        self.shuffle, self.seed, self.augment = shuffle, int(seed), augment
        self.grid = (images.shape[1] // STRIDE, images.shape[2] // STRIDE)
        self.set_epoch(0)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch``'s order (training resumed from a checkpoint)."""
        self.epoch = int(epoch)
        n = len(self.images)
        self._order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order."""
        self.set_epoch(self.epoch + 1)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        x, b = np.asarray(self.images[idx]), np.asarray(self.boxes[idx])
        if self.augment is not None:
            x, b = augment_boxes(x, b, np.random.default_rng([self.seed, self.epoch, index]), self.augment)
        return x.astype(np.float32), encode_targets(b, self.grid, self.num_classes)
