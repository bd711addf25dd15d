"""train.keep_best: the best epoch's weights are the ones kept, also across a kill and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from mlwf_nb.errors import SpecError
from mlwf_nb.ml.checkpoint import read_best_weights, sidecar_path
from mlwf_nb.ml.models import build_model
from mlwf_nb.ml.train import fit

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4


def data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Separable training patches; validation patches with the labels rotated, so validation loss
    rises as the model learns: the best epoch by val_loss is an early one, never the last."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 16, 16, 4)).astype(np.uint8)
    for k in range(3):
        x[y == k, :, :, k] += 150
    return (x, y), (x[:48], (y[:48] + 1) % 3)


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model("small_cnn", (16, 16, 4), 3, width=8, dropout=0.0)


class Snapshots(keras.callbacks.Callback):
    """Every epoch's weights, as the epoch ended."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.weights.append([np.array(w) for w in self.model.get_weights()])


class KillAfter(keras.callbacks.Callback):
    """SIGKILL this process at the end of an epoch (after fit's own callback saved the checkpoint)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def train(checkpoint: Path | None, callbacks: list[keras.callbacks.Callback], epochs: int = EPOCHS) -> tuple:
    net = model()
    train_set, val_set = data()
    out = fit(net, train_set, val_set, epochs=epochs, learning_rate=0.01, batch_size=32, checkpoint=checkpoint,
              keep_best="val_loss", callbacks=callbacks)
    return net, out


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_best_epoch_is_kept_also_across_a_kill_and_a_resume(tmp_path):
    snaps = Snapshots()
    whole_net, whole = train(tmp_path / "whole.keras", [snaps])
    val_loss = whole["history"]["val_loss"]
    best = int(np.argmin(val_loss)) + 1
    assert best < 3, val_loss  # the case this test is about: the best epoch comes before the kill, not last
    assert whole["best_epoch"] == best and whole["best"] == {"monitor": "val_loss", "value": min(val_loss)}
    assert _equal(whole_net.get_weights(), snaps.weights[best - 1])
    assert not _equal(whole_net.get_weights(), snaps.weights[-1])

    ckpt = tmp_path / "killed.keras"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from tests.ml.test_keep_best import KillAfter, train; train(Path(sys.argv[2]), [KillAfter(3)])")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code, str(REPO), str(ckpt)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    side = json.loads(sidecar_path(ckpt).read_text())
    assert side["epoch"] == 3 and side["best"]["epoch"] == best
    assert _equal(read_best_weights(ckpt), snaps.weights[best - 1])
    resumed_net, resumed = train(ckpt, [])
    assert resumed["resumed_from_epoch"] == 3 and resumed["best_epoch"] == best
    assert resumed["history"]["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    for a, b in zip(resumed_net.get_weights(), whole_net.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    done_net, done = train(ckpt, [])  # every epoch done: a retry of the job keeps the best epoch too
    assert done["epochs_run"] == 0 and done["best_epoch"] == best
    assert _equal(done_net.get_weights(), resumed_net.get_weights())


def test_a_monitor_no_epoch_reports_is_refused():
    train_set, val_set = data()
    with pytest.raises(SpecError, match=r"train.monitor: 'val_iou' is not an epoch metric.*val_loss"):
        fit(model(), train_set, val_set, epochs=1, learning_rate=0.01, batch_size=32, keep_best="val_iou")


def test_without_validation_the_last_epoch_is_kept_with_a_notice(events_of):
    train_set, _ = data()
    out = fit(model(), train_set, None, epochs=1, learning_rate=0.01, batch_size=32, keep_best="val_loss")
    assert "best_epoch" not in out
    assert any("keep_best: no validation data" in e["message"] for e in events_of("log"))
