from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from rasterio.transform import from_origin

from mlwf_nb.data.dataset import DEFAULT_CLASSES, ClassInfo, Dataset, write_dataset_yaml
from mlwf_nb.errors import DatasetError, DatasetWarning, RasterError


def test_open_reads_yaml(tiny_dataset):
    ds = Dataset.open(tiny_dataset)
    assert ds.name == "tiny" and ds.layout == "mlwf" and ds.dtype == "uint16" and ds.nodata == 0
    assert ds.bands == ["blue", "green", "red", "nir"]
    assert ds.sources == ["GF-1", "GF-2"]
    assert ds.class_names == ["built-up", "farmland", "forest", "meadow", "water"]
    assert ds.class_colors[0] == (255, 0, 0) and ds.num_classes == 5
    assert ds.scenes_by_source() == {"GF-1": ["GF-1_000", "GF-1_001"], "GF-2": ["GF-2_000", "GF-2_001"]}
    assert ds.scene("GF-1_000").image == tiny_dataset / "images" / "GF-1_000.tif"
    with pytest.raises(DatasetError, match=r"no scene 'x'"):
        ds.scene("x")


def test_open_image_is_lazy_and_label_values(tiny_dataset, geo):
    ds = Dataset.open(tiny_dataset)
    img = ds.open_image("GF-2_001", chunks=16)
    assert img.dims == ("band", "y", "x") and img.shape == (4, 40, 36)
    assert img.chunks is not None and img.chunks[1] == (16, 16, 8)
    lab = ds.open_label("GF-2_001")
    assert lab.dims == ("y", "x") and lab.dtype == np.uint8
    np.testing.assert_array_equal(lab.values, geo.make_label(40, 36, 1))


def test_check_passes(tiny_dataset):
    assert Dataset.open(tiny_dataset).check() == []


def test_not_a_dataset_names_the_path_and_the_ways_out(tmp_path):
    """Missing, empty, a file, a folder of other files: each says what it found, GID and synthetic data."""
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.tif").write_text("x")
    for name, found in (("missing", "does not exist"), ("empty", "is an empty folder"),
                        ("file.tif", "is a file"), ("other", "has no dataset.yaml and no GID image folder")):
        with pytest.raises(DatasetError, match=found) as info:
            Dataset.open(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
        assert "image_NirRGB/" in str(info.value) and "dataset.synthetic: true" in str(info.value)


@pytest.mark.parametrize("text, match", [
    ("name: x\n", "lacks the key"),
    ("[1, 2]\n", "must be a mapping"),
    ("name: x\nbands: [a]\nclasses: [{index: 0, name: u, color: [0,0,0]}, {index: 2, name: b, "
     "color: [1,1,1]}]\nsources: [A]\n", "indices must be 0..1"),
    ("name: x\nbands: [a]\nclasses: [{index: 0, name: u, color: [0,0,0]}, {index: 1, name: b, "
     "color: [1,1,1]}]\nsources: [A]\nscenes: [{id: s, source: B}]\n", "not in sources"),
    ("name: x\nlayout: foo\nbands: [a]\nclasses: []\nsources: []\n", "layout 'foo'"),
    ("name: [x\n", "not valid YAML"),
])
def test_invalid_yaml(tmp_path, text, match):
    (tmp_path / "dataset.yaml").write_text(text)
    with pytest.raises(DatasetError, match=match) as info:
        Dataset.open(tmp_path)
    assert "dataset.yaml" in str(info.value)


def test_create_add_scene_save_roundtrip(tmp_path):
    ds = Dataset.create(tmp_path / "new", "mine", ["GF-2", {"name": "GF-1", "pixel_size": 8.0}])
    assert ds.classes == DEFAULT_CLASSES and ds.scenes == []
    ds.add_scene("a", "GF-2")
    ds.add_scene("b", "GF-1", image="elsewhere/b.tif")
    with pytest.raises(DatasetError, match=r"unknown source"):
        ds.add_scene("c", "ZY-3")
    ds.save()
    again = Dataset.open(tmp_path / "new")
    assert [(s.id, s.source) for s in again.scenes] == [("a", "GF-2"), ("b", "GF-1")]
    assert again.scene("b").image == tmp_path / "new" / "elsewhere" / "b.tif"
    assert again.source_info["GF-1"] == {"pixel_size": 8.0}
    assert again.to_dict() == ds.to_dict()


def test_write_dataset_yaml_validates(tmp_path):
    with pytest.raises(DatasetError):
        write_dataset_yaml(tmp_path, {"name": "x"})
    assert not (tmp_path / "dataset.yaml").exists()
    meta = {"name": "x", "bands": ["b"], "classes": [ClassInfo(0, "u", (0, 0, 0)),
                                                      ClassInfo(1, "w", (0, 0, 255))],
            "sources": ["S"], "scenes": [{"id": "S_1", "source": "S"}]}
    path = write_dataset_yaml(tmp_path, meta)
    assert Dataset.open(path).class_names == ["w"]


# -- check_scene: each problem is a typed error naming the file -----------------------

def _first(ds_root):
    return Dataset.open(ds_root), "GF-2_000"


def test_wrong_band_count(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    geo.write_tif(ds.scene(sid).image, np.ones((3, 40, 36), np.uint16))
    with pytest.raises(RasterError, match=r"GF-2_000\.tif.*3 bands.*declares 4"):
        ds.check_scene(sid)


def test_label_shape_mismatch(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    geo.write_tif(ds.scene(sid).label, np.ones((40, 30), np.uint8))
    with pytest.raises(RasterError, match=r"labels/GF-2_000\.tif.*40x30.*40x36"):
        ds.check_scene(sid)


def test_label_transform_mismatch(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    geo.write_tif(ds.scene(sid).label, np.ones((40, 36), np.uint8), transform=from_origin(0, 0, 4, 4))
    with pytest.raises(RasterError, match=r"labels/GF-2_000\.tif.*transform"):
        ds.check_scene(sid)


def test_label_values_out_of_range(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    lab = geo.make_label(40, 36, 0)
    lab[5, 5] = 9
    geo.write_tif(ds.scene(sid).label, lab)
    with pytest.raises(DatasetError, match=r"labels/GF-2_000\.tif.*class index 9"):
        ds.check_scene(sid)


def test_all_nodata_scene(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    geo.write_tif(ds.scene(sid).image, np.zeros((4, 40, 36), np.uint16), nodata=0)
    with pytest.raises(DatasetError, match=r"images/GF-2_000\.tif.*only nodata"):
        ds.check_scene(sid)


def test_truncated_image_and_check_collects(tiny_dataset, geo):
    ds, sid = _first(tiny_dataset)
    img = ds.scene(sid).image
    img.write_bytes(img.read_bytes()[:-200])
    geo.write_tif(ds.scene("GF-1_001").image, np.ones((2, 40, 36), np.uint16))
    errors = ds.check(raise_on_error=False)
    assert [type(e) for e in errors] == [RasterError, RasterError]
    assert "truncated" in str(errors[0]) and "GF-2_000.tif" in str(errors[0])
    with pytest.raises(DatasetError, match=r"(?s)2 problems.*GF-2_000.*GF-1_001"):
        ds.check()


# -- gid layout --------------------------------------------------------------------------

def test_gid_discovery_and_colour_labels(gid_dataset, geo):
    ds = Dataset.open(gid_dataset)
    assert ds.layout == "gid"
    assert [s.id for s in ds.scenes] == ["GF2_PMS1__L1A0001", "GF2_PMS2__L1A0002"]
    assert {s.source for s in ds.scenes} == {"GF2"}  # the declared spelling
    assert ds.scenes[0].label == gid_dataset / "label_5classes" / "GF2_PMS1__L1A0001_label.tif"
    lab = ds.open_label("GF2_PMS2__L1A0002", chunks=8)
    assert isinstance(lab, xr.DataArray) and lab.dims == ("y", "x") and lab.dtype == np.uint8
    np.testing.assert_array_equal(lab.values, geo.make_label(24, 32, 11))  # RGB -> index round trip
    ds.check()


def test_gid_label_beside_image_and_unknown_colour(tmp_path, geo):
    root = tmp_path / "g"
    geo.write_tif(root / "JL1_a.tif", np.full((4, 16, 16), 7, np.uint16))
    rgb = np.zeros((3, 16, 16), np.uint8)
    rgb[:, :8] = np.array(geo.COLORS[5], np.uint8)[:, None, None]
    rgb[:, 12, 12] = (12, 34, 56)
    geo.write_tif(root / "JL1_a_label.tif", rgb)
    geo.write_yaml(root, [], layout="gid")
    with pytest.warns(DatasetWarning, match=r"source 'GF2' is declared but no scene has it.*\['JL-1'\]"):
        ds = Dataset.open(root)
    assert ds.scene("JL1_a").label == root / "JL1_a_label.tif" and ds.sources == ["GF2", "JL-1"]
    with pytest.raises(DatasetError, match=r"JL1_a_label\.tif.*\(12, 34, 56\) \(1 pixels\)"):
        _ = ds.open_label("JL1_a").values
    with pytest.raises(DatasetError, match=r"JL1_a_label\.tif"):
        ds.check_scene("JL1_a")
