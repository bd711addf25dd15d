"""TensorBoard event files of a training: declared names, read back with TensorBoard's own reader."""

from __future__ import annotations

import keras
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlwf_nb.ml.models import build_model
from mlwf_nb.ml.tensorboard import EpochLog, event_files
from mlwf_nb.ml.train import fit, seed_everything


def _scalars(path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(path.parent))  # TensorBoard reads a run folder, finds *tfevents* files
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_event_file_names_are_declared_and_unique():
    train, val = event_files("trial[r0,1]")
    assert train == "outputs/tensorboard/trial-r0-1/train/events.out.tfevents.trial-r0-1.train"
    assert val.endswith("/validation/events.out.tfevents.trial-r0-1.validation")
    assert len({f.rsplit("/", 1)[1] for f in (*event_files("train"), *event_files("trial[r0,1]"))}) == 4


def test_epoch_log_splits_validation_metrics_into_their_own_run(tmp_path):
    files = [tmp_path / f for f in event_files("train", root="tb")]
    log = EpochLog(files)
    log.start({"loss": [1.0], "val_loss": [1.5]}, learning_rate=0.01)  # epoch 1 restored from a checkpoint
    log.epoch(2, {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.7}, learning_rate=0.005)
    log.close()
    train, val = (_scalars(f) for f in files)
    assert train["epoch_loss"] == [(1, 1.0), (2, 0.5)] and train["epoch_accuracy"] == [(2, 0.800000011920929)]
    assert [v for _, v in train["epoch_learning_rate"]] == [0.009999999776482582, 0.004999999888241291]
    assert val == {"epoch_loss": [(1, 1.5), (2, 0.699999988079071)]}


def test_training_writes_event_files_and_a_resume_rewrites_them_whole(tmp_path, patches):
    (xt, yt), (xv, yv) = patches
    files = [tmp_path / f for f in event_files("train", root="tensorboard")]
    ckpt = tmp_path / "ckpt.keras"

    def model() -> keras.Model:
        seed_everything(0)
        return build_model("small_cnn", (16, 16, 4), 3, width=8, dropout=0.0)

    fit(model(), (xt, yt), (xv, yv), epochs=2, learning_rate=0.01, batch_size=32, checkpoint=ckpt,
        tensorboard=files)
    train, val = (_scalars(f) for f in files)
    assert [s for s, _ in train["epoch_loss"]] == [1, 2] and [s for s, _ in val["epoch_accuracy"]] == [1, 2]
    first = train["epoch_loss"]
    files[0].write_bytes(b"")  # a retry in a fresh condorio sandbox has no event file: the resume rewrites it
    out = fit(model(), (xt, yt), (xv, yv), epochs=3, learning_rate=0.01, batch_size=32, checkpoint=ckpt,
              tensorboard=files)
    assert out["resumed_from_epoch"] == 2
    train = _scalars(files[0])
    assert [s for s, _ in train["epoch_loss"]] == [1, 2, 3] and train["epoch_loss"][:2] == first
    assert np.isfinite([v for _, v in train["epoch_loss"]]).all()


def test_mlwf_tensorboard_serves_a_run_on_loopback(tmp_path):
    import json
    import subprocess
    import sys
    import urllib.request

    run = tmp_path / "run"
    (run / "workflow.yml").parent.mkdir()
    (run / "workflow.yml").write_text("{}")
    log = EpochLog([run / f for f in event_files("train")])
    log.start({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})
    log.close()
    proc = subprocess.Popen([sys.executable, "-m", "mlwf_nb.cli", "tensorboard", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # printed once the server listens
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), line
        with urllib.request.urlopen(url + "data/runs", timeout=30) as resp:
            assert sorted(json.loads(resp.read())) == ["train/train", "train/validation"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mlwf_tensorboard_says_when_there_is_nothing_to_show(tmp_path, capsys):
    from mlwf_nb.cli import main

    (tmp_path / "workflow.yml").write_text("{}")
    assert main(["tensorboard", str(tmp_path)]) == 2
    assert "holds no TensorBoard logs yet" in capsys.readouterr().err
