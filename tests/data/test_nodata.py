"""nodata end to end through the land-cover steps, and float imagery.

A dataset whose scenes carry a 65535 border (dataset.yaml ``nodata: 65535``) must give the same
stretch, and the same 8-bit values on its valid pixels, as the same scenes without the border; the
border becomes 0 in every band with a nodata tag, and never a class in training patches.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlwf_nb import _io
from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.raster import open_raster, write_geotiff
from mlwf_nb.data.shards import read_shard
from mlwf_nb.data.split import write_split
from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.landcover import fit_stretch, preprocess

PAD = 6


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("nodata") / "plain", scenes=2, height=48, width=48,
                            sources=("GF-2",), seed=5)


def _bordered(plain: Path, dst: Path, value: int) -> Path:
    """The same scenes framed by a PAD-pixel border of ``value`` in every band (label 0 there)."""
    shutil.copytree(plain, dst)
    for sub, fill in (("images", value), ("labels", 0)):
        for path in sorted((dst / sub).glob("*.tif")):
            da = open_raster(path, chunks=False)
            arr = np.pad(np.asarray(da), ((0, 0), (PAD, PAD), (PAD, PAD)), constant_values=fill)
            t = da.rio.transform()
            write_geotiff(path, arr, da.rio.crs, t * t.translation(-PAD, -PAD), nodata=None, blocksize=16)
    meta = yaml.safe_load((dst / "dataset.yaml").read_text())
    meta["nodata"] = value
    (dst / "dataset.yaml").write_text(yaml.safe_dump(meta))
    (dst / "manifest.json").unlink()
    return dst


def _fit_and_stretch(root: Path, tmp: Path, spec: RunSpec) -> tuple[dict, np.ndarray, float | None]:
    ds = Dataset.open(root)
    ids = [s.id for s in ds.scenes]
    write_split(tmp / "split.json", {"train": ids, "val": [], "test": []})
    fit_stretch(spec, root / "dataset.yaml", tmp / "split.json", [ds.scene(i).image for i in ids], ids,
                tmp / "stretch.json", source="all")
    out = tmp / f"{ids[0]}.u8.tif"
    sc = ds.scene(ids[0])
    preprocess(spec, root / "dataset.yaml", sc.image, sc.label, tmp / "stretch.json", [out], scene=sc.id,
               source=sc.source, mode="scene")
    da = open_raster(out, chunks=False)
    return _io.read_json(tmp / "stretch.json")["params"], np.asarray(da), da.rio.nodata


def test_a_65535_border_changes_nothing_on_the_valid_pixels(plain, tmp_path):
    spec = RunSpec.from_preset("tiny")
    bordered = _bordered(plain, tmp_path / "bordered", 65535)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p_plain, u8_plain, tag_plain = _fit_and_stretch(plain, tmp_path / "a", spec)  # nodata 0 (never present)
    p_border, u8_border, tag_border = _fit_and_stretch(bordered, tmp_path / "b", spec)
    assert p_border["black"] == p_plain["black"] and p_border["white"] == p_plain["white"]
    assert p_border["extra"]["nodata"] == [65535.0] * 4
    np.testing.assert_array_equal(u8_border[:, PAD:-PAD, PAD:-PAD], u8_plain)
    assert (u8_border[:, :PAD] == 0).all() and (u8_border[:, :, -PAD:] == 0).all()
    assert u8_plain.min() >= 1 and tag_plain == 0 and tag_border == 0  # 0 is reserved for nodata, and tagged


def test_stretch_nodata_null_means_every_value_is_data(plain, tmp_path):
    bordered = _bordered(plain, tmp_path / "bordered", 65535)
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.nodata": None})
    params, u8, tag = _fit_and_stretch(bordered, tmp_path, spec)
    assert "nodata" not in params.get("extra", {}) and tag is None
    border = u8[:, :PAD]
    assert (border > 0).all() and (border == border.flat[0]).all()  # one more (bright) value, no nodata
    assert min(params["white"]) > 65535  # what the 65535 border does to a fit that counts it (issue 16)


def test_nodata_pixels_are_never_a_class_in_patches(plain, tmp_path):
    bordered = _bordered(plain, tmp_path / "bordered", 65535)
    lab = bordered / "labels"
    for path in lab.glob("*.tif"):  # label the border as farmland: the image says it is nodata
        da = open_raster(path, chunks=False)
        arr = np.asarray(da)
        arr[:, :PAD] = 2
        write_geotiff(path, arr, da.rio.crs, da.rio.transform(), blocksize=16)
    spec = RunSpec.from_preset("tiny").with_overrides({"patches.sizes": [8], "patches.input_size": 8,
                                                        "patches.per_scene": 200, "patches.min_purity": 1.0})
    ds = Dataset.open(bordered)
    sid = ds.scenes[0].id
    write_split(tmp_path / "split.json", {"train": [sid], "val": [], "test": []})
    fit_stretch(spec, bordered / "dataset.yaml", tmp_path / "split.json", [ds.scene(sid).image], [sid],
                tmp_path / "s.json")
    out = [tmp_path / f"{sid}.x.npy", tmp_path / f"{sid}.y.npy", tmp_path / f"{sid}.json"]
    preprocess(spec, bordered / "dataset.yaml", ds.scene(sid).image, ds.scene(sid).label, tmp_path / "s.json",
               out, scene=sid, source=ds.scene(sid).source, mode="patches")
    x, _, meta = read_shard(str(tmp_path / sid))
    windows = np.asarray(meta["windows"])
    assert len(windows) and (windows[:, 1] >= PAD).all()  # no pure window on the nodata border
    assert (x.reshape(len(x), -1, 4).max(axis=1) > 0).all()


def test_float_imagery_is_fitted_over_its_own_range(plain, tmp_path):
    root = shutil.copytree(plain, tmp_path / "float")
    for path in (root / "images").glob("*.tif"):
        da = open_raster(path, chunks=False)
        write_geotiff(path, np.asarray(da).astype(np.float32) / 1000.0, da.rio.crs, da.rio.transform(),
                      blocksize=16)
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    meta.update(dtype="float32", nodata=None)
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta))
    Dataset.open(root).check()
    spec = RunSpec.from_preset("tiny")
    params, u8, _ = _fit_and_stretch(root, tmp_path, spec)
    p_int, u8_int, _ = _fit_and_stretch(plain, _io.ensure_dir(tmp_path / "int"), spec.with_overrides(
        {"stretch.nodata": None}))
    lo, hi = params["extra"]["value_range"]
    assert 0 < lo < hi < 1.1
    np.testing.assert_allclose(np.array(params["black"]) * 1000, p_int["black"], atol=(hi - lo) / 65536 * 1000 + 1e-6)
    assert np.abs(u8.astype(int) - u8_int.astype(int)).max() <= 1
    fixed = spec.with_overrides({"stretch.value_range": [0.0, 2.0]})
    params_fixed, _, _ = _fit_and_stretch(root, _io.ensure_dir(tmp_path / "fixed"), fixed)
    assert params_fixed["extra"]["value_range"] == [0.0, 2.0]


def test_void_pixels_are_zero_in_every_band():
    from mlwf_nb.data.nodata import void_pixels

    rng = np.random.default_rng(3)
    bands_first = rng.integers(0, 3, (4, 30, 20), dtype=np.uint8)
    expected = (bands_first == 0).all(axis=0)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(void_pixels(bands_first, axis=0), expected)
    np.testing.assert_array_equal(void_pixels(np.moveaxis(bands_first, 0, -1)), expected)  # the step's view
    np.testing.assert_array_equal(void_pixels(np.ascontiguousarray(np.moveaxis(bands_first, 0, -1))), expected)
    np.testing.assert_array_equal(void_pixels(bands_first[:1], axis=0), bands_first[0] == 0)
