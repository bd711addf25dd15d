"""Model registry: builders by name, papermill-engines style.

A builder is a function ``builder(input_shape, num_classes, **kwargs) -> keras.Model``
registered with :func:`register_model`. Every model takes raw uint8-range pixel
values (0..255) and scales them to float in [0, 1] with its first layer, so a
caller feeds patches exactly as they are stored. Builders ignore keyword
arguments they do not know (a search space may carry ``width`` for every model).

Keras is imported inside the builders, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mlwf_nb.errors import SpecError
from mlwf_nb.registry import Registry

if TYPE_CHECKING:
    import keras

__all__ = ["MODELS", "register_model", "build_model", "available_models", "is_per_pixel", "ModelBuilder"]

ModelBuilder = Callable[..., "keras.Model"]


def _check(name: str, obj: Any) -> ModelBuilder:
    if not callable(obj):
        raise SpecError(f"model {name!r}: {obj!r} is not a builder (a function (input_shape, num_classes, **kw))")
    return obj  # type: ignore[no-any-return]


MODELS: Registry[ModelBuilder] = Registry(
    "model", "mlwf_nb.models", error=SpecError, check=_check,
    hint="set model.name to one of them, or register yours with mlwf_nb.ml.models.register_model or the "
         "mlwf_nb.models entry-point group")


def register_model(name: str, *, per_pixel: bool = False) -> Callable[[ModelBuilder], ModelBuilder]:
    """Return a decorator that registers a model builder under ``name``.

    Args:
        name: Registry key, e.g. ``"small_cnn"``. Registering a name again
            replaces the earlier builder (a researcher may override one).
        per_pixel: The model outputs a class per pixel ``(H, W, C)`` (a segmentation model such
            as ``unet``), not one per patch: land cover then trains it on label masks.

    Returns:
        The decorator; it returns the builder unchanged.
    """

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if per_pixel:
            builder.per_pixel = True  # type: ignore[attr-defined]
        MODELS.register(name, builder)
        return builder

    return decorator


def is_per_pixel(name: str) -> bool:
    """Whether the registered model ``name`` predicts a class per pixel.

    A builder says so with ``register_model(name, per_pixel=True)`` or, registered by entry point,
    with the attribute ``per_pixel = True`` on the function.
    """
    return bool(getattr(MODELS.get(name), "per_pixel", False))


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return MODELS.names()


def build_model(name: str, input_shape: Sequence[int], num_classes: int, **kwargs: Any) -> keras.Model:
    """Build the registered model ``name``.

    Args:
        name: A key of the registry (see :func:`available_models`).
        input_shape: ``(height, width, bands)`` of one input patch.
        num_classes: Number of output classes.
        **kwargs: Builder options (``width``, ``dropout``, ``depth``, ...);
            options a builder does not use are ignored.

    Returns:
        An uncompiled ``keras.Model`` ending in a softmax.

    Raises:
        SpecError: ``name`` is not registered, or the shape/classes are invalid.
    """
    builder = MODELS.get(name)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise SpecError(f"model {name!r}: input_shape must be (height, width, bands), "
                        f"got {tuple(input_shape)}")
    if int(num_classes) < 2:
        raise SpecError(f"model {name!r}: num_classes must be >= 2, got {num_classes}")
    return builder(shape, int(num_classes), **kwargs)


def _scaled_input(input_shape: tuple[int, ...]) -> tuple[Any, Any]:
    import keras

    inputs = keras.Input(shape=input_shape, name="pixels")
    return inputs, keras.layers.Rescaling(1.0 / 255.0, name="to_unit")(inputs)


def _conv_bn_relu(x: Any, filters: int, name: str) -> Any:
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9, not Keras's 0.99: short CPU runs take a few hundred steps, and with 0.99 the moving
    # variance is still mostly its initial 1.0 then, so inference-mode predictions collapse to one class.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


@register_model("small_cnn")
def small_cnn(input_shape: tuple[int, ...], num_classes: int, *, width: int = 16, dropout: float = 0.2,
              blocks: int = 3, **_: Any) -> keras.Model:
    """A small CNN for CPUs: ``blocks`` x (conv-bn-relu, max-pool), global pooling, softmax.

    Args:
        input_shape: ``(height, width, bands)``.
        num_classes: Output classes.
        width: Filters of the first block; each block doubles it.
        dropout: Dropout rate before the classifier.
        blocks: Number of conv blocks (pooling stops once the map is 1 pixel).
        **_: Ignored options.

    Returns:
        The model.
    """
    import keras
    from keras import layers

    inputs, x = _scaled_input(input_shape)
    size = min(input_shape[0], input_shape[1])
    for i in range(int(blocks)):
        x = _conv_bn_relu(x, int(width) * 2**i, f"block{i + 1}")
        if size >= 2:
            x = layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
            size //= 2
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout > 0:
        x = layers.Dropout(float(dropout), name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


@register_model("resnet50")
def resnet50(input_shape: tuple[int, ...], num_classes: int, **_: Any) -> keras.Model:
    """ResNet-50 from ``keras.applications`` with random weights and any band count.

    Args:
        input_shape: ``(height, width, bands)``; at least 32x32.
        num_classes: Output classes.
        **_: Ignored options (``width``, ``dropout``, ...).

    Returns:
        The model.

    Raises:
        SpecError: The input is smaller than 32x32.
    """
    import keras

    if min(input_shape[:2]) < 32:
        raise SpecError(f"model 'resnet50' needs inputs of at least 32x32, got {input_shape}; "
                        "raise data.input_size or use small_cnn")
    inputs, x = _scaled_input(input_shape)
    net = keras.applications.ResNet50(include_top=True, weights=None, input_tensor=x,
                                      classes=num_classes, classifier_activation="softmax")
    return keras.Model(inputs, net.output, name="resnet50")


@register_model("unet", per_pixel=True)
def unet(input_shape: tuple[int, ...], num_classes: int, *, width: int = 16, depth: int = 4,
         dropout: float = 0.0, **_: Any) -> keras.Model:
    """A Ronneberger-style U-Net with per-pixel softmax output ``(H, W, num_classes)``.

    Args:
        input_shape: ``(height, width, bands)``; height and width divisible by ``2**depth``.
        num_classes: Output classes.
        width: Filters at the top level; each level down doubles it.
        depth: Number of down-sampling steps.
        dropout: Dropout rate at the bottleneck.
        **_: Ignored options.

    Returns:
        The model.

    Raises:
        SpecError: The input size is not divisible by ``2**depth``.
    """
    import keras
    from keras import layers

    step = 2 ** int(depth)
    if input_shape[0] % step or input_shape[1] % step:
        raise SpecError(f"model 'unet' with depth={depth} needs height and width divisible by {step}, "
                        f"got {input_shape}; change data.input_size or model depth")
    inputs, x = _scaled_input(input_shape)
    skips = []
    for level in range(int(depth)):
        x = _double_conv(x, int(width) * 2**level, f"down{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = _double_conv(x, int(width) * 2 ** int(depth), "bottleneck")
    if dropout > 0:
        x = layers.Dropout(float(dropout), name="bottleneck_dropout")(x)
    for level in reversed(range(int(depth))):
        filters = int(width) * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level + 1}_upconv")(x)
        x = layers.Concatenate(name=f"up{level + 1}_concat")([x, skips[level]])
        x = _double_conv(x, filters, f"up{level + 1}")
    outputs = layers.Conv2D(num_classes, 1, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet")


def _double_conv(x: Any, filters: int, name: str) -> Any:
    x = _conv_bn_relu(x, filters, f"{name}_a")
    return _conv_bn_relu(x, filters, f"{name}_b")


@register_model("centernet")
def centernet(input_shape: tuple[int, ...], num_classes: int, **kwargs: Any) -> keras.Model:
    """The small single-stage object detector of :mod:`mlwf_nb.ml.detector` (mask detection)."""
    from mlwf_nb.ml.detector import build_detector

    return build_detector(input_shape, num_classes, **kwargs)
