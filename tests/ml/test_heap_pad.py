"""keep_heap_top: the loader's fresh batches stop faulting their pages in again every step (glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlwf_nb.ml import train

# One fresh process per setting: the pad is process-wide and cannot be unset. The loop is what
# fit() runs on TensorFlow: Keras's PyDataset adapter -> tf.data, batches made on a loader thread.
_CHILD = r"""
import json, os, resource, sys, tempfile
import numpy as np
from keras.src.trainers.data_adapters import get_data_adapter
from mlwf_nb.data.shards import ShardSequence, write_shard
from mlwf_nb.ml.train import keep_heap_top
applied = keep_heap_top() if sys.argv[1] == "pad" else None
with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(0)
    write_shard(os.path.join(d, "s"), rng.integers(0, 256, (2048, 32, 32, 4), dtype=np.uint8),
                rng.integers(0, 5, 2048).astype(np.int32))
    faults = []
    for _ in range(2):
        seq = ShardSequence([os.path.join(d, "s")], 64, seed=0, workers=1)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        k = sum(1 for _ in get_data_adapter(seq, shuffle=False).get_tf_dataset())
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / k)
print("RESULT " + json.dumps({"applied": applied, "faults": min(faults)}))
"""


def _faults(mode: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc only")
def test_pad_stops_per_batch_page_faults():
    plain, padded = _faults("plain"), _faults("pad")
    # A 64 x 32 x 32 x 4 float32 batch is 1 MB = 256 pages: without the pad every batch faults them in again.
    if plain["faults"] < 100:
        pytest.skip(f"this libc keeps the loader's pages by itself ({plain['faults']:.0f} faults a batch)")
    assert padded["applied"] is True
    assert padded["faults"] < plain["faults"] / 4, (plain, padded)


def test_keep_heap_top_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: "musl 1.2")
    assert train.keep_heap_top() is False

    def missing(name):
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", missing)
    assert train.keep_heap_top() is False
