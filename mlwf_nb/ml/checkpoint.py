"""Training checkpoints: one ``.keras`` file plus a JSON sidecar, written atomically.

A checkpoint at ``path`` (e.g. ``outputs/checkpoint.keras``) is:

* ``path`` - the model with its optimizer state (``model.save``), and
* ``path + ".json"`` - ``{"v", "epoch", "history", "seed", "time"}``, where
  ``epoch`` counts completed epochs and ``history`` holds one list per metric,
  plus ``"best": {"epoch", "monitor", "value"}`` with ``train.keep_best``; the best
  epoch's weights then travel inside the ``.keras`` file itself (a member
  ``mlwf_best_weights.npz``, which Keras ignores), so one atomic file and one digest
  hold both and a resume keeps the best epoch too.

Both are written to a temporary name beside the final one and renamed into
place: the sidecar first (it records the sha256 of the new model and keeps the
entry of the model still under the final name as ``previous``), then the model.
On load the entry whose digest matches the model file is used, so a kill at any
moment leaves the last complete checkpoint readable and consistent. A checkpoint that cannot be read is reported as
a ``log`` warning event and ignored: training starts over rather than crash.

Pegasus's ``checkpoint.time`` rule sends SIGTERM; training saves and raises
:class:`CheckpointExit`, whose ``exit_code`` (75, EX_TEMPFAIL) the step CLI
returns so that ``dagman.retry`` resumes the job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwf_nb._io import atomic_path, read_json, write_json
from mlwf_nb.errors import MlwfError
from mlwf_nb.rundir.events import emit

if TYPE_CHECKING:
    import keras

__all__ = [
    "CheckpointExit",
    "EX_TEMPFAIL",
    "sidecar_path",
    "save_checkpoint",
    "load_checkpoint",
    "restore_state",
    "read_best_weights",
]

EX_TEMPFAIL = 75
SIDECAR_VERSION = 1
BEST_MEMBER = "mlwf_best_weights.npz"

_log = logging.getLogger(__name__)


class CheckpointExit(MlwfError, RuntimeError):
    """Training stopped on SIGTERM after saving a checkpoint; the job should exit 75.

    Attributes:
        exit_code: The process exit status the step CLI returns (EX_TEMPFAIL).
        path: The checkpoint written, or None when training had no checkpoint path.
        epoch: Completed epochs stored in the checkpoint.
    """

    exit_code = EX_TEMPFAIL

    def __init__(self, message: str, *, path: str | None = None, epoch: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.epoch = epoch


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of the checkpoint at ``path`` (``<path>.json``)."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def save_checkpoint(model: keras.Model, path: str | os.PathLike[str], *, epoch: int,
                    history: dict[str, list[float]], seed: int, best: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (with optimizer state) and its sidecar atomically.

    Args:
        model: A compiled Keras model.
        path: Final checkpoint path; should end in ``.keras``.
        epoch: Completed epochs so far.
        history: Metric lists over all completed epochs.
        seed: The training seed (recorded for reproducibility).
        best: The best epoch so far, ``{"epoch", "monitor", "value", "weights"}`` (weights: the
            arrays of ``model.get_weights()`` then), or None.

    Returns:
        The checkpoint path.
    """
    final = Path(path)
    side = sidecar_path(final)
    for stale in final.parent.glob(f".{final.name}.*"):  # temps of a save killed by SIGKILL (one writer)
        stale.unlink(missing_ok=True)
    previous = _previous_entry(side)
    with atomic_path(final, suffix=".keras") as tmp:
        model.save(tmp, overwrite=True)
        entry: dict[str, Any] = {"v": SIDECAR_VERSION, "epoch": int(epoch), "history": history,
                                 "seed": int(seed), "time": round(time.time(), 3)}
        if best is not None:
            _add_weights(tmp, best["weights"])
            entry["best"] = {"epoch": int(best["epoch"]), "monitor": str(best["monitor"]),
                             "value": float(best["value"])}
        # the sidecar names both the new model (by digest) and the one still under the final
        # name, so a kill between the two renames leaves a consistent pair either way
        write_json(side, {**entry, "sha256": _sha256(tmp), "previous": previous})
    return final


def _add_weights(keras_file: Path, weights: list[Any]) -> None:
    """Append the best epoch's weights to a saved ``.keras`` archive (a zip; Keras ignores the member)."""
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, *[np.asarray(w) for w in weights])
    with zipfile.ZipFile(keras_file, "a") as zf:
        zf.writestr(BEST_MEMBER, buf.getvalue())


def read_best_weights(keras_file: str | os.PathLike[str]) -> list[Any] | None:
    """The best epoch's weights stored in a checkpoint's ``.keras`` file, or None when it has none."""
    import io
    import zipfile

    import numpy as np

    with zipfile.ZipFile(keras_file) as zf:
        if BEST_MEMBER not in zf.namelist():
            return None
        with np.load(io.BytesIO(zf.read(BEST_MEMBER))) as npz:
            return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _previous_entry(side: Path) -> dict[str, Any] | None:
    """The current sidecar entry (without its own ``previous``) if it matches the model on disk."""
    try:
        meta = read_json(side)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or "sha256" not in meta:
        return None
    final = side.with_name(side.name[: -len(".json")])
    try:
        actual = _sha256(final)
    except OSError:
        return None
    for entry in (meta, meta.get("previous")):
        if isinstance(entry, dict) and entry.get("sha256") == actual:
            return {k: v for k, v in entry.items() if k != "previous"}
    return None


def _matching_entry(meta: dict[str, Any], final: Path) -> dict[str, Any]:
    """The sidecar entry that describes the model file on disk (the newest or the previous one)."""
    if "sha256" not in meta:  # sidecars written before digests were recorded
        return meta
    actual = _sha256(final)
    for entry in (meta, meta.get("previous")):
        if isinstance(entry, dict) and entry.get("sha256") == actual:
            return entry
    raise ValueError(f"{final.name} has sha256 {actual}, which neither the sidecar's epoch "
                     f"{meta.get('epoch')} nor its previous entry records")


def _warn(message: str) -> None:
    _log.warning(message)
    emit("log", level="warning", message=message)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[keras.Model, dict[str, Any]] | None:
    """Read the checkpoint at ``path`` if it exists and is complete.

    Args:
        path: Checkpoint path.

    Returns:
        ``(model, sidecar)`` or None when there is no checkpoint, or when it is
        unreadable (then a ``log`` warning event says why and that training
        starts from scratch).
    """
    import keras

    final, side = Path(path), sidecar_path(path)
    if not final.exists() and not side.exists():
        return None
    if final.exists() and final.stat().st_size == 0 and not side.exists():
        return None  # the empty placeholder Pegasus stages in before the first checkpoint exists
    try:
        meta = _matching_entry(read_json(side), final)
        epoch = int(meta["epoch"])
        history = {str(k): [float(v) for v in vals] for k, vals in dict(meta.get("history", {})).items()}
        model = keras.models.load_model(final, compile=True)
        best = dict(meta["best"], weights=read_best_weights(final)) if meta.get("best") else None
    except Exception as err:  # any unreadable checkpoint is ignored, never fatal
        _warn(f"ignoring unreadable checkpoint {final} (sidecar {side.name}): "
              f"{type(err).__name__}: {err}; training starts from epoch 0")
        return None
    return model, {**meta, "epoch": epoch, "history": history, "best": best}


def restore_state(model: keras.Model, loaded: keras.Model) -> None:
    """Copy weights and optimizer state from ``loaded`` into the compiled ``model``.

    Variables are matched by position (layer names differ between two builds
    of one architecture in the same process) and must agree in shape.

    Args:
        model: The caller's compiled model (its optimizer is built here if needed).
        loaded: A model from :func:`load_checkpoint`.

    Raises:
        ValueError: The two models or optimizers do not have the same variables.
    """
    _assign_all(model.weights, loaded.weights, "model weights")
    if loaded.optimizer is None or model.optimizer is None:
        return
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    _assign_all(model.optimizer.variables, loaded.optimizer.variables, "optimizer variables")


def _assign_all(targets: list[Any], sources: list[Any], what: str) -> None:
    if len(targets) != len(sources):
        raise ValueError(f"checkpoint has {len(sources)} {what}, the model has {len(targets)}")
    for target, source in zip(targets, sources, strict=True):
        if tuple(target.shape) != tuple(source.shape):
            raise ValueError(f"checkpoint {what}: {source.path} has shape {tuple(source.shape)}, "
                             f"the model's {target.path} has {tuple(target.shape)}")
    for target, source in zip(targets, sources, strict=True):
        target.assign(source.value)
