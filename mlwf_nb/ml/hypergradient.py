"""Hypergradient descent of the learning rate inside one training (``train.lr_hypergradient``).

The derivative of the loss after a step with respect to the learning rate that
made the step is ``-g_t · u_{t-1}``: the dot product of this step's gradient
with the previous step's update direction (for plain SGD, the previous
gradient). Baydin et al., "Online learning rate adaptation with hypergradient
descent" (ICLR 2018), descend on it; this module uses their multiplicative,
normalised rule::

    lr_t = lr_{t-1} * (1 + rate * cos(g_t, u_{t-1}))

so successive steps that agree (the valley goes on) lengthen the step, steps
that disagree (the last one overshot) shorten it. The cosine makes the rule
independent of the loss's scale and keeps the learning rate positive for
``0 < rate < 1``. ``u_{t-1}`` is read off the weights themselves
(``θ_{t-1} - θ_t``), so the same wrapper works over Adam, AdamW, SGD (with
momentum) and RMSprop: it costs one copy of the weights and two dot products a
step, all in the compiled train step, on any Keras backend.

The adapted learning rate is an optimizer variable, so it is saved in the
checkpoint and a resumed training continues with it. :class:`LearningRateLog`
writes it into each epoch's logs (``learning_rate``, Keras's own key, as
``LearningRateScheduler`` and ``ReduceLROnPlateau`` do), so the epoch events
carry it and the monitor plots it with the other curves.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["HYPERGRADIENT_OPTIMIZERS", "LearningRateLog", "HypergradientAdam", "HypergradientAdamW",
           "HypergradientSGD", "HypergradientRMSprop"]


class _Hypergradient:
    """Mixin placed before a Keras optimizer class: multiplies the learning rate before each step."""

    def __init__(self, *args: Any, hypergradient_rate: float = 0.02, **kwargs: Any) -> None:
        if not 0.0 < float(hypergradient_rate) < 1.0:
            raise ValueError(f"hypergradient_rate must be in (0, 1), got {hypergradient_rate}")
        super().__init__(*args, **kwargs)
        self.hypergradient_rate = float(hypergradient_rate)

    def build(self, variables: list[Any]) -> None:
        """Build the wrapped optimizer, plus one copy of the weights (those before the last step)."""
        if self.built:  # type: ignore[attr-defined]
            return
        super().build(variables)  # type: ignore[misc]
        self._before = self.add_optimizer_variables(variables, "before_last_step")  # type: ignore[attr-defined]

    def _backend_apply_gradients(self, grads: list[Any], trainable_variables: list[Any]) -> None:
        index = self._get_variable_index  # type: ignore[attr-defined]
        before = [self._before[index(v)] for v in trainable_variables]
        dot = norm_g = norm_u = ops.zeros((), dtype="float32")
        for grad, var, old in zip(grads, trainable_variables, before, strict=True):
            g = ops.cast(grad, "float32")
            u = ops.cast(ops.subtract(old, var), "float32")  # lr_{t-1} * u_{t-1}
            dot = dot + ops.sum(g * u)
            norm_g = norm_g + ops.sum(g * g)
            norm_u = norm_u + ops.sum(u * u)
        cos = dot / (ops.sqrt(norm_g * norm_u) + 1e-30)
        started = ops.cast(ops.greater(self._iterations, 0), "float32")  # type: ignore[attr-defined]
        lr = self._learning_rate  # type: ignore[attr-defined]
        factor = 1.0 + self.hypergradient_rate * cos * started
        lr.assign(ops.cast(ops.cast(lr, "float32") * factor, lr.dtype))
        for var, old in zip(trainable_variables, before, strict=True):
            self.assign(old, var)  # type: ignore[attr-defined]
        super()._backend_apply_gradients(grads, trainable_variables)  # type: ignore[misc]

    def get_config(self) -> dict[str, Any]:
        """The wrapped optimizer's config plus ``hypergradient_rate``."""
        config: dict[str, Any] = super().get_config()  # type: ignore[misc]
        config["hypergradient_rate"] = self.hypergradient_rate
        return config


@keras.saving.register_keras_serializable(package="mlwf_nb")
class HypergradientAdam(_Hypergradient, keras.optimizers.Adam):
    """Adam with hypergradient descent of its learning rate."""


@keras.saving.register_keras_serializable(package="mlwf_nb")
class HypergradientAdamW(_Hypergradient, keras.optimizers.AdamW):
    """AdamW with hypergradient descent of its learning rate."""


@keras.saving.register_keras_serializable(package="mlwf_nb")
class HypergradientSGD(_Hypergradient, keras.optimizers.SGD):
    """SGD (with momentum) with hypergradient descent of its learning rate."""


@keras.saving.register_keras_serializable(package="mlwf_nb")
class HypergradientRMSprop(_Hypergradient, keras.optimizers.RMSprop):
    """RMSprop with hypergradient descent of its learning rate."""


HYPERGRADIENT_OPTIMIZERS: dict[str, type] = {
    "adam": HypergradientAdam, "adamw": HypergradientAdamW, "sgd": HypergradientSGD,
    "rmsprop": HypergradientRMSprop}


class LearningRateLog(keras.callbacks.Callback):
    """Write the optimizer's current learning rate into each epoch's logs as ``learning_rate``.

    Put it before the callbacks that read the logs (the training monitor emits
    them as the epoch event's metrics).
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Add ``learning_rate`` to ``logs``."""
        if logs is not None:
            logs["learning_rate"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
