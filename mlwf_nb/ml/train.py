"""The one training path: compile, resume from a checkpoint, fit, checkpoint, stop on SIGTERM.

Every caller (the train step, HPO trials, notebooks) trains through :func:`fit`,
so checkpoints, events and the Pegasus ``checkpoint.time`` behaviour are the
same everywhere. Only ``keras`` / ``keras.ops`` APIs are used, so the same code
runs on the TensorFlow and JAX backends.

Epoch numbers in events, sidecars and ``on_epoch`` are 1-based counts of
completed epochs: after a checkpoint at epoch 2, the next epoch reported is 3.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import keras

from mlwf_nb.errors import SpecError
from mlwf_nb.ml.best import BestEpoch
from mlwf_nb.ml.checkpoint import CheckpointExit, load_checkpoint, restore_state, save_checkpoint
from mlwf_nb.ml.tensorboard import EpochLog
from mlwf_nb.rundir.events import emit

__all__ = ["fit", "seed_everything", "make_optimizer", "compile_model", "keep_heap_top", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")

EpochCallback = Callable[[int, dict[str, float]], None]
EpochMetrics = Callable[[keras.Model], Mapping[str, float]]


HEAP_TOP_PAD = 4 << 20
_M_TOP_PAD = -2  # glibc <malloc.h>


def keep_heap_top(pad: int = HEAP_TOP_PAD) -> bool:
    """Let glibc keep ``pad`` free bytes at the top of each malloc arena (process-wide; glibc only).

    A loader thread allocates a fresh ~1 MB batch for every step and the training
    thread frees it a few steps later. With glibc's default (no pad), the arena
    hands those pages back to the kernel each time and the next batch faults them
    in again: 258 page faults and about 1 ms of CPU per batch of the ``cpu``
    preset, which doubled the loader's cost next to Keras's own array pipeline
    (docs/benchmarks.md, row "loader"). A 4 MB pad removes the faults for a
    few MB of memory kept per arena.

    Returns:
        Whether the setting was applied (False off glibc).
    """
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(_M_TOP_PAD, int(pad)))
    except (ValueError, OSError, AttributeError):  # no such confstr name, no libc symbol
        return False


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (call it before building a model)."""
    keras.utils.set_random_seed(int(seed))


def make_optimizer(name: str, learning_rate: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0, hypergradient_rate: float = 0.0) -> keras.optimizers.Optimizer:
    """Create an optimizer by name.

    Args:
        name: One of :data:`OPTIMIZERS`.
        learning_rate: Learning rate (the initial one with hypergradient descent).
        momentum: Momentum for ``sgd`` and ``rmsprop``.
        weight_decay: Decoupled weight decay (0 disables it).
        hypergradient_rate: With a rate in (0, 1), the learning rate follows hypergradient
            descent (:mod:`mlwf_nb.ml.hypergradient`); 0 keeps it fixed.

    Returns:
        The optimizer.

    Raises:
        SpecError: Unknown name.
    """
    wd = float(weight_decay) or None
    lr = float(learning_rate)
    key = name.lower()
    classes: dict[str, Any] = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                               "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    extra: dict[str, Any] = {}
    if hypergradient_rate:
        from mlwf_nb.ml.hypergradient import HYPERGRADIENT_OPTIMIZERS

        classes, extra = HYPERGRADIENT_OPTIMIZERS, {"hypergradient_rate": float(hypergradient_rate)}
    if key == "adam":
        return classes[key](lr, weight_decay=wd, **extra)
    if key == "adamw":
        return classes[key](lr, weight_decay=wd or 0.004, **extra)
    if key in ("sgd", "rmsprop"):
        return classes[key](lr, momentum=float(momentum), weight_decay=wd, **extra)
    raise SpecError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)} (train.optimizer)")


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                  ignore_class: int | None = None, metrics: Sequence[Any] = (), loss: Any = None) -> None:
    """Compile with sparse categorical cross-entropy and accuracy (per sample or per pixel).

    ``metrics`` are added after accuracy (e.g. IoU / Dice for segmentation); their
    names become the epoch events' metric keys. A ``loss`` of its own (e.g. a
    detector's) replaces the cross-entropy, and then only ``metrics`` are tracked. With ``ignore_class``
    the loss and the accuracy skip that label (unlabeled pixels of land-cover masks).
    """
    if loss is not None:
        model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics) or None)
        return
    loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=ignore_class)
    accuracy = "accuracy" if ignore_class is None else _accuracy_without(ignore_class)
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy, *metrics])


def _accuracy_without(ignore: int) -> keras.metrics.Metric:
    """Per-pixel accuracy over the pixels whose label is not ``ignore`` (unlabeled), named ``accuracy``."""
    from keras import ops

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        truth = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        keep = ops.cast(ops.not_equal(truth, ignore), "float32")
        hit = ops.cast(ops.equal(truth, ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")
        return ops.sum(hit * keep) / ops.maximum(ops.sum(keep), 1.0)

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


@contextlib.contextmanager
def _sigterm_flag() -> Iterator[threading.Event]:
    """Set the yielded flag on SIGTERM; restore the previous handler on exit (main thread only)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Monitor(keras.callbacks.Callback):
    """Records epochs, emits events, saves checkpoints when due, stops on the SIGTERM flag."""

    def __init__(self, flag: threading.Event, history: dict[str, list[float]], save: Callable[[int], None],
                 every: int, minutes: float, on_epoch: EpochCallback | None, extra: EpochMetrics | None = None,
                 log: EpochLog | None = None) -> None:
        super().__init__()
        self.flag, self.history, self.save = flag, history, save
        self.every, self.minutes, self.on_epoch = every, minutes, on_epoch
        self.extra, self.log = extra, log
        self.completed = 0
        self.saved_epoch = -1
        self.partial = False
        self.last_save = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        import numpy as np

        # Random layers (dropout, ...) draw from seed-generator variables that are not model weights, so a
        # checkpoint does not carry them. Giving every epoch its own fixed stream makes a resumed run draw
        # exactly what an uninterrupted one draws.
        self._seed_vars = [(v, np.asarray(v.value).copy()) for v in self.model.variables
                           if v.path.endswith("seed_generator_state")]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for var, initial in getattr(self, "_seed_vars", []):
            state = initial.copy()
            state[-1] = state[-1] + (epoch + 1) * 1_000_003
            var.assign(state)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.flag.is_set():
            self.model.stop_training = True
            self.partial = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.partial:  # stopped inside the epoch: it does not count
            return
        done = epoch + 1
        metrics = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if self.extra is not None:  # e.g. a detector's validation mAP, computed outside the graph
            metrics.update({k: float(v) for k, v in self.extra(self.model).items()})
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)
        self.completed = done
        emit("epoch", epoch=done, metrics=metrics)
        if self.log is not None:
            self.log.epoch(done, metrics, _learning_rate(self.model))
        if self.on_epoch is not None:
            self.on_epoch(done, metrics)
        if self.flag.is_set():
            self.model.stop_training = True
            return
        if self._due(done):
            self.save(done)
            self.saved_epoch = done
            self.last_save = time.monotonic()

    def _due(self, done: int) -> bool:
        by_epoch = self.every > 0 and done % self.every == 0
        by_time = self.minutes > 0 and time.monotonic() - self.last_save >= self.minutes * 60.0
        return by_epoch or by_time


def _learning_rate(model: keras.Model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):  # a schedule object, no optimizer
        return None


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _resume(model: keras.Model, checkpoint: Path | None) -> tuple[int, dict[str, list[float]], Any]:
    """Restore ``model`` from ``checkpoint`` if possible; return (completed epochs, history, best epoch state)."""
    if checkpoint is None:
        return 0, {}, None
    found = load_checkpoint(checkpoint)
    if found is None:
        return 0, {}, None
    loaded, meta = found
    try:
        restore_state(model, loaded)
    except ValueError as err:
        emit("log", level="warning", message=f"ignoring checkpoint {checkpoint}: it does not match "
             f"the model ({err}); starting from epoch 0")
        return 0, {}, None
    emit("checkpoint_restored", path=str(checkpoint), epoch=meta["epoch"])
    return int(meta["epoch"]), dict(meta["history"]), meta.get("best")


def _best_epoch(keep_best: str | None, val_data: Any) -> BestEpoch | None:
    """The tracker of the best epoch, or None (with a notice when validation data are missing for it)."""
    if not keep_best:
        return None
    if keep_best.startswith("val_") and val_data is None:
        emit("log", level="warning", message=f"keep_best: no validation data to follow {keep_best} (e.g. "
             "train.train_on_val), so the last epoch's weights are kept")
        return None
    return BestEpoch(keep_best)


def _keep(best: BestEpoch | None, model: keras.Model, done: int, result: dict[str, Any]) -> None:
    """Put the best epoch's weights into ``model`` and say so in ``result`` and the events."""
    if best is None or best.weights is None:
        return
    best.restore(model)
    result.update(best_epoch=best.epoch, best={"monitor": best.monitor, "value": best.value})
    emit("log", level="info", message=f"keep_best: the weights of epoch {best.epoch} of {done} "
         f"({best.monitor} {best.value:.4g}) are kept")


def fit(model: keras.Model, train_data: Any, val_data: Any = None, *, epochs: int, learning_rate: float,
        optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 0.0,
        checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
        checkpoint_minutes: float = 0.0, seed: int = 0, on_epoch: EpochCallback | None = None,
        batch_size: int | None = None, ignore_class: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (), metrics: Sequence[Any] = (),
        loss: Any = None, epoch_metrics: EpochMetrics | None = None,
        tensorboard: Sequence[str | os.PathLike[str]] = (), lr_hypergradient: float = 0.0,
        keep_best: str | None = None,
        verbose: int = 0) -> dict[str, Any]:
    """Train ``model`` in place, resuming from and writing ``checkpoint``.

    Args:
        model: An uncompiled (or compiled) Keras model; it is (re)compiled here.
        train_data: A ``keras.utils.PyDataset`` or anything ``model.fit`` takes;
            an ``(x, y)`` tuple of arrays is unpacked and batched by ``batch_size``.
        val_data: Validation data as ``model.fit(validation_data=...)`` takes it, or None.
        epochs: Total epochs (including those done before a resume).
        learning_rate: Learning rate.
        optimizer: One of :data:`OPTIMIZERS`.
        momentum: Momentum for sgd / rmsprop.
        weight_decay: Optimizer weight decay (0 disables it).
        checkpoint: Checkpoint path (``.keras``), or None for no checkpoints.
        checkpoint_every: Save every this many epochs (0: only by time and at the end).
        checkpoint_minutes: Also save at an epoch end once this many minutes passed (0: off).
        seed: Seed for ``keras.utils.set_random_seed``.
        on_epoch: Called as ``on_epoch(epoch, metrics)`` after each completed epoch (1-based).
        batch_size: Batch size when ``train_data`` is an ``(x, y)`` tuple.
        ignore_class: Label value the loss ignores (e.g. unlabeled pixels), or None.
        callbacks: Extra Keras callbacks.
        metrics: Extra Keras metrics besides accuracy (e.g. IoU for segmentation).
        loss: A loss of the model's own instead of sparse cross-entropy (then no accuracy metric).
        epoch_metrics: Called as ``epoch_metrics(model)`` at each epoch end; its ``{name: value}``
            join the epoch's metrics (history, events, TensorBoard), e.g. ``val_map50``.
        tensorboard: TensorBoard event files ``[train, validation]``
            (:func:`mlwf_nb.ml.tensorboard.event_files`), rewritten from the history on resume.
        lr_hypergradient: Hypergradient rate in (0, 1): the learning rate adapts every step
            (:mod:`mlwf_nb.ml.hypergradient`), resumes from the checkpoint, and each epoch's
            metrics carry it as ``learning_rate``; 0 (default) keeps it fixed.
        keep_best: An epoch metric (``val_loss``, ``val_accuracy``, ...): at the end ``model`` holds
            the weights of the epoch where it was best (:mod:`mlwf_nb.ml.best`), kept across
            resumes in the checkpoint; None keeps the last epoch's weights.
        verbose: Keras progress output level.

    Returns:
        ``{"history": {metric: [float, ...]}, "resumed_from_epoch": int, "epochs_run": int,
        "epoch": int, "checkpoint": str | None}``, with ``keep_best`` also ``"best_epoch"``
        and ``"best": {"monitor", "value"}``; ``history`` spans every epoch, including those
        before the resume; ``epoch`` counts completed epochs.

    Raises:
        CheckpointExit: SIGTERM arrived; a checkpoint was saved (exit with ``exit_code``).
        SpecError: Bad epochs or optimizer, or ``keep_best`` names no metric of the epochs.
    """
    if int(epochs) < 1:
        raise SpecError(f"train.epochs must be >= 1, got {epochs}")
    keep_heap_top()
    seed_everything(seed)
    compile_model(model, make_optimizer(optimizer, learning_rate, momentum=momentum, weight_decay=weight_decay,
                                        hypergradient_rate=lr_hypergradient), ignore_class, metrics, loss)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    best = _best_epoch(keep_best, val_data)
    start, history, best_state = _resume(model, ckpt)
    if best is not None:
        best.load(best_state)
    if start and hasattr(train_data, "set_epoch"):
        train_data.set_epoch(start)  # the shuffles of an uninterrupted run, not epoch 0's again
    if not (lr_hypergradient and start):  # an adapted learning rate is state: a resume keeps it
        model.optimizer.learning_rate = float(learning_rate)
    result: dict[str, Any] = {"history": history, "resumed_from_epoch": start, "epochs_run": 0,
                              "epoch": start, "checkpoint": str(ckpt) if ckpt else None}
    log = EpochLog(tensorboard) if tensorboard else None
    if log is not None:
        log.start(history, float(learning_rate))
    if start >= int(epochs):
        if log is not None:
            log.close()
        _keep(best, model, start, result)
        return result

    def save(done: int) -> None:
        if ckpt is not None:
            save_checkpoint(model, ckpt, epoch=done, history=history, seed=seed,
                            best=best.state() if best is not None else None)
            emit("checkpoint_saved", path=str(ckpt), epoch=done)

    def epoch_done(done: int, metrics: dict[str, float]) -> None:  # before the epoch's checkpoint is saved
        if best is not None:
            BestEpoch.check_monitor(best.monitor, metrics)
            best.update(model, done, metrics)
        if on_epoch is not None:
            on_epoch(done, metrics)

    with _sigterm_flag() as flag, contextlib.ExitStack() as stack:
        if log is not None:
            stack.callback(log.close)
        monitor = _Monitor(flag, history, save, int(checkpoint_every), float(checkpoint_minutes), epoch_done,
                           epoch_metrics, log)
        logs_lr = [_lr_log()] if lr_hypergradient else []  # before the monitor, which emits the logs
        _run_fit(model, train_data, val_data, epochs=int(epochs), initial_epoch=start, batch_size=batch_size,
                 callbacks=[*logs_lr, monitor, *callbacks], verbose=verbose)
    done = max(start, monitor.completed)
    result.update(epochs_run=done - start, epoch=done)
    if flag.is_set():
        if not (monitor.partial and monitor.saved_epoch == done):
            save(done)  # else the checkpoint of epoch `done` is already exact: no partial-epoch weights
        raise CheckpointExit(f"training stopped by SIGTERM after epoch {done}; checkpoint "
                             f"{ckpt if ckpt else '(none: no checkpoint path)'} saved, exit "
                             f"{CheckpointExit.exit_code} so the retry resumes", path=result["checkpoint"],
                             epoch=done)
    if monitor.saved_epoch != done:
        save(done)
    _keep(best, model, done, result)  # after the last save: a checkpoint holds the last epoch, to resume from
    return result


def _lr_log() -> keras.callbacks.Callback:
    from mlwf_nb.ml.hypergradient import LearningRateLog

    return LearningRateLog()


def _run_fit(model: keras.Model, train_data: Any, val_data: Any, **kwargs: Any) -> None:
    batch_size = kwargs.pop("batch_size")
    if isinstance(train_data, tuple) and len(train_data) == 2:
        x, y = train_data
        model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=val_data, **kwargs)
    else:
        # A PyDataset orders its own batches (ShardSequence shuffles by seed and epoch). Keras's fit would
        # otherwise also shuffle the batch order from its global RNG, which a resumed process cannot
        # reproduce: the resumed run then saw its epochs in another order than the uninterrupted one.
        model.fit(train_data, validation_data=val_data, shuffle=False, **kwargs)
