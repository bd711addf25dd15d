"""What the real pegasus-plan refused, checked before planning: each rule with the workflow that broke it.

The refusals were met with the real planner (Pegasus 5.1.2 and 6.0.0-dev, built from the
pegasus-isi/pegasus sources; docs/cluster.md); here the toolkit must refuse the same workflows
itself, before anything is written, saying why and what to do instead.
"""

from __future__ import annotations

import pytest
import yaml

from mlwf_nb import planner_rules
from mlwf_nb.cli import main
from mlwf_nb.pipelines import Graph, preset_spec
from mlwf_nb.planner_rules import PlanRuleError, check, check_graph
from mlwf_nb.spec import ExecutionSpec, RunSpec
from mlwf_nb.workflow import build_graph, write_run_dir

CONDORIO = ExecutionSpec(backend="pegasus", site="condorpool")
SHARED = ExecutionSpec(backend="pegasus", site="local")
SANDBOX = ExecutionSpec(backend="local", site="local", staging="sandbox")
SPACE = [{"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2, "log": True}]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "synth"


def _rules(found):
    return [v.rule for v in found]


# --- unique-basenames: the workflows the real planner refused under condorio ------------------------------

def _old_integrity(g: Graph) -> None:
    """The land-cover scene check before the flat naming: images/ and labels/ of one scene (then in integrity)."""
    g.add("check", "integrity", dataset="dataset/dataset.yaml", manifest="dataset/manifest.json",
          files=["dataset/images/GF-2_002.tif", "dataset/labels/GF-2_002.tif"],
          keys=["images/GF-2_002.tif", "labels/GF-2_002.tif"], scene="GF-2_002", source="GF-2",
          report="work/checks/GF-2_002.check.json")


def _old_hpo_round(g: Graph) -> None:
    """hpo-propose[r1] before: every trial's work/hpo/round-0/trial-<i>/result.json."""
    g.add("hpo-propose", "hpo-propose[r1]", state=["work/hpo/state-r0.json"],
          results=[f"work/hpo/round-0/trial-{i}/result.json" for i in range(2)],
          hp=[f"work/hpo/round-1/trial-{i}/hp.json" for i in range(2)], state_out="work/hpo/state-r1.json", round=1)


def _old_hybrid(g: Graph) -> None:
    """evaluate-hybrid before: outputs/per_source/<src>/model.keras beside outputs/model.keras."""
    g.add("evaluate-hybrid", dataset="dataset/dataset.yaml",
          models=["outputs/per_source/GF-1/model.keras", "outputs/per_source/GF-2/model.keras"],
          global_model="outputs/model.keras", scenes=["dataset/GF-1_003.image.tif"],
          labels=["dataset/GF-1_003.label.tif"], stretch=["work/stretch/GF-1.stretch.json"], scene_stretch=["GF-1"],
          comparison="outputs/hybrid_comparison.json",
          sources=["GF-1", "GF-2"], scene_sources=["GF-1"])


@pytest.mark.parametrize("build", [_old_integrity, _old_hpo_round, _old_hybrid], ids=lambda f: f.__name__[5:])
def test_same_basename_in_one_job_is_refused_under_condorio_and_in_the_sandbox(build):
    g = Graph()
    build(g)
    for execution in (CONDORIO, SANDBOX):
        found = check_graph(g, execution)
        assert set(_rules(found)) == {"unique-basenames"}, found
        assert "share the basename" in found[0].message and "scene and role" in found[0].message
    assert check_graph(g, SHARED) == []  # a shared filesystem keeps folders: the planner accepts it there


def _two_trials(g: Graph, ckpt: str) -> None:
    g.add("hpo-propose", "hpo-propose[r0]", state=[], results=[], hp=["work/hpo/r0-t0.hp.json",
                                                                         "work/hpo/r0-t1.hp.json"],
          state_out="work/hpo/r0.state.json", round=0)
    for i in range(2):
        g.add("trial", f"trial[r0,{i}]", hp=f"work/hpo/r0-t{i}.hp.json", result=f"work/hpo/r0-t{i}.result.json",
              checkpoint=[ckpt.format(i=i)], parents=[], train=[], val=[], dataset=[], tensorboard=[], cheap=True)


def test_clustered_trials_share_one_sandbox():
    """Two trials of one level, clustered (execution.cluster_size), each with its trial-<i>/checkpoint.keras."""
    g = Graph()
    _two_trials(g, "work/hpo/round-0/trial-{i}/checkpoint.keras")
    assert check_graph(g, CONDORIO) == []  # each job alone is fine
    clustered = ExecutionSpec(backend="pegasus", site="condorpool", cluster_size=2)
    (found,) = check_graph(g, clustered)
    assert "cluster of trial jobs" in found.message and "checkpoint.keras" in found.message
    ok = Graph()
    _two_trials(ok, "work/hpo/r0-t{i}.checkpoint.keras")
    assert check_graph(ok, clustered) == []


def test_write_run_dir_refuses_before_writing(tmp_path, dataset_dir, monkeypatch):
    """A pipeline that names files as before fails in `mlwf plan`, not in pegasus-plan; nothing is written."""
    from mlwf_nb.pipelines import Pipeline

    spec = RunSpec.from_preset("tiny").with_overrides({"execution.backend": "pegasus", "execution.site": "condorpool"})
    pipe = Pipeline(name="old-naming", build=lambda s, g: _old_integrity(g))
    with pytest.raises(PlanRuleError, match=r"integrity.*dataset/images/GF-2_002\.tif and dataset/labels/"):
        write_run_dir(spec, tmp_path / "run", graph=build_graph(spec, pipe))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("pipeline", "extra"), [
    ("landcover", {"model.per_source": True, "execution.cluster_size": 3, "hpo.strategy": "hyperband",
                   "hpo.trials": 9, "hpo.parallel": 3}),
    ("landcover", {"model.per_source": True, "hpo.strategy": "bayesian", "hpo.trials": 4, "hpo.parallel": 2,
                   "execution.checkpoint_time": 5, "execution.maxwalltime": 30}),
    ("galaxy", {"execution.cluster_size": 2, "hpo.strategy": "random", "hpo.trials": 4, "hpo.parallel": 2}),
    ("lung", {"execution.cluster_size": 2, "hpo.strategy": "evolutionary", "hpo.trials": 4, "hpo.parallel": 2}),
], ids=["landcover-hyperband-clustered", "landcover-bayesian-checkpoint", "galaxy", "lung"])
def test_every_generated_workflow_has_unique_basenames_per_job_and_cluster(tmp_path, dataset_dir, pipeline, extra):
    path = dataset_dir if pipeline == "landcover" else tmp_path / pipeline
    overrides = {"dataset.path": str(path), "execution.backend": "pegasus", "execution.site": "condorpool",
                 "hpo.space": SPACE, "dataset.synthetic": True, **extra}
    if pipeline == "landcover":
        overrides.update({"dataset.scenes": 8, "dataset.height": 64, "dataset.width": 64,
                          "dataset.sources": ["GF-2", "GF-1"]})
    else:
        overrides["dataset.scenes"] = 60
    spec = preset_spec("tiny", pipeline, overrides)
    graph = build_graph(spec)
    assert check(spec.execution, graph) == []
    groups = planner_rules.job_file_groups(graph, spec.execution)
    if spec.execution.cluster_size:
        assert any(what.startswith("a cluster of trial") for what, _ in groups)
    run = write_run_dir(spec, tmp_path / "run", graph=graph)
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    for job in wf["jobs"]:  # the written jobs too (the events file each condorio job stages back included)
        names = [u["lfn"].rsplit("/", 1)[-1] for u in job["uses"]]
        assert len(names) == len(set(names)), job["id"]


# --- containers, site profiles, walltime ----------------------------------------------------------------

@pytest.mark.parametrize("site", ["local", "sharedfs"])
def test_container_on_a_shared_filesystem_is_refused(site, monkeypatch):
    """Pegasus 6: 'Containers are only supported when the data configuration is condorio or nonsharedfs'."""
    monkeypatch.setenv(planner_rules.ENV_PEGASUS_HOME, "/opt/pegasus")
    ex = ExecutionSpec(backend="pegasus", site=site, container="docker://mlwf/job:0.1.0", maxwalltime=60)
    (found,) = check(ex)
    assert found.rule == "container-data-configuration"
    assert "execution.site=condorpool" in found.message and "unset execution.container" in found.message
    assert check(ExecutionSpec(backend="pegasus", site="condorpool", container="docker://mlwf/job:0.1.0")) == []


def test_sharedfs_needs_pegasus_home_and_a_walltime(monkeypatch, tmp_path):
    monkeypatch.delenv(planner_rules.ENV_PEGASUS_HOME, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pegasus-plan to take the install folder from
    found = check(ExecutionSpec(backend="pegasus", site="sharedfs"))
    assert _rules(found) == ["site-pegasus-home", "batch-walltime"]
    assert planner_rules.ENV_PEGASUS_HOME in found[0].message and "execution.maxwalltime" in found[1].message
    monkeypatch.setenv(planner_rules.ENV_PEGASUS_HOME, "/opt/pegasus")
    assert check(ExecutionSpec(backend="pegasus", site="sharedfs", maxwalltime=120)) == []
    monkeypatch.setenv("MLWF_BATCH_SCHEDULER", "condor")  # an HTCondor pool with a shared filesystem
    assert check(ExecutionSpec(backend="pegasus", site="sharedfs")) == []


def test_pegasus_home_from_the_planner_on_path(monkeypatch, tmp_path):
    bindir = tmp_path / "pegasus-5.1.2" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "pegasus-plan").write_text("#!/bin/sh\n")
    (bindir / "pegasus-plan").chmod(0o755)
    monkeypatch.delenv(planner_rules.ENV_PEGASUS_HOME, raising=False)
    monkeypatch.setenv("PATH", str(bindir))
    assert planner_rules.pegasus_home() == str(tmp_path / "pegasus-5.1.2")


def test_a_user_site_catalog_without_pegasus_home(tmp_path):
    sites = {"pegasus": "5.0", "sites": [{"name": "hpc", "profiles": {"pegasus": {"data.configuration": "sharedfs"}},
                                          "directories": []}]}
    (tmp_path / "sites.yml").write_text(yaml.safe_dump(sites))
    ex = ExecutionSpec(backend="pegasus", site="hpc", site_catalog=str(tmp_path / "sites.yml"))
    (found,) = check(ex)
    assert found.rule == "site-pegasus-home" and "sites.yml" in found.message
    sites["sites"][0]["profiles"]["env"] = {"PEGASUS_HOME": "/opt/pegasus"}
    (tmp_path / "sites.yml").write_text(yaml.safe_dump(sites))
    assert check(ex) == []


def test_cli_validate_and_plan_say_why_and_what_instead(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(planner_rules.ENV_PEGASUS_HOME, "/opt/pegasus")
    sets = ["--set", "execution.site=sharedfs", "--set", "execution.container=docker://mlwf/job:0.1.0",
            "--set", f"dataset.path={tmp_path / 'none'}"]
    assert main(["validate", "--preset", "tiny", "--backend", "pegasus", *sets]) == 2
    err = capsys.readouterr().err
    assert "container-data-configuration" in err and "batch-walltime" in err and "Traceback" not in err
    assert main(["plan", "--preset", "tiny", "--backend", "pegasus", "--out", str(tmp_path / "run"), *sets]) == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "none").exists()
    assert main(["validate", "--preset", "tiny", "--backend", "pegasus", "--set", "execution.site=condorpool",
                 "--set", f"dataset.path={tmp_path / 'none'}"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "condorio" in out and "job files not checked" in out
