"""The land-cover workflow end to end on the embedded local backend (tiny preset, smaller still)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlwf_nb.rundir.events import read_events
from mlwf_nb.rundir.jobstate import parse_jobstate, summarize
from mlwf_nb.runs import submit
from mlwf_nb.spec import PRESETS, RunSpec

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "pegasus" / "samples"
# the paper preset's augmentation (rotations, zooms, shifts, flips): trained end to end, and reproducible
PAPER_AUGMENT = [f"augment.{k}={v}" for k, v in PRESETS["paper"]["augment"].items()]
# every land-cover run here runs its jobs as on an HTCondor pool without a shared filesystem: each in an
# empty folder holding only its declared files (execution.staging=sandbox), so a path bug fails here
SMALL = ["dataset.synthetic=true", "dataset.scenes=4", "dataset.height=64", "dataset.width=64", "patches.per_scene=24",
         "train.epochs=2", "evaluate.window_sizes=[16]", "execution.jobs=2", *PAPER_AUGMENT,
         "execution.staging=sandbox"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-data") / "gid"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, data_dir):
    run = submit("tiny", run_dir=tmp_path_factory.mktemp("e2e") / "run", wait=True,
                 overrides=[*SMALL, f"dataset.path={data_dir}", "model.per_source=true", "stretch.write_scenes=true"])
    return run


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_run_succeeds_with_all_outputs(first_run):
    assert first_run.state == "Success", first_run.status()["mlwf"]
    assert RunSpec.from_preset("paper").augment == first_run.spec.augment  # it trained with the paper's
    outputs = first_run.outputs()
    for key in ("model", "metrics", "confusion_matrix", "confusion_matrix_png", "report", "history"):
        assert outputs[key].exists(), key
    assert any(k.startswith("map:") for k in outputs)
    cm = json.loads(outputs["confusion_matrix"].read_text())
    assert len(cm["matrix"]) == len(cm["classes"]) == 5
    assert sum(map(sum, cm["matrix"])) > 0
    metrics = json.loads(outputs["metrics"].read_text())
    assert 0.0 <= metrics["overall_accuracy"] <= 1.0 and "kappa" in metrics
    maps = sorted((first_run.dir / "outputs" / "maps").glob("*.tif"))
    assert maps, "a classification map GeoTIFF per test scene"


def test_test_scenes_are_stretched_in_memory_and_written_for_the_user_only_when_asked(first_run, tmp_path):
    from mlwf_nb.data.raster import open_raster
    from mlwf_nb.steps.landcover import stretched_scene
    from mlwf_nb.steps.landcover_eval import scene_stretches

    assert not (first_run.dir / "work" / "scenes").exists()  # evaluate read the raw scenes
    split = json.loads((first_run.dir / "work" / "split.json").read_text())
    written = sorted((first_run.dir / "outputs" / "scenes").glob("*.stretched.tif"))  # stretch.write_scenes
    assert [p.name.split(".")[0] for p in written] == sorted(split["test"])
    ds = first_run.spec.dataset.path
    for path in written:  # what the user gets is what evaluate computed in memory, bit for bit
        sid = path.name.split(".")[0]
        src = next(s for s in ("GF-1", "GF-2") if sid.startswith(s))
        image, label = Path(ds) / "images" / f"{sid}.tif", Path(ds) / "labels" / f"{sid}.tif"
        (params,) = scene_stretches([first_run.dir / "work" / "stretch" / f"{src}.stretch.json"], [src], [image],
                                    [label], "test")
        raw, u8 = stretched_scene(image, params)
        assert np.array_equal(np.moveaxis(np.asarray(open_raster(path, chunks=False)), 0, -1), u8)
        m = open_raster(first_run.dir / "outputs" / "maps" / f"{sid}.tif")  # the map: the raw scene's georeference
        assert m.rio.crs == raw.rio.crs and m.rio.transform() == raw.rio.transform()


def test_per_source_models_and_the_hybrid_comparison(first_run):
    per = first_run.dir / "outputs" / "per_source"
    assert sorted(p.name for p in per.iterdir()) == ["GF-1", "GF-2"]
    for src in ("GF-1", "GF-2"):
        assert (per / src / f"{src}.model.keras").is_file() and (per / src / f"{src}.history.json").is_file()
    hybrid = json.loads((first_run.dir / "outputs" / "hybrid_comparison.json").read_text())
    assert {r["source"] for r in hybrid["scenes"]} <= {"GF-1", "GF-2"} and hybrid["scenes"]
    assert 0.0 <= hybrid["summary"]["hybrid"]["overall_accuracy"] <= 1.0


def test_events_are_contiguous_and_tell_the_story(first_run):
    events = list(read_events(first_run.events_path))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert events[-1]["state"] == "Success"
    epochs: dict[str, list[int]] = {}  # three trainings: the global model and one per source
    for e in events:
        if e["type"] == "epoch":
            epochs.setdefault(e["job"], []).append(e["epoch"])
    assert list(epochs.values()) == [[1, 2]] * 3, epochs
    kinds = {e.get("kind") for e in events if e["type"] == "artifact"}
    assert {"model", "confusion_matrix", "map", "report"} <= kinds


def test_jobstate_parses_like_the_real_pegasus_samples(first_run):
    ours = parse_jobstate(first_run.dir / "jobstate.log")
    summary = summarize(ours)
    assert all(s.state == "succeeded" and s.exit_code == 0 for s in summary.values()), summary
    if SAMPLES.exists():
        real = parse_jobstate(SAMPLES / "process_wf_success" / "jobstate.log")
        assert {type(r) for r in real} == {type(r) for r in ours}
        ours_states = {r.state for r in ours if not r.is_internal}
        real_states = {r.state for r in real if not r.is_internal}
        assert ours_states <= real_states | {"JOB_ABORTED"}


def test_status_json_from_the_cli(first_run):
    out = subprocess.run([sys.executable, "-m", "mlwf_nb.cli", "status", str(first_run.dir), "--json"],
                         capture_output=True, text=True, check=True)
    st = json.loads(out.stdout)
    assert set(st["totals"]) >= {"unready", "ready", "pre", "queued", "post", "succeeded", "failed",
                                 "percent_done", "total"}
    assert st["dags"]["root"]["state"] == "Success" and st["totals"]["percent_done"] == 100.0


def test_same_seed_same_split_patches_and_confusion_matrix(first_run, tmp_path, data_dir):
    second = submit("tiny", run_dir=tmp_path / "again", wait=True, overrides=[*SMALL, f"dataset.path={data_dir}"])
    assert second.state == "Success"
    for rel in ("work/split.json",):
        assert _digest(first_run.dir / rel) == _digest(second.dir / rel)
    for a in sorted((first_run.dir / "work" / "patches").rglob("*.npy")):
        b = second.dir / a.relative_to(first_run.dir)
        assert np.array_equal(np.load(a), np.load(b)), a.name
    cm1 = json.loads((first_run.dir / "outputs/confusion_matrix.json").read_text())["matrix"]
    cm2 = json.loads((second.dir / "outputs/confusion_matrix.json").read_text())["matrix"]
    assert cm1 == cm2


def test_resume_after_a_failure_skips_finished_jobs(tmp_path, data_dir):
    from mlwf_nb.backends import get_backend
    from mlwf_nb.pipelines import preset_spec
    from mlwf_nb.runs import Run, plan

    run_dir = plan(preset_spec("tiny", "landcover", [*SMALL, f"dataset.path={data_dir}"]), tmp_path / "fails")
    (run_dir / "outputs").mkdir()
    (run_dir / "outputs" / "maps").write_text("a file where evaluate needs a folder")
    get_backend("local").submit(run_dir, wait=True)
    run = Run(run_dir)
    assert run.state == "Failure"
    st = run.status()["mlwf"]
    (failed,) = st["failed_jobs"]
    assert failed.startswith("evaluate_")
    assert st["jobs"][failed]["stderr_tail"]
    before = {name: j["tries"] for name, j in st["jobs"].items()}
    (run_dir / "outputs" / "maps").unlink()
    run.resume(wait=True)
    assert run.state == "Success"
    after = run.status()["mlwf"]["jobs"]
    for name, tries in before.items():
        if name != failed and not name.startswith("stage_in"):
            assert after[name]["tries"] == tries, f"{name} ran again"
    assert after[failed]["tries"] > before[failed]
    events = list(read_events(run.events_path))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
