"""Data-parallel training inside one job: ``train.distribution: mirrored``.

The job asks its site for several GPUs (``execution.gpus`` -> the Pegasus ``gpus``
profile and HTCondor ``request_gpus``); here the model is built and trained with one
replica per device, each batch split between them (``train.batch_size`` is the
global batch). TensorFlow backend: ``tf.distribute.MirroredStrategy``; JAX backend:
``keras.distribution.DataParallel``. On a machine with one device it runs one replica.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mlwf_nb.errors import SpecError

__all__ = ["distribution_scope", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("none", "mirrored")


@contextlib.contextmanager
def distribution_scope(kind: str) -> Iterator[int]:
    """Build and train the model inside this block; yields the number of replicas.

    Raises:
        SpecError: an unknown kind, or a Keras backend without data parallelism.
    """
    if kind not in DISTRIBUTIONS:
        raise SpecError(f"train.distribution must be one of {DISTRIBUTIONS}, got {kind!r}")
    if kind == "none":
        yield 1
        return
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            yield int(strategy.num_replicas_in_sync)
    elif backend == "jax":
        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise SpecError(f"train.distribution=mirrored needs the tensorflow or jax Keras backend, "
                        f"not {backend!r}; set KERAS_BACKEND")
