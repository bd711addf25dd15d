"""keep_heap_top: the loader's fresh batches stop faulting their pages in again every step (glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlwf_nb.ml import train

ROOT = Path(__file__).resolve().parents[2]


def _faults(pad: bool) -> dict:
    """Page faults per batch of the loop fit() runs on TensorFlow (Keras's PyDataset adapter -> tf.data,
    batches made on a loader thread), measured by the benchmark row "loader" in a fresh process: the pad
    is process-wide and cannot be unset."""
    code = ("import json, benchmarks.bench_training as b; "
            f"print('RESULT ' + json.dumps(b.loader_cpu('shards', {pad!r}, n=4096, reps=3)))")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc only")
def test_pad_stops_per_batch_page_faults():
    plain, padded = _faults(False), _faults(True)
    # A 64 x 32 x 32 x 4 float32 batch is 1 MB = 256 pages: without the pad every batch faults them in again.
    if plain["faults"] < 100:
        pytest.skip(f"this libc keeps the loader's pages by itself ({plain['faults']:.0f} faults a batch)")
    assert padded["pad_applied"] == 1.0
    assert padded["faults"] < plain["faults"] / 4, (plain, padded)


def test_keep_heap_top_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: "musl 1.2")
    assert train.keep_heap_top() is False

    def missing(name):
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", missing)
    assert train.keep_heap_top() is False
