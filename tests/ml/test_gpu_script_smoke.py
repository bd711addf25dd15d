"""The GPU benchmark (benchmarks/gpu/bench_resnet50.py, run by device_run.sh) still runs end to end.

On this CPU machine, at 32 px and a handful of images, with the TensorFlow backend: the figures
mean nothing, but both sides (toolkit fit on ShardSequence, bare fit on a prefetching PyDataset)
must train, time their epochs and print the JSON line the GPU run will be read from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_resnet50_script_smoke_on_cpu(tmp_path):
    """The prepared device command itself (benchmarks/gpu/device_run.sh), in its SMOKE mode."""
    env = dict(os.environ, SMOKE="1", PYTHON=sys.executable, OUT=str(tmp_path), KERAS_BACKEND="tensorflow")
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu" / "device_run.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]  # 1 = under target: a CPU
    assert "keras 3." in (tmp_path / "env.txt").read_text()
    out = json.loads((tmp_path / "bench_resnet50.json").read_text())
    assert out["toolkit_images_per_s"] > 0 and out["bare_images_per_s"] > 0
    lib, bare = out["toolkit_images_per_s"], out["bare_images_per_s"]
    # the rates are rounded to 0.1 image/s (a few images/s on a CPU), the ratio from the unrounded ones
    slack = (0.05 / lib + 0.05 / bare) * (lib / bare) + 0.0005
    assert abs(out["ratio"] - lib / bare) <= slack, (out["ratio"], lib, bare)
    assert len(out["toolkit_epoch_s"]) == len(out["bare_epoch_s"]) == 2
    assert out["policy"] == "mixed_bfloat16" and out["augment"]["flip"] == "horizontal_and_vertical"
    assert out["augment"]["rotation"] > 0 and out["augment"]["zoom"] > 0  # the paper's full augmentation
    assert out["loader_one_thread_images_per_s"] > 0
