"""A checkpoint interrupted at any rename leaves a consistent (model, sidecar) pair.

In-process: the interruption is an exception raised from ``os.replace`` (the renames
of :func:`mlwf_nb._io.atomic_path`), which is where a SIGKILL can fall between the
two files of a checkpoint. The real SIGKILLs are in ``test_train_kills.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mlwf_nb import _io  # noqa: E402
from mlwf_nb.ml.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler swallows it."""


def _model(value: float) -> keras.Model:
    inp = keras.Input((3,))
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(value))(inp)
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("kill_at", [1, 2])
def test_interrupted_save_keeps_a_consistent_pair(tmp_path, monkeypatch, kill_at):
    ck = tmp_path / "ck.keras"
    save_checkpoint(_model(1.0), ck, epoch=1, history={"loss": [1.0]}, seed=0)
    calls = {"n": 0}
    real = os.replace

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        return real(src, dst)

    monkeypatch.setattr(_io.os, "replace", replace)
    with pytest.raises(Killed):
        save_checkpoint(_model(2.0), ck, epoch=2, history={"loss": [1.0, 0.5]}, seed=0)
    monkeypatch.setattr(_io.os, "replace", real)
    model, meta = load_checkpoint(ck)
    kernel = float(np.asarray(model.weights[0].value).ravel()[0])
    assert kernel == {1: 1.0, 2: 2.0}[meta["epoch"]], (meta["epoch"], kernel)
    assert len(meta["history"]["loss"]) == meta["epoch"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_model_no_sidecar_entry_describes_is_ignored(tmp_path):
    ck = tmp_path / "ck.keras"
    save_checkpoint(_model(1.0), ck, epoch=1, history={"loss": [1.0]}, seed=0)
    with open(ck, "r+b") as fh:  # a foreign model under the final name
        fh.seek(40)
        fh.write(b"\0\0\0\0")
    assert load_checkpoint(ck) is None  # logged and ignored: training starts over, never crashes
