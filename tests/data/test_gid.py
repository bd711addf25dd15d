"""The Gaofen Image Dataset read as downloaded: layout, band order, classes, sources, nothing written."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mlwf_nb.data import gid
from mlwf_nb.data.cache import run_inputs
from mlwf_nb.data.classes import GID5_CLASSES, GID15_CLASSES
from mlwf_nb.data.dataset import Dataset, is_dataset
from mlwf_nb.data.integrity import read_manifest, sha256_file
from mlwf_nb.errors import DatasetWarning
from tests.gid_download import COLOURS, SCENES, write_gid_download


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def download(tmp_path) -> Path:
    return write_gid_download(tmp_path / "Large-scale Classification_5classes", size=32)


def test_a_downloaded_folder_opens_without_dataset_yaml(download):
    before = _listing(download)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # every source declared has scenes: no notice
        ds = Dataset.open(download)
    assert is_dataset(download) and ds.layout == "gid" and "built-in GID description" in ds.where
    assert ds.bands == ["nir", "red", "green", "blue"] and ds.dtype == "uint8" and ds.nodata == 0
    assert ds.true_color_bands == (1, 2, 3) and ds.false_color_bands == (0, 1, 2)  # from the band names
    assert ds.classes == GID5_CLASSES and ds.class_names == ["built-up", "farmland", "forest", "meadow", "water"]
    assert [s.id for s in ds.scenes] == sorted(SCENES) and ds.sources == ["GF-2"]
    first = ds.scene(SCENES[0])
    assert first.label == download / "label_5classes" / f"{SCENES[0]}_label.tif"
    label = np.asarray(ds.open_label(SCENES[0]))
    rgb = np.asarray(Image.open(first.label))
    np.testing.assert_array_equal(np.array(COLOURS, np.uint8)[label], rgb)  # colours -> indices, exactly
    ds.check()
    assert _listing(download) == before  # opening and checking wrote nothing


def test_fifteen_class_labels_and_the_rgb_image_folder(tmp_path):
    root = tmp_path / "fine"
    (root / "image_RGB").mkdir(parents=True)
    (root / "label_15classes").mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8), "RGB").save(root / "image_RGB" / "GF2_a.tif")
    lab = np.zeros((16, 16, 3), np.uint8)
    lab[:8] = GID15_CLASSES[14].color  # lake
    Image.fromarray(lab, "RGB").save(root / "label_15classes" / "GF2_a_label.tif")
    ds = Dataset.open(root)
    assert ds.bands == ["red", "green", "blue"] and ds.true_color_bands == (0, 1, 2)
    assert ds.num_classes == 15 and ds.class_names[12:] == ["river", "lake", "pond"]
    assert set(np.unique(np.asarray(ds.open_label("GF2_a")))) == {0, 14}


@pytest.mark.parametrize(("name", "expected"), [("GF2", "GF-2"), ("gf-2", "GF-2"), ("GF_1", "GF-1"),
                                                ("JL1", "JL-1"), ("ZY3", "ZY-3"), ("Sentinel-2A", "Sentinel-2A")])
def test_sources_are_normalised(name, expected):
    assert gid.normalise_source(name) == expected
    if "_" not in name:
        assert gid.scene_source(f"{name}_PMS1__L1A0001064454-MSS1") == expected


def test_declared_spelling_wins_and_a_source_without_scenes_warns(download):
    (download / "dataset.yaml").write_text("name: gid\nlayout: gid\nbands: [nir, red, green, blue]\ndtype: uint8\n"
                                           "nodata: 0\nclasses: gid-5\nsources: [GF2, GF-1]\n")
    with pytest.warns(DatasetWarning, match=r"source 'GF-1' is declared but no scene has it.*\['GF-2'\]"):
        ds = Dataset.open(download)
    assert ds.sources == ["GF2", "GF-1"] and {s.source for s in ds.scenes} == {"GF2"}  # GF2 = GF-2: one source
    assert ds.scenes_by_source() == {"GF2": sorted(SCENES), "GF-1": []}


def test_run_inputs_live_in_the_user_cache(download, tmp_path, monkeypatch):
    monkeypatch.setenv("MLWF_CACHE", str(tmp_path / "cache"))
    before = _listing(download)
    with pytest.warns(DatasetWarning, match="has no manifest.json"):
        inputs = run_inputs(download)
    assert not inputs.own_description and not inputs.own_manifest
    assert inputs.description.parent == inputs.manifest.parent and str(tmp_path / "cache") in str(inputs.manifest)
    files = read_manifest(inputs.manifest)["files"]
    assert files["dataset.yaml"]["sha256"] == sha256_file(inputs.description)
    assert files[f"image_NirRGB/{SCENES[0]}.tif"]["sha256"] == sha256_file(download / "image_NirRGB" /
                                                                           f"{SCENES[0]}.tif")
    described = yaml.safe_load(inputs.description.read_text())  # a run reads it beside the staged files
    assert described["layout"] == "gid" and described["image_dir"] == "image_NirRGB" and "scenes" not in described
    assert _listing(download) == before  # nothing written into the dataset
    again = run_inputs(download, notify=False)
    assert read_manifest(again.manifest)["files"] == files
