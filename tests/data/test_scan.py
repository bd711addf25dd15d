"""One read per scene gives what the two passes gave: the same stretch, the same patches bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.integrity import sha256_file
from mlwf_nb.data.patches import crop_windows, patches_from_crops, sample_patches, sample_windows
from mlwf_nb.data.scan import (
    read_histograms,
    read_scene,
    read_windows,
    write_histograms,
    write_windows,
)
from mlwf_nb.data.stretch import apply_stretch, band_histograms, fit_histograms, fit_stretch
from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.errors import DatasetError

SIZES, INPUT, N, PURITY = [16, 32, 48], 24, 40, 0.5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan") / "ds"
    generate_dataset(root, scenes=4, height=96, width=112, sources=("GF-2", "GF-1"), seed=2)
    return Dataset.open(root)


def test_read_scene_is_a_read_a_histogram_and_a_digest(dataset):
    scene = dataset.scenes[0]
    got = read_scene(scene.image, histograms=True, nodata=0)
    raw = np.asarray(dataset.open_image(scene.id, chunks=False))
    np.testing.assert_array_equal(got.image, np.moveaxis(raw, 0, -1))
    np.testing.assert_array_equal(got.histograms, band_histograms(raw, nodata=0))
    assert got.sha256 == sha256_file(scene.image)
    bare = read_scene(scene.image, histograms=False, digest=False)
    assert bare.histograms is None and bare.sha256 is None and np.array_equal(bare.image, got.image)


def test_windows_and_histogram_files_round_trip(tmp_path, dataset):
    scene = dataset.scenes[1]
    got = read_scene(scene.image, histograms=True)
    label = np.asarray(dataset.open_label(scene.id))
    wins, drawn = sample_windows(label, SIZES, N, PURITY, True, np.random.default_rng(0), dataset.num_classes)
    crops = crop_windows(got.image, wins)
    write_windows(tmp_path / "s.windows.npz", crops, wins, {"scene": scene.id, "drawn": drawn})
    back, wins2, meta = read_windows(tmp_path / "s.windows.npz")
    assert meta == {"scene": scene.id, "drawn": drawn} and np.array_equal(wins2, wins)
    assert sorted(back) == sorted(crops) and all(np.array_equal(back[s], crops[s]) for s in crops)
    write_histograms(tmp_path / "s.histogram.npz", got.histograms, {"scene": scene.id})
    counts, hmeta = read_histograms(tmp_path / "s.histogram.npz")
    assert np.array_equal(counts, got.histograms) and hmeta == {"scene": scene.id}
    with pytest.raises(DatasetError, match=r"missing.npz.*scan step"):
        read_windows(tmp_path / "missing.npz")


@pytest.mark.parametrize("method", ["optimized_linear", "percentile"])
def test_one_read_per_scene_gives_the_same_stretch_and_every_patch_bit_for_bit(dataset, method):
    """Today's path (fit over the scenes, stretch each scene, sample) against histograms + raw windows."""
    train = dataset.scenes[:3]
    old_params = fit_stretch([dataset.open_image(s.id) for s in train], method=method, nodata=0)
    reads = {s.id: read_scene(s.image, histograms=True, nodata=0) for s in dataset.scenes}
    new_params = fit_histograms([reads[s.id].histograms for s in train], method=method, nodata=0)
    assert new_params.to_dict() == old_params.to_dict()
    total = 0
    for scene in dataset.scenes:  # the held-out scene too: it is stretched with the training scenes' fit
        label = np.asarray(dataset.open_label(scene.id))
        stretched = np.moveaxis(np.asarray(apply_stretch(dataset.open_image(scene.id), old_params)), 0, -1)
        X_old, y_old, _ = sample_patches(stretched, label, SIZES, N, INPUT, PURITY, True,
                                         np.random.default_rng(7), dataset.num_classes)
        wins, _ = sample_windows(label, SIZES, N, PURITY, True, np.random.default_rng(7), dataset.num_classes)
        crops = crop_windows(reads[scene.id].image, wins)
        X_new = patches_from_crops(crops, wins, INPUT, len(dataset.bands),
                                   lambda c: apply_stretch(c, new_params, axis=-1))
        assert X_new.dtype == np.uint8 and X_new.shape == X_old.shape and len(X_new) > 0
        np.testing.assert_array_equal(X_new, X_old)  # every patch, every pixel, every band
        np.testing.assert_array_equal(wins[:, 3] - 1, y_old)
        total += len(X_new)
    assert total >= 3 * N // 2


def test_fit_histograms_refuses_what_fit_stretch_refuses():
    with pytest.raises(DatasetError, match="training split"):
        fit_histograms([])
    with pytest.raises(DatasetError, match="different band counts"):
        fit_histograms([np.ones((3, 65536), np.int64), np.ones((4, 65536), np.int64)])
    with pytest.raises(DatasetError, match="unknown stretch method"):
        fit_histograms([np.ones((3, 65536), np.int64)], method="gamma")
