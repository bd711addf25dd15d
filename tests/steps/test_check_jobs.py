"""Each scene is checked by its own ``check`` job; ``integrity`` reads no scene.

No job reads a scene before its check job passed (every job given a dataset scene file also
gets that scene's check report), and no check job reads more than its own scene: at GID
scale the old single integrity job hashed every file of the dataset (~58 GB) serially.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mlwf_nb import _io
from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.integrity import sha256_file, write_manifest
from mlwf_nb.data.raster import open_raster, write_geotiff
from mlwf_nb.data.split import write_split
from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.errors import IntegrityError, RasterError, StepError
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.checks import check, integrity
from mlwf_nb.steps.landcover import histogram
from mlwf_nb.workflow import build_graph

SCENE_FILE = (".image.tif", ".label.tif")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = generate_dataset(tmp_path_factory.mktemp("checks") / "ds", scenes=4, height=40, width=48,
                            sources=("GF-2", "GF-1"), seed=5)
    write_manifest(root)
    return root


def _scene_of(lfn: str) -> str | None:
    """The scene id of a dataset scene file's LFN (``dataset/GF-2_002.image.tif``), else None."""
    name = Path(lfn).name
    if lfn.startswith("dataset/") and name.endswith(SCENE_FILE):
        return name.split(".")[0]
    return None


@pytest.mark.parametrize("extra", [{}, {"model.per_source": True}, {"stretch.per_source": False}])
def test_every_job_that_reads_a_scene_waits_for_its_check(dataset, extra):
    spec = RunSpec.from_preset("tiny").with_overrides({"dataset.path": str(dataset), **extra})
    g = build_graph(spec)
    checks = [n for n in g.nodes if n.step.name == "check"]
    assert sorted(n.args["scene"] for n in checks) == sorted(s.id for s in Dataset.open(dataset).scenes)
    (integ,) = [n for n in g.nodes if n.step.name == "integrity"]
    assert integ.files("inputs") == ["dataset/dataset.yaml", "dataset/manifest.json"]  # no scene staged
    for node in g.nodes:
        read = {s for s in map(_scene_of, node.files("inputs")) if s}
        if node.step.name == "check":
            assert read == {node.args["scene"]}, node.label  # its own scene only
            assert node.args["keys"] == [f"images/{node.args['scene']}.tif", f"labels/{node.args['scene']}.tif"]
            continue
        reports = set(node.files("inputs"))
        unchecked = sorted(s for s in read if f"work/checks/{s}.check.json" not in reports)
        assert not unchecked, f"{node.label} reads {unchecked} without their check reports"
        for lfn in reports:  # a check report is an output of that scene's check job
            if lfn.startswith("work/checks/"):
                assert g.producer(lfn).args["scene"] == Path(lfn).name.split(".")[0]


def test_float_scenes_fitted_in_one_job_wait_for_every_check(dataset, monkeypatch):
    """Float pixels without stretch.value_range: fit-stretch reads its scenes itself, after their checks."""
    from mlwf_nb.pipelines import landcover

    assert not landcover._counted_per_scene(RunSpec.from_preset("tiny"), "float32")
    monkeypatch.setattr(landcover, "_counted_per_scene", lambda spec, dtype: False)  # as for float32 scenes
    g = build_graph(RunSpec.from_preset("tiny").with_overrides({"dataset.path": str(dataset)}))
    fits = [n for n in g.nodes if n.step.name == "fit-stretch"]
    assert fits and not [n for n in g.nodes if n.step.name == "histogram"]
    for node in fits:
        assert node.args["checks"] == [f"work/checks/{s}.check.json" for s in node.args["scenes"]]
        assert [_scene_of(f) for f in node.args["images"]] == node.args["scenes"]


def test_check_passes_and_records_the_scene(dataset, tmp_path):
    sc = Dataset.open(dataset).scene("GF-2_000")
    report = tmp_path / "GF-2_000.check.json"
    check(dataset / "dataset.yaml", dataset / "manifest.json", [sc.image, sc.label],
          ["images/GF-2_000.tif", "labels/GF-2_000.tif"], scene="GF-2_000", source="GF-2", report=report)
    got = _io.read_json(report)
    assert got["ok"] and got["scene"] == "GF-2_000" and got["checked"] == 2
    assert got["files"]["images/GF-2_000.tif"] == sha256_file(sc.image)


def test_a_changed_scene_fails_its_check_naming_the_file_and_both_digests(dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    img = ds / "images" / "GF-1_001.tif"
    da = open_raster(img, chunks=False)
    arr = np.asarray(da).copy()
    arr[0, 0, 0] += 1  # still a valid GeoTIFF, another digest
    write_geotiff(img, arr, da.rio.crs, da.rio.transform(), blocksize=16)
    expected = _io.read_json(ds / "manifest.json")["files"]["images/GF-1_001.tif"]["sha256"]
    report = tmp_path / "GF-1_001.check.json"
    with pytest.raises(IntegrityError, match=r"images/GF-1_001\.tif.*sha256 is [0-9a-f]{64} but the manifest "
                                             rf"expects {expected}"):
        check(ds / "dataset.yaml", ds / "manifest.json", [img, ds / "labels" / "GF-1_001.tif"],
              ["images/GF-1_001.tif", "labels/GF-1_001.tif"], scene="GF-1_001", source="GF-1", report=report)
    assert not report.exists()
    # the other scenes' checks are untouched by it
    check(ds / "dataset.yaml", ds / "manifest.json", [ds / "images" / "GF-2_000.tif"], ["images/GF-2_000.tif"],
          scene="GF-2_000", source="GF-2", report=tmp_path / "GF-2_000.check.json")


def test_check_reads_the_pixels_against_dataset_yaml(dataset, tmp_path):
    """A three-band image under a four-band description, with a manifest that matches it: the pixel check fails."""
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    img = ds / "images" / "GF-2_000.tif"
    da = open_raster(img, chunks=False)
    write_geotiff(img, np.asarray(da)[:3], da.rio.crs, da.rio.transform(), blocksize=16)
    write_manifest(ds)
    with pytest.raises(RasterError, match=r"GF-2_000\.tif.* has 3 bands but .* declares 4"):
        check(ds / "dataset.yaml", ds / "manifest.json", [img], ["images/GF-2_000.tif"], scene="GF-2_000",
              source="GF-2", report=tmp_path / "r.json")


def test_integrity_checks_the_description_and_lists_the_scenes(dataset, tmp_path):
    scenes = [s.id for s in Dataset.open(dataset).scenes]
    sources = [s.source for s in Dataset.open(dataset).scenes]
    keys = [f"{d}/{s}.tif" for s in scenes for d in ("images", "labels")]
    integrity(dataset / "dataset.yaml", dataset / "manifest.json", keys, scenes, sources, tmp_path / "i.json")
    got = _io.read_json(tmp_path / "i.json")
    assert [s["id"] for s in got["scenes"]] == scenes and got["checked"] == 1
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    (ds / "dataset.yaml").write_text((ds / "dataset.yaml").read_text() + "\n# edited\n")
    with pytest.raises(IntegrityError, match=r"dataset\.yaml.*sha256 is .* but the manifest expects"):
        integrity(ds / "dataset.yaml", ds / "manifest.json", keys, scenes, sources, tmp_path / "j.json")
    with pytest.raises(StepError, match=r"\['images/nope\.tif'\] are not in the manifest"):
        integrity(dataset / "dataset.yaml", dataset / "manifest.json", ["images/nope.tif"], scenes, sources,
                  tmp_path / "k.json")


def test_a_job_refuses_another_scenes_check_report(dataset, tmp_path):
    sc = Dataset.open(dataset).scene("GF-2_000")
    _io.write_json(tmp_path / "other.check.json", {"ok": True, "scene": "GF-1_001"})
    write_split(tmp_path / "split.json", {"train": ["GF-2_000"], "val": [], "test": []})
    with pytest.raises(StepError, match=r"histogram\[GF-2_000\]: other\.check\.json is the check of scene "
                                        r"'GF-1_001', not of 'GF-2_000'"):
        histogram(RunSpec.from_preset("tiny"), dataset / "dataset.yaml", tmp_path / "split.json", sc.image,
                  tmp_path / "h.npz", scene="GF-2_000", source="GF-2", check=[tmp_path / "other.check.json"])
    assert not (tmp_path / "h.npz").exists()
