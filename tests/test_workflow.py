"""The land-cover workflow as one Pegasus workflow: structure, catalogs, schema validity."""

from __future__ import annotations

import pytest
import yaml

from mlwf_nb.spec import PRESETS, RunSpec
from mlwf_nb.workflow import WARM_METADATA, build_graph, write_run_dir

SMALL_DATA = ["dataset.synthetic=true", "dataset.scenes=8", "dataset.height=64", "dataset.width=64",
              "dataset.sources=[GF-2, GF-1]"]
SMALL_PAPER = ["patches.per_scene=8", "split.train=0.5", "split.val=0.25", "split.test=0.25"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "synth"


def _spec(preset, dataset_dir, *extra):
    return RunSpec.from_preset(preset).with_overrides([*SMALL_DATA, f"dataset.path={dataset_dir}", *extra])


def _jobs(run):
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    return wf, {j["id"]: j for j in wf["jobs"]}


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("site", ["local", "condorpool", "sharedfs", "gpus"])
def test_every_preset_and_site_validates(tmp_path, dataset_dir, preset, site, monkeypatch):
    from mlwf_nb import planner_rules, schemas

    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    monkeypatch.setenv(planner_rules.ENV_PEGASUS_HOME, "/opt/pegasus")  # where a cluster's nodes have Pegasus
    extra = ["execution.maxwalltime=60"] if site == "sharedfs" else []  # a batch system needs a walltime
    run = write_run_dir(_spec(preset, dataset_dir, f"execution.site={site}", *extra), tmp_path / "run")
    assert len(schemas.validate_run_dir(run)) == 4


def test_landcover_steps_and_fan_out(tmp_path, dataset_dir):
    spec = _spec("tiny", dataset_dir)
    run = write_run_dir(spec, tmp_path / "run")
    _, jobs = _jobs(run)
    names = [j["name"] for j in jobs.values()]
    assert names.count("integrity") == names.count("split") == names.count("train") == 1
    assert names.count("evaluate") == 1
    assert names.count("check") == 8  # one job per scene: the fan-out
    (evaluate,) = [j for j in jobs.values() if j["name"] == "evaluate"]
    tests = [u["lfn"] for u in evaluate["uses"] if u["lfn"].endswith(".image.tif")]
    assert tests  # evaluate reads the raw test scenes: no preprocess job writes an 8-bit copy of them
    assert names.count("preprocess") == 8 - len(tests)  # one job per training/validation scene
    assert names.count("fit_stretch") == 2  # one stretch per sensor source
    assert 0 < names.count("histogram") < names.count("preprocess")  # a job per training scene
    (train,) = [j for j in jobs.values() if j["name"] == "train"]
    kinds = {u["lfn"]: u["type"] for u in train["uses"]}
    assert kinds["work/checkpoints/train.keras"] == "checkpoint"
    assert kinds["outputs/model.keras"] == "output"
    assert {k.lower(): v for k, v in train["profiles"]["dagman"].items()}["retry"] == spec.execution.retries
    rc = yaml.safe_load((run / "replicas.yml").read_text())
    lfns = {r["lfn"]: r for r in rc["replicas"]}
    images = [k for k in lfns if k.endswith(".image.tif")]
    assert len(images) == 8 and all(lfns[k].get("checksum", {}).get("sha256") for k in images)


def test_warm_or_not_is_in_the_plan_and_the_executor_reads_it_there(tmp_path, dataset_dir):
    from mlwf_nb.backends._executor import _warm_jobs
    from mlwf_nb.backends.local import read_plan
    from mlwf_nb.steps.registry import get_step

    run = write_run_dir(_spec("tiny", dataset_dir, "hpo.strategy=random", "hpo.trials=2", "hpo.cheap_objective=true",
                              "hpo.space=[{name: train.learning_rate, type: float, min: 0.001, max: 0.1}]"),
                        tmp_path / "run")
    _, jobs = _jobs(run)
    marked = {j["id"] for j in jobs.values() if (j.get("metadata") or {}).get(WARM_METADATA) == "true"}
    assert marked == {j["id"] for j in jobs.values() if get_step(j["metadata"]["step"]).warm}
    assert {jobs[i]["name"] for i in marked} == {"train", "evaluate", "hpo_propose", "trial", "hpo_select"}
    plan = read_plan(run)
    assert {pj.id for pj in plan.jobs.values() if pj.warm} == marked == {plan.jobs[n].id for n in _warm_jobs(plan)}


def test_per_source_adds_branches_and_hybrid(tmp_path, dataset_dir):
    run = write_run_dir(_spec("tiny", dataset_dir, "model.per_source=true"), tmp_path / "run")
    _, jobs = _jobs(run)
    names = [j["name"] for j in jobs.values()]
    assert names.count("train") == 3  # global + GF-1 + GF-2
    assert names.count("evaluate_hybrid") == 1
    (hybrid,) = [j for j in jobs.values() if j["name"] == "evaluate_hybrid"]
    inputs = {u["lfn"] for u in hybrid["uses"] if u["type"] == "input"}
    assert {"outputs/model.keras", "outputs/per_source/GF-1/GF-1.model.keras",
            "outputs/per_source/GF-2/GF-2.model.keras"} <= inputs


def test_same_seed_same_plan(tmp_path, dataset_dir):
    spec = _spec("tiny", dataset_dir)
    a = [(n.label, n.args) for n in build_graph(spec).nodes]
    b = [(n.label, n.args) for n in build_graph(spec).nodes]
    assert a == b


def test_checkpoint_time_profile(tmp_path, dataset_dir):
    run = write_run_dir(_spec("tiny", dataset_dir, "execution.checkpoint_time=5",
                              "execution.maxwalltime=30"), tmp_path / "run")
    _, jobs = _jobs(run)
    (train,) = [j for j in jobs.values() if j["name"] == "train"]
    assert train["profiles"]["pegasus"]["checkpoint.time"] == 5
    assert train["profiles"]["pegasus"]["maxwalltime"] == 30
    (split,) = [j for j in jobs.values() if j["name"] == "split"]
    assert "checkpoint.time" not in split.get("profiles", {}).get("pegasus", {})


def test_cluster_size_bundles_short_fan_out_jobs_for_pegasus(tmp_path, dataset_dir):
    from mlwf_nb.backends.pegasus import planner_command

    run = write_run_dir(_spec("tiny", dataset_dir, "execution.cluster_size=4", "execution.backend=pegasus",
                              "execution.site=condorpool"), tmp_path / "run")
    tc = {t["name"]: t for t in yaml.safe_load((run / "transformations.yml").read_text())["transformations"]}
    assert tc["preprocess"]["profiles"]["pegasus"]["clusters.size"] == 4
    assert "clusters.size" not in tc["train"].get("profiles", {}).get("pegasus", {})
    cmd = planner_command(run, plan="pegasus-plan")
    assert "horizontal" in " ".join(cmd)


def test_condorio_jobs_stage_their_events_file_back(tmp_path, dataset_dir):
    run = write_run_dir(_spec("tiny", dataset_dir, "execution.backend=pegasus", "execution.site=condorpool"),
                        tmp_path / "run")
    _, jobs = _jobs(run)
    (train,) = [j for j in jobs.values() if j["name"] == "train"]
    name = f"train_{train['id']}"
    events = f"jobs/{name}/{name}.events.jsonl"  # a basename of its own: clustered jobs share one sandbox
    uses = {u["lfn"]: u for u in train["uses"]}
    assert uses[events]["type"] == "output" and uses[events]["stageOut"] is True
    args = [str(a) for a in train["arguments"]]
    assert args[args.index("--mlwf-events") + 1] == events and args[args.index("--mlwf-job") + 1] == train["id"]
    assert "env" not in train.get("profiles", {})  # Pegasus merges the env profiles of clustered jobs
    local = write_run_dir(_spec("tiny", dataset_dir), tmp_path / "local")
    _, ljobs = _jobs(local)
    assert not any(u["lfn"].startswith("jobs/") for j in ljobs.values() for u in j["uses"])
    assert not any("--mlwf-events" in map(str, j["arguments"]) for j in ljobs.values())


def test_properties_point_at_the_run_catalogs(tmp_path, dataset_dir):
    """pegasus.catalog.replica=YAML without .file made the planner look for ./replicas.yml (and fail)."""
    from Pegasus.api import Properties

    run = write_run_dir(_spec("tiny", dataset_dir, "execution.backend=pegasus", "execution.site=condorpool"),
                        tmp_path / "run")
    props = Properties.load(run / "pegasus.properties")
    assert props["pegasus.catalog.replica"] == "YAML"
    for kind, name in (("replica", "replicas.yml"), ("site", "sites.yml"), ("transformation", "transformations.yml")):
        assert props[f"pegasus.catalog.{kind}.file"] == str(run / name)


def test_plan_writes_no_data(tmp_path):
    """`mlwf plan --preset paper` generated a 17 GB synthetic dataset; planning now refuses and says how."""
    from mlwf_nb.errors import DatasetError
    from mlwf_nb.runs import plan

    spec = RunSpec.from_preset("paper").with_overrides([f"dataset.path={tmp_path / 'nothing'}",
                                                        "dataset.synthetic=true"])
    with pytest.raises(DatasetError, match=r"mlwf synth .*--scenes 150 --size 6800 7200 --seed 0 --sources GF-2"):
        plan(spec, tmp_path / "run")
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "run").exists()


def test_light_steps_ask_for_one_core_and_no_gpu(tmp_path, dataset_dir):
    run = write_run_dir(_spec("paper", dataset_dir, *SMALL_PAPER), tmp_path / "run")
    tc = {t["name"]: t for t in yaml.safe_load((run / "transformations.yml").read_text())["transformations"]}
    for light in ("integrity", "check", "split", "fit_stretch", "preprocess"):
        prof = tc[light]["profiles"]["pegasus"]
        assert prof["cores"] == 1 and "gpus" not in prof, light
    assert tc["train"]["profiles"]["pegasus"]["gpus"] == 1 and tc["train"]["profiles"]["pegasus"]["cores"] == 8
