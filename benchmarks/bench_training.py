"""Training: images/s of the toolkit's train step against bare ``model.fit``; augmentation cost.

Rows:
    training: the ``cpu`` preset's model (small_cnn, width 24, 32 x 32 x 4, batch 64)
        trained through :func:`mlwf_nb.ml.train.fit` on a patch shard read by
        ``ShardSequence`` with the preset's flips, against bare ``model.fit`` on
        the same data in memory (float32, no augmentation), same batch size;
        images/s of the epochs after the first (compilation excluded).
    loader: CPU per batch of the input pipeline alone, as ``fit`` consumes it on the
        TensorFlow backend (Keras's data adapter -> ``tf.data``): ``ShardSequence``
        against Keras's own pipeline over arrays in memory. On a CPU-bound machine
        every ms the loader spends is taken from the train step.
    augment: ``ShardBatches`` batches of 224 x 224 x 4 patches (the ``paper``
        preset's size) with the paper's geometric augmentation (one warp per
        uint8 patch) against flips only (numpy, on uint8) and against the Keras
        rotation/zoom/translation layers, in one loader thread.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import result, row

__all__ = ["ROWS", "bench_training", "bench_loader", "bench_augment", "loader_cpu"]


class _EpochTimer:
    """Keras callback factory: wall time of each epoch."""

    @staticmethod
    def make() -> Any:
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter() - self.t0)

        return Timer()


def _data(n: int, size: int, prefix: Path) -> tuple[np.ndarray, np.ndarray]:
    from mlwf_nb.data.shards import write_shard

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 4), dtype=np.uint8)
    y = rng.integers(0, 5, n).astype(np.int32)
    write_shard(prefix, x, y)
    return x, y


def _rates(n: int, times: list[float]) -> tuple[float, float]:
    """(images/s of the fastest, of the median) epoch after the first (which compiles)."""
    timed = times[1:] or times
    return n / min(timed), n / statistics.median(timed)


@row("training")
def bench_training(quick: bool) -> dict[str, Any]:
    """Images/s of mlwf_nb.ml.train.fit on ShardSequence vs bare model.fit on arrays.

    A first, untimed pair of fits warms the process (graph tracing, oneDNN kernels,
    allocator pools): without it whichever path runs first is 20-40 % slower, which
    is what made this row read 0.7x one run and 1.1x the next. Then 5 rounds of both
    run in alternating order. Each path's figure is its fastest epoch over all rounds
    (epochs 2..E): other work on this shared machine only ever slows an epoch down,
    and one round's median-epoch ratio moved between 0.73 and 1.42 from it.
    """
    import keras

    from mlwf_nb.data.shards import ShardSequence, loader_threads
    from mlwf_nb.ml.models import build_model
    from mlwf_nb.ml.train import fit
    from mlwf_nb.spec import RunSpec

    spec = RunSpec.from_preset("cpu")
    n, epochs, rounds = (512, 2, 1) if quick else (4096, 4, 5)
    size, batch = spec.patches.input_size, spec.train.batch_size
    threads = loader_threads()  # what the train step uses on this machine
    with tempfile.TemporaryDirectory() as d:
        x, y = _data(n, size, Path(d) / "s")
        xf = x.astype(np.float32)

        def model() -> Any:
            keras.utils.set_random_seed(0)
            return build_model(spec.model.name, (size, size, 4), 5, width=spec.model.width,
                               dropout=spec.model.dropout)

        def lib(n_epochs: int) -> tuple[float, float]:
            timer = _EpochTimer.make()
            seq = ShardSequence([str(Path(d) / "s")], batch, shuffle=True, seed=0, augment=spec.augment,
                                workers=threads)
            fit(model(), seq, epochs=n_epochs, learning_rate=spec.train.learning_rate, callbacks=[timer])
            return _rates(n, timer.times)

        def bare(n_epochs: int) -> tuple[float, float]:
            timer = _EpochTimer.make()
            m = model()
            m.compile(optimizer=keras.optimizers.Adam(spec.train.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            m.fit(xf, y, batch_size=batch, epochs=n_epochs, shuffle=True, verbose=0, callbacks=[timer])
            return _rates(n, timer.times)

        lib(1), bare(1)  # warm-up, untimed
        rates: dict[str, list[tuple[float, float]]] = {"lib": [], "bare": []}
        for i in range(rounds):
            for name in (("lib", "bare") if i % 2 == 0 else ("bare", "lib")):
                rates[name].append((lib if name == "lib" else bare)(epochs))
    ratios = [a[0] / b[0] for a, b in zip(rates["lib"], rates["bare"], strict=True)]
    typical = [a[1] / b[1] for a, b in zip(rates["lib"], rates["bare"], strict=True)]
    base, value = max(r[0] for r in rates["bare"]), max(r[0] for r in rates["lib"])
    ratio = value / base
    return result("training", f"images/s, {spec.model.name} w{spec.model.width} {size}px batch {batch}", base, value,
                  "img/s", ">= 0.95x", ratio >= 0.95, ratio=ratio,
                  note=f"{n} images; {rounds} rounds of both paths in alternating order after an untimed warm-up "
                       f"pair; each path's fastest epoch (of epochs 2..{epochs}) over all rounds; per-round ratios "
                       f"of the fastest epochs {[round(r, 2) for r in ratios]} (load average "
                       f"{os.getloadavg()[0]:.1f}); per-round ratios of the median epochs "
                       f"{[round(r, 2) for r in typical]}; value: "
                       "mlwf_nb.ml.train.fit on ShardSequence "
                       f"(memory-mapped shard, flips {spec.augment.flip!r}, {threads} loader thread(s), "
                       "loader_threads()); baseline: bare "
                       "model.fit on float32 arrays in memory, no augmentation; higher is better")


def loader_cpu(kind: str, pad: bool, n: int = 4096, reps: int = 5) -> dict[str, float]:
    """CPU ms, wall ms and page faults per batch of one pipeline alone (run it in a fresh process).

    Each figure is its best over ``reps`` epochs (the first epoch also pays the set-up).

    ``kind``: ``"array"`` (Keras's adapter over float32 arrays, what bare ``fit`` uses),
    or ``"shards"`` / ``"shards-2"`` (``ShardSequence`` with flips, 1 or 2 loader threads).
    ``pad``: apply :func:`mlwf_nb.ml.train.keep_heap_top` first, as ``fit`` does
    (``pad_applied`` says whether it took effect).
    """
    import resource

    from keras.src.trainers.data_adapters import get_data_adapter

    from mlwf_nb.data.shards import ShardSequence
    from mlwf_nb.ml.train import keep_heap_top
    from mlwf_nb.spec import RunSpec

    applied = keep_heap_top() if pad else False
    spec = RunSpec.from_preset("cpu")
    size, batch = spec.patches.input_size, spec.train.batch_size
    best: tuple[float, ...] = (float("inf"), float("inf"), float("inf"))
    with tempfile.TemporaryDirectory() as d:
        x, y = _data(n, size, Path(d) / "s")
        xf = x.astype(np.float32)
        for _ in range(reps):
            if kind == "array":
                adapter = get_data_adapter(xf, y, batch_size=batch, shuffle=True)
            else:
                seq = ShardSequence([str(Path(d) / "s")], batch, shuffle=True, seed=0, augment=spec.augment,
                                    workers=2 if kind == "shards-2" else 1)
                adapter = get_data_adapter(seq, shuffle=False)
            dataset = adapter.get_tf_dataset()
            f0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
            k = sum(1 for _ in dataset)
            epoch = ((time.process_time() - c0) * 1e3 / k, (time.perf_counter() - t0) * 1e3 / k,
                     (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / k)
            best = tuple(min(a, b) for a, b in zip(best, epoch, strict=True))  # each figure's best epoch
    return {"cpu_ms": best[0], "wall_ms": best[1], "faults": best[2], "pad_applied": float(applied)}


def _loader_child(kind: str, pad: bool, quick: bool) -> dict[str, float]:
    code = ("import json, benchmarks.bench_training as b; "
            f"print('RESULT ' + json.dumps(b.loader_cpu({kind!r}, {pad!r}, reps={2 if quick else 5})))")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=str(Path(__file__).resolve().parents[1]))
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT "):]))


@row("loader")
def bench_loader(quick: bool) -> list[dict[str, Any]]:
    """CPU per batch of the toolkit's input pipeline vs Keras's array pipeline (each in a fresh process);
    page faults a batch with the glibc heap pad against without (it was a test, but load moves it)."""
    array = _loader_child("array", True, quick)
    shards = _loader_child("shards", True, quick)
    unpadded = _loader_child("shards", False, quick)
    two = _loader_child("shards-2", True, quick)
    cpu = result("loader", "CPU ms per batch of the input pipeline alone (cpu preset: 64 x 32x32x4, flips)",
                 array["cpu_ms"], shards["cpu_ms"], "ms/batch", "report", None,
                 note=f"value: ShardSequence (1 loader thread) through Keras's TF data adapter, as fit runs it "
                      f"(glibc heap top pad set by ml.train.keep_heap_top), {shards['faults']:.0f} page faults a "
                      f"batch; without the pad {unpadded['cpu_ms']:.2f} ms and {unpadded['faults']:.0f} faults a "
                      f"batch; with 2 loader threads {two['cpu_ms']:.2f} ms; baseline: Keras's own pipeline over "
                      f"float32 arrays in memory (what bare fit uses), {array['faults']:.0f} faults; best of "
                      f"{2 if quick else 5} epochs, each in a fresh process")
    faults = result("loader", "page faults a batch, ShardSequence with the glibc heap pad vs without",
                    unpadded["faults"], shards["faults"], "faults", "< 0.25x",
                    bool(shards["pad_applied"]) and shards["faults"] < unpadded["faults"] / 4,
                    note="keep_heap_top (mallopt M_TOP_PAD 4 MB, as ml.train.fit sets it) vs glibc's default; "
                         "each in a fresh process (the pad is process-wide), best epoch; a 64 x 32x32x4 float32 "
                         "batch is 1 MB = 256 pages")
    return [cpu, faults]


def _keras_layers_batch(batches: Any, layers: list[Any], index: int) -> np.ndarray:
    """Batch ``index`` through the Keras layers, as the loader ran them before the warp (the reference)."""
    x, _ = batches[index]
    seeds = np.random.default_rng([0, 0, index, 1]).integers(0, 2**31 - 1, len(layers))
    out: Any = x
    for layer, seed in zip(layers, seeds, strict=True):
        out = layer.transform_images(out, layer.get_random_transformation(out, training=True, seed=int(seed)),
                                     training=True)
    return np.asarray(out, dtype=np.float32)


@row("augment")
def bench_augment(quick: bool) -> list[dict[str, Any]]:
    """Images/s of one loader thread at 224 px: the paper's geometric warp vs numpy flips vs the Keras layers.

    All three make the same float32 batches from the same memory-mapped uint8 shard, one batch after
    another on one thread (what one Keras loader thread does). The rate is images per CPU second of
    the process (``time.process_time``: it counts TensorFlow's own threads for the layers, and
    waiting for a core on a shared machine does not count). Rounds alternate the three; each figure
    is its best round.
    """
    from mlwf_nb.data.augment import augment_layers
    from mlwf_nb.data.shards import ShardBatches
    from mlwf_nb.spec import AugmentSpec, RunSpec

    paper = RunSpec.from_preset("paper").augment
    flips = AugmentSpec(flip="horizontal_and_vertical")
    n, batch, rounds = (64, 16, 2) if quick else (512, 32, 5)
    keras_n = n // 4  # the layers are ~50x slower: a quarter of the images is enough to time them
    with tempfile.TemporaryDirectory() as d:
        _data(n, 224, Path(d) / "s")
        warp_b = ShardBatches([str(Path(d) / "s")], batch, seed=0, augment=paper)
        flip_b = ShardBatches([str(Path(d) / "s")], batch, seed=0, augment=flips)
        plain_b = ShardBatches([str(Path(d) / "s")], batch, seed=0, augment=None)
        layers = augment_layers(paper, seed=0)
        runs = {"warp": lambda i: warp_b[i], "flips": lambda i: flip_b[i],
                "keras": lambda i: _keras_layers_batch(plain_b, layers, i)}
        for fn in runs.values():
            fn(0)  # warm-up: maps the shard, imports OpenCV, builds the layers
        best: dict[str, float] = dict.fromkeys(runs, 0.0)
        wall: dict[str, float] = dict.fromkeys(runs, 0.0)
        for r in range(rounds):
            for name in (list(runs) if r % 2 == 0 else list(reversed(runs))):
                count = keras_n if name == "keras" else n
                t0, w0 = time.process_time(), time.perf_counter()
                for i in range(count // batch):
                    runs[name](i)
                best[name] = max(best[name], count / (time.process_time() - t0))
                wall[name] = max(wall[name], count / (time.perf_counter() - w0))
    what = (f"rotation {paper.rotation}, zoom {paper.zoom}, shifts {paper.shift_height}/{paper.shift_width}, "
            f"flips {paper.flip!r} (the paper preset)")
    common = (f"one thread making ShardBatches float32 batches of {batch} from a memory-mapped uint8 shard; "
              f"images per CPU second, best of {rounds} alternating rounds (by wall clock: warp "
              f"{wall['warp']:.0f}, flips {wall['flips']:.0f}, Keras layers {wall['keras']:.1f} img/s); load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; higher is better")
    ratio = best["warp"] / best["flips"]
    return [
        result("augment", "images/CPU-s, 224x224x4: full geometric augmentation (one warp a patch) vs flips-only numpy",
               best["flips"], best["warp"], "img/s", ">= 0.5x", ratio >= 0.5,
               note=f"value: {what}, composed into one affine per patch and applied on uint8 by OpenCV warpAffine "
                    f"(bilinear, reflect: each patch reflected into a canvas only as far as its footprint "
                    f"needs, then warped inside it), straight from the memory-mapped row into the float32 "
                    f"batch; baseline: flips only, numpy on uint8; {common}"),
        result("augment", "images/CPU-s, 224x224x4: full geometric augmentation, one warp vs the Keras layers",
               best["keras"], best["warp"], "img/s", "report", None,
               note=f"baseline: the same augmentation through keras.layers RandomFlip, RandomRotation, "
                    f"RandomZoom, RandomTranslation on the float32 batch ({keras_n} images a round; how the "
                    f"loader ran it before); value as in the row above; {common}"),
    ]


ROWS = [bench_training, bench_loader, bench_augment]
