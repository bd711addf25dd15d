from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mlwf_nb.data import shards as shards_mod
from mlwf_nb.data.shards import (
    ShardBatches,
    class_counts,
    read_shard,
    shard_paths,
    write_shard,
)
from mlwf_nb.errors import DatasetError
from mlwf_nb.spec import AugmentSpec


def make(tmp_path, name, n, start, cls):
    """Patch i of this shard is filled with value start + i; its label is cls[i]."""
    X = (np.arange(start, start + n, dtype=np.uint8)[:, None, None, None]
         * np.ones((1, 4, 4, 2), np.uint8))
    y = np.asarray(cls, np.int32)
    write_shard(tmp_path / name, X, y, {"scene": name, "source": "GF-2"})
    return str(tmp_path / name)


@pytest.fixture
def prefixes(tmp_path):
    return [make(tmp_path, "a", 5, 0, [0, 1, 1, 2, 0]), make(tmp_path, "b", 3, 5, [2, 2, 1]),
            make(tmp_path, "c", 4, 8, [0, 0, 0, 1])]


def test_write_read_roundtrip(tmp_path, prefixes):
    xp, yp, jp = shard_paths(prefixes[0])
    assert xp.name == "a.x.npy" and yp.name == "a.y.npy" and jp.name == "a.json"
    X, y, meta = read_shard(prefixes[0])
    assert isinstance(X, np.memmap) and X.shape == (5, 4, 4, 2) and y.dtype == np.int32
    assert y.tolist() == [0, 1, 1, 2, 0] and X[3].max() == 3
    assert meta == {"scene": "a", "source": "GF-2", "version": 1, "count": 5, "shape": [4, 4, 2],
                    "dtype": "uint8", "class_counts": {"0": 2, "1": 2, "2": 1}}
    assert not isinstance(read_shard(prefixes[0], mmap=False)[0], np.memmap)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("a")) == [
        "a.json", "a.x.npy", "a.y.npy"]  # no temporaries left


def test_class_counts(prefixes):
    assert class_counts(prefixes) == {0: 5, 1: 4, 2: 3}


def test_bad_inputs(tmp_path, prefixes):
    with pytest.raises(DatasetError, match="uint8"):
        write_shard(tmp_path / "bad", np.zeros((2, 4, 4, 1), np.float32), np.zeros(2))
    with pytest.raises(DatasetError, match=r"nope\.json"):
        read_shard(tmp_path / "nope")
    jp = shard_paths(prefixes[1])[2]
    meta = json.loads(jp.read_text())
    jp.write_text(json.dumps({**meta, "count": 9}))
    with pytest.raises(DatasetError, match=r"b\.x\.npy.*says 9"):
        read_shard(prefixes[1])


def all_batches(seq):
    return [seq[i] for i in range(len(seq))]


def test_batches_cover_everything_once_and_shuffle_per_epoch(prefixes):
    seq = ShardBatches(prefixes, batch_size=5, shuffle=True, seed=0)
    assert len(seq) == 3 and seq.total == 12
    epoch0 = all_batches(seq)
    values = np.concatenate([x[:, 0, 0, 0] for x, _ in epoch0])
    labels = np.concatenate([y for _, y in epoch0])
    assert sorted(np.rint(values).astype(int).tolist()) == list(range(12))
    truth = np.array([0, 1, 1, 2, 0, 2, 2, 1, 0, 0, 0, 1])
    assert (labels == truth[np.rint(values).astype(int)]).all()  # x and y stay paired
    assert epoch0[0][0].dtype == np.float32 and float(epoch0[0][0].max()) <= 255.0  # raw 0..255
    again = ShardBatches(prefixes, batch_size=5, shuffle=True, seed=0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epoch0, all_batches(again), strict=True))
    seq.on_epoch_end()
    epoch1 = np.concatenate([x[:, 0, 0, 0] for x, _ in all_batches(seq)])
    assert not np.array_equal(epoch1, values)
    plain = ShardBatches(prefixes, batch_size=12, shuffle=False)
    assert np.rint(plain[0][0][:, 0, 0, 0]).astype(int).tolist() == list(range(12))
    with pytest.raises(IndexError):
        plain[1]


def test_flip_augmentation_in_numpy(tmp_path):
    X = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1).repeat(32, axis=0)
    write_shard(tmp_path / "f", X, np.zeros(32, np.int32))
    seq = ShardBatches([tmp_path / "f"], 32, seed=1, augment=AugmentSpec(flip="horizontal_and_vertical"))
    x, _ = seq[0]
    base = X[0].astype(np.float32)
    kinds = set()
    for img in x:
        for k, ref in enumerate([base, base[::-1], base[:, ::-1], base[::-1, ::-1]]):
            if np.allclose(img, ref):
                kinds.add(k)
                break
        else:
            raise AssertionError("not a flip of the input")
    assert kinds == {0, 1, 2, 3}
    np.testing.assert_array_equal(x, seq[0][0])  # deterministic per (seed, epoch, batch)


@pytest.mark.parametrize("bands", [4, 3])  # 4 uint8 bands move as one uint32 word; 3 take the plain path
@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flips_match_a_per_sample_reference(tmp_path, bands, mode):
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (40, 6, 5, bands), dtype=np.uint8)
    masks = rng.integers(0, 7, (40, 6, 5)).astype(np.int32)
    write_shard(tmp_path / "s", X, masks)
    seq = ShardBatches([tmp_path / "s"], 16, shuffle=False, seed=3, augment=AugmentSpec(flip=mode))
    seq.set_epoch(2)
    for index in range(len(seq)):
        x, y = seq[index]
        ref_x, ref_y = X[index * 16:(index + 1) * 16].copy(), masks[index * 16:(index + 1) * 16].copy()
        draws = np.random.default_rng([3, 2, index])  # documented: seeded by (seed, epoch, batch)
        for axis, kind in ((1, "horizontal"), (0, "vertical")):
            if kind in mode:
                for i in np.flatnonzero(draws.random(len(ref_x)) < 0.5):
                    ref_x[i] = np.flip(ref_x[i], axis)
                    ref_y[i] = np.flip(ref_y[i], axis)
        np.testing.assert_array_equal(x, ref_x.astype(np.float32))
        np.testing.assert_array_equal(y, ref_y)  # masks flip with their images


def test_geometric_augmentation_depends_only_on_seed_epoch_and_batch(tmp_path):
    """Rotation/shift draws are a function of (seed, epoch, batch), not of the order or thread of the calls.

    Several loader threads call ``__getitem__`` in whatever order they get to it; a
    stateful random generator then hands each batch other draws from run to run, and a
    resumed run other draws than an uninterrupted one.
    """
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    write_shard(tmp_path / "s", rng.integers(0, 256, (48, 12, 12, 4), dtype=np.uint8),
                rng.integers(0, 3, 48).astype(np.int32))
    aug = AugmentSpec(rotation=0.25, flip="horizontal_and_vertical", shift_height=0.1, shift_width=0.1)

    def make():
        return ShardBatches([tmp_path / "s"], 8, seed=7, augment=aug)

    forward = make()
    ref = [forward[i][0] for i in range(len(forward))]
    assert not np.array_equal(ref[0], ref[1])
    backward = make()
    assert all(np.array_equal(backward[i][0], ref[i]) for i in reversed(range(len(backward))))
    with ThreadPoolExecutor(3) as pool:  # concurrent calls, as Keras's loader threads make them
        threaded = make()
        got = list(pool.map(lambda i: threaded[i][0], [5, 0, 3, 1, 4, 2]))
    assert all(np.array_equal(g, ref[i]) for g, i in zip(got, [5, 0, 3, 1, 4, 2], strict=True))
    later = make()
    later.set_epoch(1)
    forward.on_epoch_end()  # epoch 1 of an uninterrupted run
    assert np.array_equal(later[2][0], forward[2][0]) and not np.array_equal(later[2][0], ref[2])


def test_geometric_augmentation_is_the_documented_warp_and_moves_masks(tmp_path):
    from mlwf_nb.data.augment import compose, draw, layer_matrices, warp

    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (20, 12, 10, 4), dtype=np.uint8)
    masks = rng.integers(0, 6, (20, 12, 10)).astype(np.int32)
    write_shard(tmp_path / "s", X, masks)
    aug = AugmentSpec(rotation=0.2, flip="horizontal_and_vertical", zoom=0.1, shift_height=0.1, shift_width=0.1)
    seq = ShardBatches([tmp_path / "s"], 8, shuffle=False, seed=3, augment=aug)
    seq.set_epoch(1)
    x, y = seq[1]
    m = compose(layer_matrices(draw(aug, 8, np.random.default_rng([3, 1, 1, 2])), 12, 10))  # (seed, epoch, batch)
    np.testing.assert_array_equal(x, warp(X[8:16], m).astype(np.float32))
    np.testing.assert_array_equal(y, warp(masks[8:16], m, nearest=True))
    assert x.dtype == np.float32 and y.dtype == np.int32 and not np.array_equal(y, masks[8:16])


def test_loader_threads_by_cores():
    assert [shards_mod.loader_threads(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [1, 1, 1, 1, 2, 4, 4]
    assert shards_mod.loader_threads() >= 1


def test_keras_shard_sequence_trains(prefixes):
    import keras

    ShardSequence = shards_mod.ShardSequence
    seq = ShardSequence(prefixes, batch_size=4, seed=0, augment=AugmentSpec(rotation=0.1, flip="none"))
    assert isinstance(seq, keras.utils.PyDataset) and len(seq) == 3
    x, y = seq[0]
    assert x.shape == (4, 4, 4, 2) and y.shape == (4,)
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(seq, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2


def test_resume_repeats_epoch_order(prefixes):
    import keras

    ShardSequence = shards_mod.ShardSequence

    def orders(initial_epoch, epochs):
        seq = ShardSequence(prefixes, batch_size=4, seed=7, workers=2)
        seen = []
        seq.set_epoch(initial_epoch)
        model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Flatten(), keras.layers.Dense(3)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        class Rec(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                seen.append(seq._order.copy())

        model.fit(seq, epochs=epochs, initial_epoch=initial_epoch, verbose=0, callbacks=[Rec()])
        return seen

    full = orders(0, 3)
    resumed = orders(2, 3)
    assert not np.array_equal(full[0], full[1])
    np.testing.assert_array_equal(resumed[0], full[2])


def test_shards_import_does_not_load_keras():
    import subprocess

    code = ("import sys, mlwf_nb.data.shards as s; s.read_shard_meta; "
            "print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
