"""Keep the best epoch: the weights of the epoch with the best monitored metric, not the last epoch's.

Validation loss on small land-cover sets jumps between epochs (the ``cpu`` preset's went
0.019 -> 0.288 in its last epoch), so the last epoch's model is often not the one to
evaluate. :class:`BestEpoch` follows one epoch metric (``train.monitor``; names ending in
``loss`` are better lower, others higher), copies the weights whenever it improves, and
travels in the checkpoint (:func:`mlwf_nb.ml.checkpoint.save_checkpoint`), so a run killed
and resumed keeps the best epoch of the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mlwf_nb.errors import SpecError

__all__ = ["BestEpoch", "lower_is_better"]


def lower_is_better(monitor: str) -> bool:
    """``*loss`` metrics improve downwards, every other metric (accuracy, IoU, Dice) upwards."""
    return monitor.endswith("loss")


class BestEpoch:
    """The best epoch so far by ``monitor``, and a copy of its weights."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.epoch = 0
        self.value = math.nan
        self.weights: list[np.ndarray] | None = None

    @classmethod
    def check_monitor(cls, monitor: str, available: Iterable[str]) -> None:
        """Refuse a monitor that no epoch will report (before any epoch is trained).

        Raises:
            SpecError: ``monitor`` is not among ``available``; the message lists them.
        """
        names = sorted(set(available))
        if monitor not in names:
            raise SpecError(f"train.monitor: {monitor!r} is not an epoch metric of this training; it reports "
                            f"{names} (set train.monitor to one of them, or train.keep_best=false)")

    def better(self, value: float) -> bool:
        """Whether ``value`` beats the best so far (NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.weights is None:
            return True
        return value < self.value if lower_is_better(self.monitor) else value > self.value

    def update(self, model: Any, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Take ``model``'s weights if ``metrics[monitor]`` of ``epoch`` is the best so far; True if taken."""
        value = float(metrics.get(self.monitor, math.nan))
        if not self.better(value):
            return False
        self.epoch, self.value = int(epoch), value
        self.weights = [np.array(w, copy=True) for w in model.get_weights()]
        return True

    def state(self) -> dict[str, Any] | None:
        """What a checkpoint stores (``epoch``, ``monitor``, ``value``, ``weights``), or None before any epoch."""
        if self.weights is None:
            return None
        return {"epoch": self.epoch, "monitor": self.monitor, "value": self.value, "weights": self.weights}

    def load(self, state: Mapping[str, Any] | None) -> None:
        """Continue from a checkpoint's :meth:`state` (its monitor must be this one; else start afresh)."""
        if not state or state.get("monitor") != self.monitor or state.get("weights") is None:
            return
        self.epoch, self.value = int(state["epoch"]), float(state["value"])
        self.weights = [np.asarray(w) for w in state["weights"]]

    def restore(self, model: Any) -> None:
        """Put the best epoch's weights into ``model`` (nothing when no epoch was recorded)."""
        if self.weights is not None:
            model.set_weights(self.weights)
