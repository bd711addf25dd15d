"""Each training scene is counted in its own ``histogram`` job; ``fit-stretch`` adds their files.

The stretch fitted from the histogram files must be the stretch fitted over the scenes
themselves (parameters equal, so every stretched patch is the same bit for bit), with the
dataset's nodata and with float scenes binned over ``stretch.value_range``. No ``fit-stretch``
job reads a scene any more; float scenes without a value range are the one exception (their
joint range comes first), and the job says so.
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
from mlwf_nb.errors import StepError
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.landcover import fit_stretch, histogram, preprocess
from mlwf_nb.workflow import build_graph
from tests.steps._border import add_nodata_border

SMALL = ["dataset.synthetic=true", "dataset.scenes=6", "dataset.height=48", "dataset.width=48",
         "dataset.sources=[GF-2, GF-1]"]


@pytest.fixture(scope="module")
def bordered(tmp_path_factory) -> Path:
    """Three scenes of one source, two of them framed by a 65535 nodata border (dataset.yaml nodata 65535)."""
    root = generate_dataset(tmp_path_factory.mktemp("hist") / "ds", scenes=3, height=40, width=48,
                            sources=("GF-2",), seed=11)
    return add_nodata_border(root, scenes=2, rows=4)


def _both_fits(root: Path, tmp: Path, spec: RunSpec) -> tuple[dict, dict, list[Path]]:
    """(params fitted from the histogram jobs' files, params fitted over the scenes, the histogram files)."""
    ds = Dataset.open(root)
    ids = [s.id for s in ds.scenes]
    write_split(tmp / "split.json", {"train": ids, "val": [], "test": []})
    hists = [tmp / f"{i}.histogram.npz" for i in ids]
    for sid, hist in zip(ids, hists, strict=True):
        sc = ds.scene(sid)
        histogram(spec, root / "dataset.yaml", tmp / "split.json", sc.image, hist, scene=sid, source=sc.source)
    fit_stretch(spec, root / "dataset.yaml", tmp / "split.json", [], ids, tmp / "from_hist.json",
                histograms=hists)
    fit_stretch(spec, root / "dataset.yaml", tmp / "split.json", [ds.scene(i).image for i in ids], ids,
                tmp / "from_scenes.json")
    return _io.read_json(tmp / "from_hist.json"), _io.read_json(tmp / "from_scenes.json"), hists


@pytest.mark.parametrize("method", ["optimized_linear", "percentile"])
def test_histogram_files_give_the_stretch_and_patches_of_the_scenes(bordered, tmp_path, method):
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.method": method, "stretch.nodata": "dataset",
                                                        "patches.sizes": [8, 16], "patches.input_size": 8,
                                                        "patches.per_scene": 30})
    new, old, _ = _both_fits(bordered, tmp_path, spec)
    assert new == old
    assert new["params"]["extra"]["nodata"] == [65535.0] * 4  # the border is left out of the counts
    assert max(new["params"]["white"]) < 65535
    ds = Dataset.open(bordered)
    sc = ds.scenes[0]
    shards = {}
    for name in ("from_hist", "from_scenes"):
        out = [tmp_path / f"{name}.{ext}" for ext in ("x.npy", "y.npy", "json")]
        preprocess(spec, bordered / "dataset.yaml", sc.image, sc.label, tmp_path / f"{name}.json", out,
                   scene=sc.id, source=sc.source, mode="patches")
        shards[name] = read_shard(str(tmp_path / name))
    assert len(shards["from_hist"][0]) > 0
    np.testing.assert_array_equal(shards["from_hist"][0], shards["from_scenes"][0])  # every patch, bit for bit
    np.testing.assert_array_equal(shards["from_hist"][1], shards["from_scenes"][1])


def test_float_scenes_count_per_scene_with_a_value_range_only(bordered, tmp_path):
    root = shutil.copytree(bordered, tmp_path / "float")
    for path in (root / "images").glob("*.tif"):
        da = open_raster(path, chunks=False)
        arr = np.asarray(da).astype(np.float32) / 1000.0
        arr[arr > 65] = np.nan  # the border: no data in a float scene
        write_geotiff(path, arr, da.rio.crs, da.rio.transform(), blocksize=16)
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    meta.update(dtype="float32", nodata=None)
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta))
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.value_range": [0.0, 4.0]})
    (tmp_path / "a").mkdir()
    new, old, _ = _both_fits(root, tmp_path / "a", spec)
    assert new == old and new["params"]["extra"]["value_range"] == [0.0, 4.0]
    ds = Dataset.open(root)
    sid = ds.scenes[0].id
    with pytest.raises(StepError, match=r"float32 pixels.*stretch.value_range"):
        histogram(RunSpec.from_preset("tiny"), root / "dataset.yaml", tmp_path / "a" / "split.json",
                  ds.scene(sid).image, tmp_path / "x.npz", scene=sid, source="GF-2")


def test_fit_stretch_checks_what_it_is_given(bordered, tmp_path):
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.nodata": "dataset"})
    _, _, hists = _both_fits(bordered, tmp_path, spec)
    ids = [s.id for s in Dataset.open(bordered).scenes]
    split, params = tmp_path / "split.json", tmp_path / "p.json"
    with pytest.raises(StepError, match="order of the scene ids"):
        fit_stretch(spec, bordered / "dataset.yaml", split, [], ids[::-1], params, histograms=hists)
    with pytest.raises(StepError, match="not training scenes"):
        write_split(tmp_path / "held.json", {"train": ids[:2], "val": ids[2:], "test": []})
        histogram(spec, bordered / "dataset.yaml", tmp_path / "held.json", Dataset.open(bordered).scenes[2].image,
                  tmp_path / "h.npz", scene=ids[2], source="GF-2")
    with pytest.raises(StepError, match="not both"):
        fit_stretch(spec, bordered / "dataset.yaml", split, [hists[0]], ids[:1], params, histograms=hists[:1])
    assert not params.exists()


def test_the_workflow_counts_each_training_scene_in_its_own_job(tmp_path):
    spec = RunSpec.from_preset("tiny").with_overrides([*SMALL, f"dataset.path={tmp_path / 'ds'}"])
    g = build_graph(spec)
    by_step: dict[str, list] = {}
    for node in g.nodes:
        by_step.setdefault(node.step.name, []).append(node)
    counted = {n.args["scene"] for n in by_step["histogram"]}
    fitted = [s for n in by_step["fit-stretch"] for s in n.args["scenes"]]
    assert len(by_step["fit-stretch"]) == 2 and sorted(fitted) == sorted(counted) and counted
    for node in by_step["fit-stretch"]:  # no fit job reads a scene: it adds its scenes' histogram files
        assert node.files("inputs") and not [f for f in node.files("inputs") if f.endswith(".tif")]
        assert node.args["histograms"] == [f"work/stretch/{s}.histogram.npz" for s in node.args["scenes"]]
    for node in by_step["histogram"]:
        assert [f for f in node.files("inputs") if f.endswith(".tif")] == [f"dataset/{node.args['scene']}.image.tif"]
