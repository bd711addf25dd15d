"""fit(): learning, checkpoints, resume, corrupt checkpoints, SIGTERM, determinism."""

from __future__ import annotations

import json
import os
import signal

import keras
import numpy as np
import pytest

from mlwf_nb.errors import MlwfError, SpecError
from mlwf_nb.ml.checkpoint import CheckpointExit, sidecar_path
from mlwf_nb.ml.models import build_model
from mlwf_nb.ml.train import fit, seed_everything

COMMON = {"learning_rate": 0.01, "batch_size": 32}


def _model(seed: int = 0) -> keras.Model:
    seed_everything(seed)
    return build_model("small_cnn", (16, 16, 4), 3, width=8, dropout=0.0)


class _Patches(keras.utils.PyDataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int) -> None:
        super().__init__()
        self.x, self.y, self.batch = x, y, batch

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch))

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]


def test_fit_learns_separable_problem(patches, events_of):
    (xt, yt), (xv, yv) = patches
    seen = []
    out = fit(_model(), _Patches(xt, yt, 32), _Patches(xv, yv, 32), epochs=3, learning_rate=0.01,
              on_epoch=lambda e, m: seen.append((e, m)))
    assert out["resumed_from_epoch"] == 0 and out["epochs_run"] == 3 and out["epoch"] == 3
    assert len(out["history"]["loss"]) == 3
    assert out["history"]["accuracy"][-1] > 0.8  # chance is 1/3
    assert out["history"]["loss"][-1] < out["history"]["loss"][0]
    assert [e for e, _ in seen] == [1, 2, 3]
    epochs = events_of("epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert set(epochs[-1]["metrics"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(isinstance(v, float) for v in epochs[-1]["metrics"].values())
    assert events_of("checkpoint_saved") == []  # no checkpoint path given


def test_checkpoint_then_resume(tmp_path, patches, events_of):
    ckpt = tmp_path / "ckpt" / "model.keras"
    first = _model()
    out = fit(first, *patches, epochs=2, checkpoint=ckpt, **COMMON)
    side = json.loads(sidecar_path(ckpt).read_text())
    assert ckpt.exists() and side["epoch"] == 2 and side["seed"] == 0
    assert side["history"]["loss"] == out["history"]["loss"]
    assert [e["epoch"] for e in events_of("checkpoint_saved")] == [1, 2]
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temporaries left

    # Same epochs again: restores weights into a fresh model and trains nothing.
    again = _model(seed=5)
    same = fit(again, *patches, epochs=2, checkpoint=ckpt, **COMMON)
    assert same["resumed_from_epoch"] == 2 and same["epochs_run"] == 0
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(again.optimizer.iterations.numpy()) == int(first.optimizer.iterations.numpy()) == 12

    more = fit(_model(seed=7), *patches, epochs=4, checkpoint=ckpt, **COMMON)
    assert more["resumed_from_epoch"] == 2 and more["epochs_run"] == 2 and more["epoch"] == 4
    assert len(more["history"]["loss"]) == 4
    assert more["history"]["loss"][:2] == out["history"]["loss"]
    assert [e["epoch"] for e in events_of("epoch")] == [1, 2, 3, 4]
    assert [e["epoch"] for e in events_of("checkpoint_restored")] == [2, 2]
    assert json.loads(sidecar_path(ckpt).read_text())["epoch"] == 4


@pytest.mark.parametrize(("every", "minutes", "saved"), [(2, 0.0, [2, 3]), (0, 1e-9, [1, 2, 3]),
                                                         (0, 0.0, [3])])
def test_checkpoint_every_minutes_and_final_save(tmp_path, patches, events_of, every, minutes, saved):
    ckpt = tmp_path / "model.keras"
    fit(_model(), *patches, epochs=3, checkpoint=ckpt, checkpoint_every=every, checkpoint_minutes=minutes,
        **COMMON)
    assert [e["epoch"] for e in events_of("checkpoint_saved")] == saved


@pytest.mark.parametrize("damage", ["garbage_model", "garbage_sidecar", "no_sidecar"])
def test_corrupt_checkpoint_is_ignored_with_warning(tmp_path, patches, events_of, damage):
    ckpt = tmp_path / "model.keras"
    if damage != "no_sidecar":
        sidecar_path(ckpt).write_text('{"epoch": 5, "history": {}}' if damage == "garbage_model" else "{tru")
    ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    out = fit(_model(), *patches, epochs=1, checkpoint=ckpt, **COMMON)
    assert out["resumed_from_epoch"] == 0 and out["epochs_run"] == 1
    warnings = events_of("log")
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert "model.keras" in warnings[0]["message"]
    assert events_of("checkpoint_restored") == []
    assert json.loads(sidecar_path(ckpt).read_text())["epoch"] == 1  # replaced by a good one


def test_checkpoint_of_another_architecture_is_ignored(tmp_path, patches, events_of):
    ckpt = tmp_path / "model.keras"
    fit(_model(), *patches, epochs=1, checkpoint=ckpt, **COMMON)
    seed_everything(0)
    wider = build_model("small_cnn", (16, 16, 4), 3, width=4)
    out = fit(wider, *patches, epochs=1, checkpoint=ckpt, **COMMON)
    assert out["resumed_from_epoch"] == 0
    assert "does not match" in events_of("log")[0]["message"]


class _KillAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.target, self.epoch = (epoch, batch), -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.target:
            os.kill(os.getpid(), signal.SIGTERM)


class _Snapshot(keras.callbacks.Callback):
    """Records the checkpoint's bytes at every epoch end (after fit's own monitor saved it)."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path, self.bytes = path, {}

    def on_epoch_end(self, epoch, logs=None):
        if self.path.exists():
            self.bytes[epoch + 1] = self.path.read_bytes()


@pytest.mark.parametrize(("every", "saved"), [(1, [1]), (2, [1])])
def test_sigterm_saves_checkpoint_and_exit_75_then_resumes(tmp_path, patches, events_of, every, saved):
    """SIGTERM inside epoch 2: exit 75 with the epoch-1 state; the retry loses at most that partial epoch.

    With a checkpoint every epoch, the exact epoch-end checkpoint is kept (not overwritten by
    partial-epoch weights); with a longer interval, epoch 1 is saved on the way out.
    """
    ckpt = tmp_path / "model.keras"
    before = signal.getsignal(signal.SIGTERM)
    snap = _Snapshot(ckpt)
    with pytest.raises(CheckpointExit) as info:
        fit(_model(), *patches, epochs=3, checkpoint=ckpt, checkpoint_every=every,
            callbacks=[snap, _KillAt(epoch=1, batch=2)], **COMMON)
    assert signal.getsignal(signal.SIGTERM) is before
    err = info.value
    assert err.exit_code == 75 and err.epoch == 1 and err.path == str(ckpt)
    assert isinstance(err, MlwfError) and not isinstance(err, SystemExit)
    assert json.loads(sidecar_path(ckpt).read_text())["epoch"] == 1  # epoch 2 was cut short
    assert [e["epoch"] for e in events_of("epoch")] == [1]
    assert [e["epoch"] for e in events_of("checkpoint_saved")] == saved
    if every == 1:  # the epoch-end checkpoint, byte for byte: no partial-epoch weights
        assert ckpt.read_bytes() == snap.bytes[1]

    out = fit(_model(), *patches, epochs=3, checkpoint=ckpt, checkpoint_every=every, **COMMON)
    assert out["resumed_from_epoch"] == 1 and out["epochs_run"] == 2
    assert [e["epoch"] for e in events_of("epoch")] == [1, 2, 3]


def test_same_seed_same_metrics(patches):
    runs = [fit(_model(seed=3), *patches, epochs=2, seed=3, **COMMON)["history"] for _ in range(2)]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(runs[0][key], runs[1][key], rtol=0, atol=1e-6)


def test_bad_arguments(patches):
    with pytest.raises(SpecError, match="unknown optimizer 'lbfgs'"):
        fit(_model(), *patches, epochs=1, optimizer="lbfgs", **COMMON)
    with pytest.raises(SpecError, match="epochs"):
        fit(_model(), *patches, epochs=0, **COMMON)


def test_resume_with_dropout_matches_an_uninterrupted_run(tmp_path):
    """Dropout's random streams are not model weights: each epoch gets a fixed stream, so resuming is exact."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (128, 16, 16, 4)).astype("float32")
    y = rng.integers(0, 5, 128).astype("int32")

    def model():
        keras.utils.set_random_seed(0)
        return build_model("small_cnn", (16, 16, 4), 5, width=8, dropout=0.3)

    whole = fit(model(), (x, y), epochs=3, learning_rate=1e-2, checkpoint=tmp_path / "a.keras", batch_size=32)
    fit(model(), (x, y), epochs=1, learning_rate=1e-2, checkpoint=tmp_path / "b.keras", batch_size=32)
    resumed = fit(model(), (x, y), epochs=3, learning_rate=1e-2, checkpoint=tmp_path / "b.keras", batch_size=32)
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["history"]["loss"] == whole["history"]["loss"]


def test_resume_through_a_py_dataset_matches_an_uninterrupted_run(tmp_path):
    """The batches' order belongs to the dataset, not to Keras's global RNG (a restart would change it)."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (128, 16, 16, 4)).astype("float32")
    y = rng.integers(0, 5, 128).astype("int32")

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]

    def model():
        keras.utils.set_random_seed(0)
        return build_model("small_cnn", (16, 16, 4), 5, width=8, dropout=0.0)

    whole = fit(model(), Batches(), epochs=3, learning_rate=1e-2, optimizer="sgd", checkpoint=tmp_path / "a.keras")
    fit(model(), Batches(), epochs=1, learning_rate=1e-2, optimizer="sgd", checkpoint=tmp_path / "b.keras")
    resumed = fit(model(), Batches(), epochs=3, learning_rate=1e-2, optimizer="sgd",
                  checkpoint=tmp_path / "b.keras")
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["history"]["loss"] == whole["history"]["loss"]
