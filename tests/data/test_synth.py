"""The synthetic GID-like dataset: files, georeference, determinism, realism."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from mlwf_nb.data import _synth_cli
from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.integrity import verify
from mlwf_nb.data.synth import CRS_EPSG, SOURCES, generate_dataset, summarize
from mlwf_nb.errors import DatasetError

BUILT, FARM, FOREST, MEADOW, WATER = 1, 2, 3, 4, 5


def _read(root: Path, scene_id: str) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(root / "images" / f"{scene_id}.tif") as img, \
            rasterio.open(root / "labels" / f"{scene_id}.tif") as lab:
        return img.read(), lab.read(1)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 96x96 scenes over three sources, seed 3."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", scenes=6, height=96, width=96,
                            sources=("GF-2", "GF-1", "Sentinel-2A"), seed=3, tile=32)


def test_layout_and_yaml(synth: Path) -> None:
    meta = yaml.safe_load((synth / "dataset.yaml").read_text())
    assert [s["id"] for s in meta["scenes"]] == ["GF-2_000", "GF-1_000", "Sentinel-2A_000",
                                                "GF-2_001", "GF-1_001", "Sentinel-2A_001"]
    assert [c["name"] for c in meta["classes"]] == ["unlabeled", "built-up", "farmland", "forest",
                                                    "meadow", "water"]
    assert meta["sources"][1] == {"name": "GF-1", "pixel_size": 8.0}
    fractions = meta["scenes"][0]["class_fractions"]
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-3)
    assert meta["generator"] == {"name": "mlwf synth", "seed": 3}
    assert verify(synth).ok  # the generator publishes its manifest
    ds = Dataset.open(synth)  # the dataset module's own validation and scene checks
    assert ds.check(raise_on_error=False) == []


def test_rasters_dtype_crs_transform(synth: Path) -> None:
    for scene_id, pixel in [("GF-2_000", 4.0), ("GF-1_001", 8.0), ("Sentinel-2A_000", 10.0)]:
        with rasterio.open(synth / "images" / f"{scene_id}.tif") as img, \
                rasterio.open(synth / "labels" / f"{scene_id}.tif") as lab:
            assert (img.count, img.height, img.width) == (4, 96, 96)
            assert img.dtypes == ("uint16",) * 4 and lab.dtypes == ("uint8",)
            assert img.crs.to_epsg() == CRS_EPSG and lab.crs == img.crs
            assert img.transform == lab.transform
            assert (img.transform.a, -img.transform.e) == (pixel, pixel)
            assert img.nodata == 0 and img.block_shapes[0] == (32, 32)  # tiled
            assert img.descriptions == ("blue", "green", "red", "nir")
            data = img.read()
            assert data.min() >= 1 and data.max() <= 1023  # 10-bit, nodata never inside
            assert np.percentile(data, 1) >= 50


def test_same_seed_identical_other_seed_differs(tmp_path: Path) -> None:
    kw = {"scenes": 2, "height": 64, "width": 80, "sources": ("JL-1",)}
    a = generate_dataset(tmp_path / "a", seed=7, **kw)
    b = generate_dataset(tmp_path / "b", seed=7, **kw)
    c = generate_dataset(tmp_path / "c", seed=8, **kw)
    for sid in ("JL-1_000", "JL-1_001"):
        (ia, la), (ib, lb), (ic, _) = _read(a, sid), _read(b, sid), _read(c, sid)
        assert ia.tobytes() == ib.tobytes() and la.tobytes() == lb.tobytes()
        assert ia.shape == (4, 64, 80) and not np.array_equal(ia, ic)
    assert (a / "dataset.yaml").read_text() == (b / "dataset.yaml").read_text().replace("/b", "/a")


def test_every_class_present_and_borders_unlabeled(synth: Path) -> None:
    labels = np.stack([_read(synth, s)[1] for s in ("GF-2_000", "GF-1_000", "GF-2_001", "GF-1_001")])
    counts = np.bincount(labels.ravel(), minlength=6)
    assert (counts[1:] > 0.01 * labels.size).all(), counts
    assert 0.002 < counts[0] / labels.size < 0.1  # a few unlabeled pixels, as in GID
    lab = labels[0]
    zero = np.argwhere(lab[1:-1, 1:-1] == 0) + 1
    around = [set(lab[y - 1:y + 2, x - 1:x + 2].ravel()) - {0} for y, x in zero]
    assert np.mean([len(s) >= 2 for s in around]) > 0.8  # unlabeled pixels lie on class borders


def test_labels_have_spatial_structure(synth: Path) -> None:
    shares = []
    for sid in ("GF-2_000", "GF-1_000", "Sentinel-2A_000", "GF-2_001", "GF-1_001", "Sentinel-2A_001"):
        lab = _read(synth, sid)[1].astype(np.int16)
        c = lab[1:-1, 1:-1]
        same = (c == lab[:-2, 1:-1]) & (c == lab[2:, 1:-1]) & (c == lab[1:-1, :-2]) & (c == lab[1:-1, 2:])
        shares.append(same.mean())
    # share of pixels whose 4 neighbours all carry the same label (random labels: ~0.001)
    assert np.mean(shares) > 0.8 and min(shares) > 0.7, shares


def test_spectral_signatures(synth: Path) -> None:
    sums = np.zeros((6, 4))
    counts = np.zeros(6)
    for sid in ("GF-2_000", "GF-2_001"):
        img, lab = _read(synth, sid)
        for k in range(1, 6):
            m = lab == k
            sums[k] += img[:, m].sum(axis=1)
            counts[k] += m.sum()
    mean = sums / np.maximum(counts, 1)[:, None]
    nir, red = mean[:, 3], mean[:, 2]
    assert nir[WATER] < 0.5 * nir[FOREST] and nir[WATER] < 0.5 * nir[FARM] and nir[WATER] < red[WATER]
    assert nir[FOREST] > 2.5 * red[FOREST] and nir[FARM] > 1.5 * red[FARM]  # vegetation: NDVI high
    built = mean[BUILT]
    assert built[:3].mean() > mean[[FARM, FOREST, MEADOW, WATER], :3].mean(axis=1).max()  # bright
    assert built.max() / built.min() < 1.2  # flat across the bands
    assert nir[FOREST] > nir[MEADOW]


def test_sources_differ_in_gain_offset_noise(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "g", scenes=2, height=64, width=64, sources=("GF-2", "Sentinel-2A"))
    gf2, s2 = _read(root, "GF-2_000")[0].astype(float), _read(root, "Sentinel-2A_000")[0].astype(float)
    # the same materials through two sensors: Sentinel-2A compresses the range (gain 0.75)
    assert np.ptp(np.percentile(s2, [5, 95])) < 0.9 * np.ptp(np.percentile(gf2, [5, 95]))
    assert SOURCES["GF-2"][0] != SOURCES["Sentinel-2A"][0]
    assert len({v[1:4] for v in SOURCES.values()}) == len(SOURCES)


def test_large_scene_written_in_blocks(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "big", scenes=1, height=1100, width=300, sources=("ZY-3",))
    img, lab = _read(root, "ZY-3_000")
    assert img.shape == (4, 1100, 300) and img.min() >= 1
    # no seam at the block border (row 512): statistics either side agree
    assert abs(img[:, 500:512].mean() - img[:, 512:524].mean()) < 60
    assert set(np.unique(lab)) >= {BUILT, FARM, FOREST, MEADOW}


def test_summarize_reads_yaml(synth: Path) -> None:
    text = summarize(synth)
    assert "6 scenes" in text and "GF-2 2" in text and "96x96 (6)" in text
    assert "farmland" in text and "%" in text
    with pytest.raises(DatasetError, match=r"dataset\.yaml"):
        summarize(synth / "missing")


@pytest.mark.parametrize(("kw", "match"), [
    ({"sources": ("GF-9",)}, "unknown sources"),
    ({"height": 8}, "32x32"),
    ({"tile": 100}, "multiple of 16"),
])
def test_bad_arguments(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        generate_dataset(tmp_path / "x", **{"scenes": 1, "height": 64, "width": 64, **kw})


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="mlwf")
    _synth_cli.add_synth_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", str(tmp_path / "cli"), "--scenes", "2", "--size", "48", "40",
                              "--seed", "1", "--sources", "GF-1", "ZY-3"])
    assert args.func(args) == 0
    assert "2 scenes" in capsys.readouterr().out
    assert _read(tmp_path / "cli", "ZY-3_000")[0].shape == (4, 48, 40)
    bad = parser.parse_args(["synth", str(tmp_path / "bad"), "--sources", "nope"])
    assert bad.func(bad) == 2
    assert "unknown sources" in capsys.readouterr().err
