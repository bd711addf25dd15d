"""``evaluate`` reads the RAW test scenes and stretches each in memory (issue 18): no 8-bit copy.

The 8-bit pixels the model sees must be, bit for bit, those of the GeoTIFF that ``preprocess``
(mode ``scene``) writes, nodata border included; the metrics the same as evaluating those
GeoTIFFs the way evaluate did before (reference below: the written scene's pixels, its nodata
tag marking the void pixels); the maps keep the raw scene's georeference. The workflow writes
8-bit test scenes only with ``stretch.write_scenes`` (to outputs/scenes/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlwf_nb import _io
from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.raster import open_raster
from mlwf_nb.data.split import write_split
from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.errors import StepError
from mlwf_nb.planner_rules import check_graph
from mlwf_nb.spec import ExecutionSpec, RunSpec
from mlwf_nb.steps.landcover import fit_stretch, preprocess, stretched_scene
from mlwf_nb.steps.landcover_eval import evaluate, evaluate_hybrid, scene_stretches
from mlwf_nb.workflow import build_graph
from tests.steps._border import add_nodata_border

SMALL = ["dataset.synthetic=true", "dataset.scenes=8", "dataset.height=48", "dataset.width=48",
         "dataset.sources=[GF-2, GF-1]"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four scenes of two sources; three framed on top by a 65535 nodata border (dataset.yaml nodata 65535)."""
    root = generate_dataset(tmp_path_factory.mktemp("raw") / "ds", scenes=4, height=40, width=48,
                            sources=("GF-2", "GF-1"), seed=3)
    return add_nodata_border(root, scenes=3, rows=5)


def _fit_per_source(root: Path, tmp: Path, spec: RunSpec) -> dict[str, Path]:
    """One stretch file per source, fitted over all scenes (a split where every scene trains)."""
    ds = Dataset.open(root)
    write_split(tmp / "split.json", {"train": [s.id for s in ds.scenes], "val": [], "test": []})
    files = {}
    for src in sorted({s.source for s in ds.scenes}):
        ids = [s.id for s in ds.scenes if s.source == src]
        files[src] = tmp / f"{src}.stretch.json"
        fit_stretch(spec, root / "dataset.yaml", tmp / "split.json", [ds.scene(i).image for i in ids], ids,
                    files[src], source=src)
    return files


@pytest.mark.parametrize("nodata", ["dataset", None], ids=["nodata-65535", "no-nodata"])
def test_the_in_memory_stretch_is_the_written_scene_bit_for_bit(data, tmp_path, nodata):
    spec = RunSpec.from_preset("tiny").with_overrides({"stretch.nodata": nodata})
    files = _fit_per_source(data, tmp_path, spec)
    ds = Dataset.open(data)
    top: dict[bool, list] = {True: [], False: []}
    for sc in ds.scenes:
        written = tmp_path / f"{sc.id}.stretched.tif"
        preprocess(spec, data / "dataset.yaml", sc.image, sc.label, files[sc.source], [written], scene=sc.id,
                   source=sc.source, mode="scene")
        (params,) = scene_stretches([*files.values()], [sc.source], [sc.image], [sc.label], "test")
        raster, u8 = stretched_scene(sc.image, params)
        on_disk = open_raster(written, chunks=False)
        np.testing.assert_array_equal(u8, np.moveaxis(np.asarray(on_disk), 0, -1))
        assert u8.dtype == np.uint8 and raster.rio.crs == on_disk.rio.crs
        assert raster.rio.transform() == on_disk.rio.transform()
        assert (on_disk.rio.nodata == 0) == (nodata == "dataset")  # the tag evaluate used to read
        top[bool((np.asarray(raster[:, :5]) == 65535).all())] += [u8[:5]]
    assert len(top[True]) == 3 and len(top[False]) == 1  # three scenes with a border, one without
    assert all((t == 0).all() if nodata == "dataset" else (t > 0).all() for t in top[True])  # nodata: 0
    assert all((t > 0).all() for t in top[False])


def _reference_scores(spec, ds, net, written: list[Path], labels: list[Path]):
    """What evaluate computed before: the written 8-bit scenes, nodata from their GeoTIFF tag."""
    from mlwf_nb.data.nodata import void_pixels
    from mlwf_nb.data.patches import class_map
    from mlwf_nb.ml.evaluate import MapScores
    from mlwf_nb.ml.maps import predict_scene
    from mlwf_nb.steps.landcover_eval import _predict_fn

    scores, preds = MapScores(ds.num_classes), []
    e = spec.evaluate
    for path, label in zip(written, labels, strict=True):
        da = open_raster(path, chunks=False)
        img = np.moveaxis(np.asarray(da), 0, -1)
        pred = class_map(predict_scene(_predict_fn(net), img, e.window_sizes, e.stride_fraction,
                                       int(net.input_shape[1]), e.batch_size, e.blend))
        truth = np.asarray(ds.read_label(label, chunks=False))
        if da.rio.nodata is not None:
            void = void_pixels(img)
            truth, pred = np.where(void, 0, truth), np.where(void, 0, pred).astype(np.uint8)
        scores.add(pred, truth)
        preds.append(pred)
    return scores, preds


def test_evaluate_on_raw_scenes_scores_what_it_scored_on_the_8bit_copies(data, tmp_path):
    import keras

    from mlwf_nb.ml.models import build_model

    spec = RunSpec.from_preset("tiny").with_overrides({"evaluate.window_sizes": [16, 32],
                                                        "evaluate.stride_fraction": 0.5})
    files = _fit_per_source(data, tmp_path, spec)
    ds = Dataset.open(data)
    keras.utils.set_random_seed(7)
    net = build_model("small_cnn", (16, 16, 4), ds.num_classes, width=8)
    net.save(tmp_path / "model.keras")
    scenes, labels, sources = ([sc.image for sc in ds.scenes], [sc.label for sc in ds.scenes],
                               [sc.source for sc in ds.scenes])
    written = []
    for sc in ds.scenes:
        written.append(tmp_path / f"{sc.id}.stretched.tif")
        preprocess(spec, data / "dataset.yaml", sc.image, sc.label, files[sc.source], [written[-1]], scene=sc.id,
                   source=sc.source, mode="scene")
    out = _io.ensure_dir(tmp_path / "out")
    maps = [out / f"{sc.id}.{ext}" for sc in ds.scenes for ext in ("tif", "png")]
    evaluate(spec, data / "dataset.yaml", tmp_path / "model.keras", scenes, labels, [*files.values()], sources,
             out / "metrics.json", out / "cm.json", out / "cm.png", maps, out / "report.md")
    reference, preds = _reference_scores(spec, Dataset.describe(data / "dataset.yaml"),
                                         keras.models.load_model(tmp_path / "model.keras", compile=False),
                                         written, labels)
    assert _io.read_json(out / "cm.json")["matrix"] == reference.cm.tolist()
    assert _io.read_json(out / "metrics.json") == reference.metrics(ds.class_names)
    assert reference.cm.sum() > 0
    for sc, pred in zip(ds.scenes, preds, strict=True):  # the map: the raw scene's georeference, same classes
        m, raw = open_raster(out / f"{sc.id}.tif", chunks=False), open_raster(sc.image)
        assert m.rio.crs == raw.rio.crs and m.rio.transform() == raw.rio.transform()
        np.testing.assert_array_equal(np.asarray(m)[0], pred)
    # the hybrid comparison stretches the same way (one read a scene for both models)
    evaluate_hybrid(spec, data / "dataset.yaml", [tmp_path / "model.keras"], tmp_path / "model.keras", scenes,
                    labels, [*files.values()], sources, out / "hybrid.json", sources=["all"],
                    scene_sources=["all"] * len(scenes))
    summary = _io.read_json(out / "hybrid.json")["summary"]
    assert summary["hybrid"] == summary["global"]
    assert summary["global"]["overall_accuracy"] == reference.metrics(ds.class_names)["overall_accuracy"]


def test_scene_stretches_refuses_what_does_not_fit(data, tmp_path):
    spec = RunSpec.from_preset("tiny")
    files = _fit_per_source(data, tmp_path, spec)
    ds = Dataset.open(data)
    sc = ds.scenes[0]
    both = [files["GF-1"], files["GF-2"]]
    with pytest.raises(StepError, match=r"no stretch file for \['JL-1'\]"):
        scene_stretches(both, ["JL-1"], [sc.image], [sc.label], "evaluate")
    with pytest.raises(StepError, match="one label and one stretch source per scene"):
        scene_stretches(both, ["GF-1", "GF-2"], [sc.image], [sc.label], "evaluate")
    with pytest.raises(StepError, match="two stretch files are for source 'GF-1'"):
        scene_stretches([files["GF-1"], files["GF-1"]], ["GF-1"], [sc.image], [sc.label], "evaluate")
    _io.write_json(tmp_path / "bad.json", {"black": [0]})
    with pytest.raises(StepError, match=r"bad\.json is not a fit-stretch file"):
        scene_stretches([tmp_path / "bad.json"], ["GF-1"], [sc.image], [sc.label], "evaluate")
    got = scene_stretches(both, ["GF-2", "GF-1"], [sc.image] * 2, [sc.label] * 2, "evaluate")
    expected = [_io.read_json(files[s])["params"] for s in ("GF-2", "GF-1")]
    assert [p.to_dict() for p in got] == expected and expected[0] != expected[1]


def _by_step(g) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in g.nodes:
        out.setdefault(node.step.name, []).append(node)
    return out


@pytest.mark.parametrize("write_scenes", [False, True])
def test_the_workflow_evaluates_raw_test_scenes(tmp_path, write_scenes):
    spec = RunSpec.from_preset("tiny").with_overrides([*SMALL, f"dataset.path={tmp_path / 'ds'}",
                                                       "model.per_source=true",
                                                       f"stretch.write_scenes={str(write_scenes).lower()}"])
    g = build_graph(spec)
    steps = _by_step(g)
    tests = [s for n in steps["evaluate"][:1] for s in n.args["scenes"]]
    ids = [Path(s).name.split(".")[0] for s in tests]
    assert tests and all(s == f"dataset/{i}.image.tif" for s, i in zip(tests, ids, strict=True))
    scene_jobs = [n for n in steps["preprocess"] if n.args.get("mode") == "scene"]
    if write_scenes:  # an output the user gets, read by no job
        assert sorted(n.args["out"][0] for n in scene_jobs) == sorted(f"outputs/scenes/{i}.stretched.tif"
                                                                        for i in ids)
    else:
        assert scene_jobs == []
    everything = [f for n in g.nodes for f in (*n.files("inputs"), *n.files("outputs"))]
    assert not [f for f in everything if f.startswith("work/scenes/")]
    assert len([f for f in everything if f.endswith(".stretched.tif")]) == (len(ids) if write_scenes else 0)
    fitted = {n.args["source"]: n.args["params"] for n in steps["fit-stretch"]}
    source = {sc.id: sc.source for sc in Dataset.open(tmp_path / "ds").scenes}
    for node in [*steps["evaluate"], *steps["evaluate-hybrid"]]:
        inputs = node.files("inputs")
        assert len(inputs) == len(set(inputs))  # a job lists each file once
        assert not [f for f in inputs if f.endswith(".stretched.tif")]
        assert node.args["stretch"] == [fitted[s] for s in dict.fromkeys(node.args["scene_stretch"])]
        assert len(node.args["scene_stretch"]) == len(node.args["scenes"]) == len(node.args["labels"])
        for scene, src in zip(node.args["scenes"], node.args["scene_stretch"], strict=True):
            own = source[Path(scene).name.split(".")[0]]  # its source's stretch; without one, the first source's
            assert src == (own if own in fitted else sorted(fitted)[0])
    assert len(steps["evaluate"]) == 3 and len(steps["evaluate-hybrid"]) == 1
    assert check_graph(g, ExecutionSpec(backend="pegasus", site="condorpool")) == []
