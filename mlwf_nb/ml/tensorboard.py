"""TensorBoard event files of a training, under names the workflow chose.

Every training (``train``, HPO ``trial``, the templates' training steps) writes
its epoch scalars to two event files, ``outputs/tensorboard/<job>/train/...`` and
``.../validation/...``, with the tags Keras's own TensorBoard callback uses
(``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``), so training and
validation curves overlay in one chart per metric.

Why not ``keras.callbacks.TensorBoard``: it writes through ``tf.summary`` (no
TensorFlow in the JAX GPU image) and names its files
``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``, names a Pegasus job cannot
declare before it runs; an undeclared file is not staged back from a condorio
sandbox. Here the names are fixed by the job (:func:`event_files`), declared as
the job's outputs, and written with TensorBoard's own record format
(``tensorboard.summary.writer.record_writer`` and ``event_pb2``; ``"tfevents"``
in the name is how TensorBoard finds them). A resumed training rewrites its
files from the checkpoint's history first, so a retry in a fresh sandbox still
stages back every epoch.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mlwf_nb._io import atomic_path

__all__ = ["RUNS", "event_files", "EpochLog"]

RUNS = ("train", "validation")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def event_files(job: str, root: str = "outputs/tensorboard") -> list[str]:
    """The two event files (LFNs) of training job ``job``: its ``train`` and ``validation`` runs.

    ``job`` is made file-name safe (``trial[r0,1]`` -> ``trial-r0-1``); both basenames are
    unique in the workflow (``events.out.tfevents.<job>.train``), as a flat sandbox needs.
    """
    tag = _SAFE.sub("-", job).strip("-") or "job"
    return [f"{root}/{tag}/{run}/events.out.tfevents.{tag}.{run}" for run in RUNS]


class EpochLog:
    """Append epoch scalars to a training's event files (``[train, validation]``)."""

    def __init__(self, files: Sequence[str | os.PathLike[str]]) -> None:
        self.paths = [Path(f) for f in files][: len(RUNS)]
        self._files: list[IO[bytes]] = []
        self._writers: list[Any] = []

    def start(self, history: Mapping[str, Sequence[float]], learning_rate: float | None = None) -> None:
        """(Re)write the files with the epochs of ``history`` (from a checkpoint), then keep them open."""
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.close()
        epochs = max((len(v) for v in history.values()), default=0)
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as fh:
                head = event_pb2.Event(wall_time=time.time(), step=0, file_version="brain.Event:2")
                RecordWriter(fh).write(head.SerializeToString())
        self._files = [open(p, "ab") for p in self.paths]  # noqa: SIM115 - kept open across epochs
        self._writers = [RecordWriter(f) for f in self._files]
        for e in range(epochs):
            self.epoch(e + 1, {k: v[e] for k, v in history.items() if e < len(v)}, learning_rate)

    def epoch(self, epoch: int, metrics: Mapping[str, float], learning_rate: float | None = None) -> None:
        """Write one epoch's metrics: ``val_*`` to the validation run, the rest to the train run."""
        from tensorboard.compat.proto import event_pb2, summary_pb2

        runs: list[dict[str, float]] = [{} for _ in self._writers]
        for key, value in metrics.items():
            val = key.startswith("val_")
            if val and len(runs) < 2:
                continue
            runs[1 if val else 0][f"epoch_{key[4:] if val else key}"] = float(value)
        if learning_rate is not None and runs:  # an adapted rate (hypergradient) is in the metrics already
            runs[0].setdefault("epoch_learning_rate", float(learning_rate))
        now = time.time()
        for writer, fh, scalars in zip(self._writers, self._files, runs, strict=True):
            if not scalars:
                continue
            values = [summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in sorted(scalars.items())]
            writer.write(event_pb2.Event(wall_time=now, step=int(epoch),
                                         summary=summary_pb2.Summary(value=values)).SerializeToString())
            fh.flush()  # a live TensorBoard (local backend) sees every epoch as it ends

    def close(self) -> None:
        """Close the files (they stay valid event files)."""
        for fh in self._files:
            fh.close()
        self._files, self._writers = [], []
