"""Synthetic galaxies and chest X-rays: shapes, determinism, class balance, masks; the sample layout."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.galaxy_synth import CLASS_SHARES, GALAXY_CLASSES, draw_galaxies, generate_galaxy_dataset
from mlwf_nb.data.integrity import read_manifest
from mlwf_nb.data.lung_synth import draw_chest_xrays, generate_lung_dataset
from mlwf_nb.data.samples import SampleDataset, split_samples
from mlwf_nb.errors import DatasetError


def test_galaxies_are_deterministic_and_imbalanced():
    X, y = draw_galaxies(400, 32, seed=3)
    X2, y2 = draw_galaxies(400, 32, seed=3)
    assert X.shape == (400, 32, 32, 3) and X.dtype == np.uint8 and y.dtype == np.int32
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(X, draw_galaxies(400, 32, seed=4)[0])
    share = np.bincount(y, minlength=len(GALAXY_CLASSES)) / len(y)
    assert np.all(np.abs(share - np.asarray(CLASS_SHARES) / sum(CLASS_SHARES)) < 0.06)
    assert share.max() > 2.5 * share.min()


def test_galaxy_classes_differ_physically():
    X, y = draw_galaxies(300, 32, seed=0)
    lum = X.astype(float).mean(axis=-1)
    rows, cols = np.mgrid[0:32, 0:32]

    def elongation(img):  # ratio of the principal axes of the bright part of the light distribution
        w = np.where(img > 0.3 * img.max(), img, 0.0)
        w = w / w.sum()
        cy, cx = (w * rows).sum(), (w * cols).sum()
        cov = np.cov(np.stack([(rows - cy).ravel(), (cols - cx).ravel()]), aweights=w.ravel())
        ev = np.linalg.eigvalsh(cov)
        return np.sqrt(ev[1] / max(ev[0], 1e-9))

    el = np.array([elongation(img) for img in lum])
    med = [np.median(el[y == k]) for k in range(5)]
    assert med[2] > 1.5 * med[1] and med[1] > 1.5 * med[0] and med[0] < 1.3  # edge-on > cigar > round
    blue_red = X[..., 2].astype(float).sum(axis=(1, 2)) / (X[..., 0].astype(float).sum(axis=(1, 2)) + 1)
    assert np.median(blue_red[y == 3]) > np.median(blue_red[y == 0])  # spirals are bluer than ellipticals


def test_chest_xrays_have_two_dark_lungs_inside_the_body():
    X, m = draw_chest_xrays(24, 48, 40, seed=1)
    assert X.shape == (24, 48, 40, 1) and m.shape == (24, 48, 40) and set(np.unique(m)) == {0, 1}
    assert np.array_equal(X, draw_chest_xrays(24, 48, 40, seed=1)[0])
    frac = m.mean(axis=(1, 2))
    assert np.all((frac > 0.05) & (frac < 0.45)) and frac.std() > 0.005  # sizes vary
    left, right = m[:, :, :20].sum(axis=(1, 2)), m[:, :, 20:].sum(axis=(1, 2))
    assert np.all(left > 0) and np.all(right > 0)
    img = X[..., 0].astype(float)
    lung_mean = (img * m).sum() / m.sum()
    inside_body = (img > 60) & (m == 0)
    assert lung_mean < img[inside_body].mean() - 40  # lungs are darker than the soft tissue


@pytest.mark.parametrize("bad", [dict(count=0), dict(size=8)])
def test_bad_arguments_name_the_value(bad):
    with pytest.raises(DatasetError, match="draw_galaxies"):
        draw_galaxies(**{"count": 4, "size": 32, **bad})


def test_sample_dataset_round_trip_and_stratified_split(tmp_path):
    generate_galaxy_dataset(tmp_path / "g", count=120, size=32, seed=0)
    ds = SampleDataset.open(tmp_path / "g")
    assert ds.task == "classification" and ds.shape == (32, 32, 3) and ds.count == 120
    assert ds.class_names[3] == "spiral" and len(ds.class_colors) == 5
    _, y = ds.load()
    parts = split_samples(y, 0.5, 0.25, 0.25, seed=1)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(120))
    for k in np.unique(y):  # every class lands in every part in proportion
        n = (y == k).sum()
        assert abs((y[parts["train"]] == k).sum() - n / 2) <= 1
    generate_lung_dataset(tmp_path / "l", count=10, height=32, width=32)
    lds = SampleDataset.open(tmp_path / "l")
    assert lds.task == "segmentation" and lds.load()[1].shape == (10, 32, 32)
    for folder in (tmp_path / "g", tmp_path / "l"):  # the writer publishes the dataset: a manifest of every file
        listed = set(read_manifest(folder / "manifest.json")["files"])
        assert listed == {"dataset.yaml", *(str(p.relative_to(folder)) for p in (folder / "shards").iterdir())}
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "dataset.yaml").write_text("layout: mlwf\n")
    with pytest.raises(DatasetError, match="expected 'samples'"):
        SampleDataset.open(tmp_path / "x")
