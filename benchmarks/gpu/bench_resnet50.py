"""ResNet-50 on one GPU: the toolkit's training path against bare Keras ``fit``, same run.

Runs where only JAX (no TensorFlow) is installed: ``KERAS_BACKEND=jax``. Both
sides train ResNet-50 at 224 x 224 x 4, 5 classes, mixed precision bfloat16,
batch 256, and report images/s over the epochs after the first (compilation
excluded):

* toolkit: :func:`mlwf_nb.ml.train.fit` fed by ``ShardSequence`` over patch
  shards on disk (memory-mapped uint8), with the ``paper`` preset's full
  augmentation (rotation, zoom, shifts and flips: one OpenCV affine warp per uint8
  patch in the loader threads);
* bare: ``model.fit`` fed by a threaded ``keras.utils.PyDataset`` prefetching
  batches from the same uint8 patches in memory, no augmentation.

Target: toolkit >= 0.9x bare. Usage (see README.md)::

    KERAS_BACKEND=jax python -m benchmarks.gpu.bench_resnet50 [--images 6144] [--epochs 3]

Prints one JSON line with both rates and the ratio; exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

SIZE, BANDS, CLASSES, BATCH = 224, 4, 5, 256
TARGET = 0.9


def _timer() -> Any:
    import keras

    class Timer(keras.callbacks.Callback):
        """Wall time of each epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self.t0)

    return Timer()


def _bare_loader(x: np.ndarray, y: np.ndarray, workers: int) -> Any:
    import keras

    class Loader(keras.utils.PyDataset):
        """Prefetching batches of in-memory uint8 patches as float32 (no augmentation)."""

        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=16)
            self.order = np.random.default_rng(0).permutation(len(x))

        def __len__(self) -> int:
            return len(x) // BATCH

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = np.sort(self.order[i * BATCH:(i + 1) * BATCH])
            return x[idx].astype(np.float32), y[idx]

    return Loader()


def _model(seed: int) -> Any:
    import keras

    from mlwf_nb.ml.models import build_model

    keras.utils.set_random_seed(seed)
    return build_model("resnet50", (SIZE, SIZE, BANDS), CLASSES)


def run(images: int, epochs: int, workers: int, tmp: Path) -> dict[str, Any]:
    """Train both ways; return images/s, ratio and the environment."""
    import keras

    from mlwf_nb.data.shards import ShardSequence, write_shard
    from mlwf_nb.ml.train import fit
    from mlwf_nb.spec import RunSpec

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, SIZE, SIZE, BANDS), dtype=np.uint8)
    y = rng.integers(0, CLASSES, images).astype(np.int32)
    prefix = tmp / "shard"
    write_shard(prefix, x, y)
    aug = RunSpec.from_preset("paper").augment
    seq = ShardSequence([str(prefix)], BATCH, shuffle=True, seed=0, augment=aug, workers=workers,
                        max_queue_size=16)
    loader = _loader_rate(seq)
    t_lib = _timer()
    t0 = time.perf_counter()
    fit(_model(0), seq, epochs=epochs, learning_rate=0.1, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
        callbacks=[t_lib])
    lib_total = time.perf_counter() - t0
    bare = _model(0)
    bare.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    t_bare = _timer()
    t0 = time.perf_counter()
    bare.fit(_bare_loader(x, y, workers), epochs=epochs, verbose=0, callbacks=[t_bare])
    bare_total = time.perf_counter() - t0
    n = (images // BATCH) * BATCH
    lib = images / statistics.median(t_lib.times[1:])
    base = n / statistics.median(t_bare.times[1:])
    return {"toolkit_images_per_s": round(lib, 1), "bare_images_per_s": round(base, 1),
            "ratio": round(lib / base, 3), "target": TARGET, "met": lib >= TARGET * base,
            "toolkit_epoch_s": [round(t, 2) for t in t_lib.times], "bare_epoch_s": [round(t, 2) for t in t_bare.times],
            "toolkit_total_s": round(lib_total, 1), "bare_total_s": round(bare_total, 1),
            "augment": {"flip": aug.flip, "rotation": aug.rotation, "zoom": aug.zoom,
                        "shift_height": aug.shift_height, "shift_width": aug.shift_width},
            "loader_one_thread_images_per_s": round(loader, 1),
            "images": images, "batch": BATCH, "policy": "mixed_bfloat16", "workers": workers,
            "backend": keras.backend.backend(), "keras": keras.__version__,
            "tensorflow_loaded": "tensorflow" in sys.modules,
            "devices": _devices()}


def _loader_rate(seq: Any, batches: int = 4) -> float:
    """Images/s of one loader thread making augmented batches, without the model (wall clock).

    ``workers`` such threads run in parallel during ``fit`` (OpenCV and the float conversion
    release the GIL): if this times ``workers`` is below the bare rate, the loader is what limits.
    """
    seq[0]  # maps the shard, imports OpenCV
    t0 = time.perf_counter()
    count = min(batches, len(seq))
    for i in range(count):
        seq[i]
    return count * BATCH / (time.perf_counter() - t0)


def _devices() -> list[str]:
    try:
        import jax

        return [str(d) for d in jax.devices()]
    except ImportError:
        return []


def main(argv: list[str] | None = None) -> int:
    """Command line; prints one JSON line; exit 1 when the ratio misses the target."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu.bench_resnet50", description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=6144, help="patches (multiple of 256; default 6144 = 1.2 GB)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per side; the first is not timed")
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="loader threads")
    ap.add_argument("--size", type=int, default=SIZE, help=argparse.SUPPRESS)  # smoke tests on a CPU
    ap.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    globals().update(SIZE=args.size, BATCH=args.batch)
    if args.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch compiles and is not timed)")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    with tempfile.TemporaryDirectory() as d:
        out = run(args.images, args.epochs, args.workers, Path(d))
    print(json.dumps(out))
    return 0 if out["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
