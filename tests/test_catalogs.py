"""catalogs: every site preset (with and without a container) writes catalogs that the official
Pegasus 5 schemas accept, with the profiles the Pegasus API spells."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from Pegasus.api import Job, Namespace, Properties, ReplicaCatalog, Transformation

from mlwf_nb import catalogs, schemas
from mlwf_nb.errors import WorkflowError
from mlwf_nb.spec import ExecutionSpec

SCHEMA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "pegasus" / "schema"
STEPS = ["integrity", "split", "fit_stretch", "preprocess", "train", "evaluate"]
needs_schemas = pytest.mark.skipif(
    not (Path(os.environ.get(schemas.ENV_SCHEMAS) or SCHEMA_DIR) / "wf-5.0.yml").is_file(),
    reason=f"official Pegasus schemas not found at {SCHEMA_DIR} (set {schemas.ENV_SCHEMAS})")


def _write(tmp_path: Path, ex: ExecutionSpec) -> dict:
    catalogs.build_site_catalog(ex, tmp_path).write(str(tmp_path / "sites.yml"))
    catalogs.build_transformation_catalog(ex, STEPS, "/opt/venv/bin/mlwf", {"train": {"runs_model": True, "gpus": 1}},
                                          run_dir=tmp_path).write(str(tmp_path / "transformations.yml"))
    rc = ReplicaCatalog()
    catalogs.checkpoint_placeholder(rc, "outputs/checkpoints/train.keras", tmp_path)
    rc.write(str(tmp_path / "replicas.yml"))
    catalogs.build_properties(ex, tmp_path).write(str(tmp_path / "pegasus.properties"))
    return {k: schemas.load_yaml(tmp_path / f"{k}.yml") for k in ("sites", "transformations", "replicas")}


@needs_schemas
@pytest.mark.parametrize("container", [None, "docker://ghcr.io/mlwf/job:0.1.0"])
@pytest.mark.parametrize("site", sorted(catalogs.SITE_PRESETS))
def test_preset_catalogs_validate(tmp_path, site, container):
    ex = ExecutionSpec(backend="pegasus", site=site, container=container, gpus=1 if site == "gpus" else 0)
    data = _write(tmp_path, ex)
    for kind in ("sites", "transformations", "replicas"):
        schemas.validate_file(tmp_path / f"{kind}.yml", kind)
    sites = {s["name"]: s for s in data["sites"]["sites"]}
    assert "local" in sites and site in sites
    local_dirs = {d["type"]: d["path"] for d in sites["local"]["directories"]}
    assert local_dirs == {"sharedScratch": str(tmp_path.resolve() / "scratch"),
                          "localStorage": str(tmp_path.resolve())}
    preset = catalogs.SITE_PRESETS[site]
    assert sites[site]["profiles"]["pegasus"]["data.configuration"] == preset.data_configuration
    props = Properties.load(tmp_path / "pegasus.properties")
    assert props["pegasus.data.configuration"] == preset.data_configuration
    assert props["dagman.retry"] == str(ex.retries)
    trs = {t["name"]: t for t in data["transformations"]["transformations"]}
    assert list(trs) == STEPS
    tsites = trs["train"]["sites"]
    assert {s["name"] for s in tsites} == {"local", site}
    if container:
        c = data["transformations"]["containers"][0]
        assert c["image"] == container and c["type"] == "singularity"
        assert all(s["pfn"] == catalogs.CONTAINER_EXECUTABLE and s["container"] == "mlwf" for s in tsites)
        # Pegasus adds --nv / --gpus all itself for jobs with a gpus profile: no container arguments, no mounts
        assert "container.arguments" not in c.get("profiles", {}).get("pegasus", {}) and "mounts" not in c
    else:
        assert all(s["pfn"] == "/opt/venv/bin/mlwf" and s["type"] == "installed" for s in tsites)
    assert trs["train"]["profiles"]["pegasus"]["gpus"] == 1
    assert trs["train"]["profiles"]["condor"]["request_gpus"] == 1


@pytest.mark.parametrize(("site", "style", "conf", "links"), [
    ("local", None, "sharedfs", "true"),
    ("condorpool", "condor", "condorio", None),
    ("sharedfs", "glite", "sharedfs", "true"),
    ("gpus", "condor", "condorio", None),
])
def test_preset_styles(tmp_path, site, style, conf, links):
    ex = ExecutionSpec(site=site)
    sc = catalogs.build_site_catalog(ex, tmp_path)
    s = {x.name: x for x in sc.sites.values()}[site] if isinstance(sc.sites, dict) else None
    assert s is not None
    assert s.profiles["pegasus"].get("style") == style
    assert s.profiles["pegasus"]["data.configuration"] == conf
    props = catalogs.build_properties(ex)
    assert props["pegasus.data.configuration"] == conf
    if links:
        assert props["pegasus.transfer.links"] == links
    if site in ("condorpool", "gpus"):
        assert s.profiles["condor"]["universe"] == "vanilla"


def test_sharedfs_scheduler_and_scratch_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv(catalogs.ENV_BATCH_SCHEDULER, "pbs")
    monkeypatch.setenv(catalogs.ENV_SHARED_SCRATCH, "/lustre/scratch/me")
    sc = catalogs.build_site_catalog(ExecutionSpec(site="sharedfs"), tmp_path)
    s = sc.sites["sharedfs"]
    assert s.profiles["condor"]["grid_resource"] == "batch pbs"
    assert s.grids[0].scheduler_type == "pbs"
    assert s.directories[0].path == "/lustre/scratch/me"
    monkeypatch.setenv(catalogs.ENV_BATCH_SCHEDULER, "cobalt")
    with pytest.raises(WorkflowError, match="MLWF_BATCH_SCHEDULER"):
        catalogs.build_site_catalog(ExecutionSpec(site="sharedfs"), tmp_path)


def test_gpu_containers_get_no_gpu_flags_pegasus_adds_them_itself():
    """The real planner adds --nv / --gpus all for jobs with a gpus profile; ours doubled them."""
    ex = ExecutionSpec(site="gpus", container="docker://x/y:1", container_type="docker", gpus=2)
    tc = catalogs.build_transformation_catalog(ex, ["train"], "/x/mlwf", {"train": {"runs_model": True}})
    c = tc.containers["mlwf"]
    assert c.container_type == "docker"
    assert "container.arguments" not in c.profiles.get("pegasus", {})
    assert tc.transformations["None::train::None"].profiles["pegasus"]["gpus"] == 2


@pytest.mark.parametrize(("site", "gpus", "expect_gpus"), [("gpus", 0, 1), ("gpus", 2, 2), ("condorpool", 0, 0)])
def test_resources_belong_to_steps(site, gpus, expect_gpus):
    """paper on gpus asked 1 GPU, 8 cores and 32 GB for every job, integrity and split included."""
    ex = ExecutionSpec(site=site, cores=8, memory_mb=32768, gpus=gpus)
    model = dict((k, v) for _, k, v in catalogs.resource_profiles({"runs_model": True}, ex))
    light = dict((k, v) for _, k, v in catalogs.resource_profiles({}, ex))
    assert model["cores"] == 8 and model["memory"] == 32768 and model.get("gpus", 0) == expect_gpus
    assert light == {"cores": 1, "memory": catalogs.LIGHT_MEMORY_MB}
    own = dict((k, v) for _, k, v in catalogs.resource_profiles({"cores": 2, "memory_mb": 512}, ex))
    assert own == {"cores": 2, "memory": 512}


def test_sharedfs_site_carries_pegasus_home(tmp_path, monkeypatch):
    """The planner: 'Unable to determine path to kickstart for site sharedfs ... set PEGASUS_HOME'."""
    from mlwf_nb import planner_rules

    monkeypatch.setenv(planner_rules.ENV_PEGASUS_HOME, "/opt/pegasus-5.1")
    s = catalogs.build_site_catalog(ExecutionSpec(site="sharedfs"), tmp_path).sites["sharedfs"]
    assert s.profiles["env"]["PEGASUS_HOME"] == "/opt/pegasus-5.1"
    assert "env" not in catalogs.build_site_catalog(ExecutionSpec(site="condorpool"), tmp_path).sites[
        "condorpool"].profiles


def test_unknown_site_and_relative_executable(tmp_path):
    with pytest.raises(WorkflowError, match="condorpool"):
        catalogs.build_site_catalog(ExecutionSpec(site="cloud"), tmp_path)
    with pytest.raises(WorkflowError, match="absolute"):
        catalogs.build_transformation_catalog(ExecutionSpec(), ["train"], "mlwf")


@needs_schemas
def test_user_site_catalog(tmp_path):
    ex = ExecutionSpec(site="condorpool")
    catalogs.build_site_catalog(ex, tmp_path).write(str(tmp_path / "mine.yml"))
    user = ExecutionSpec(site="condorpool", site_catalog=str(tmp_path / "mine.yml"))
    sc = catalogs.build_site_catalog(user, tmp_path / "other")
    sc.write(str(tmp_path / "sites.yml"))
    assert schemas.load_yaml(tmp_path / "sites.yml")["sites"] == schemas.load_yaml(tmp_path / "mine.yml")["sites"]
    bad = ExecutionSpec(site="hpc", site_catalog=str(tmp_path / "mine.yml"))
    with pytest.raises(WorkflowError, match=r"mine\.yml.*'hpc'"):
        catalogs.build_site_catalog(bad, tmp_path)
    (tmp_path / "broken.yml").write_text('pegasus: "5.0"\nsites:\n  - arch: x86_64\n')
    with pytest.raises(WorkflowError, match=r"broken\.yml"):
        catalogs.build_site_catalog(ExecutionSpec(site="x", site_catalog=str(tmp_path / "broken.yml")),
                                    tmp_path)


def test_job_profiles_names_match_pegasus_api(tmp_path):
    """Keys equal what Job.add_pegasus_profile / add_condor_profile / add_dagman_profile write."""
    ex = ExecutionSpec(site="gpus", retries=3, checkpoint_time=9, maxwalltime=12, cores=4, memory_mb=8192)
    ours = Job(Transformation("train"))
    catalogs.apply_job_profiles(ours, ex, checkpointed=True, resources={"runs_model": True, "gpus": 2})
    ref = Job(Transformation("train"))
    ref.add_pegasus_profile(checkpoint_time=9, max_walltime=12, runtime=720, cores=4, memory="8192 MB", gpus=2)
    ref.add_condor_profile(request_gpus=2)
    ref.add_dagman_profile(retry=3)
    assert {ns: dict(v) for ns, v in ours.profiles.items()} == {ns: dict(v) for ns, v in ref.profiles.items()}


def test_job_profiles_rules(tmp_path):
    ex = ExecutionSpec(site="local", retries=0, checkpoint_time=5)
    prof = catalogs.job_profiles(ex, checkpointed=False)
    keys = {(ns, k) for ns, k, _ in prof}
    assert (Namespace.PEGASUS, "checkpoint.time") not in keys
    assert (Namespace.DAGMAN, "RETRY") not in keys and (Namespace.PEGASUS, "maxwalltime") not in keys
    assert not [p for p in prof if p[0] == Namespace.ENV]  # events go by argument (clustering merges env)
    assert all(v not in (0, "0", None) for _, _, v in prof)
    ck = catalogs.job_profiles(ex, checkpointed=True)
    assert (Namespace.PEGASUS, "checkpoint.time", 5) in ck


def test_retry_is_a_plain_count_without_unless_exit():
    """``dagman RETRY`` is execution.retries alone: no ``UNLESS-EXIT 65`` for bad input (exit 65).

    DAGMan compares UNLESS-EXIT with the node's exit, which is its POST script's, and Pegasus
    puts pegasus-exitcode (exit 0 or 1) after every job, so the clause would never fire
    (docs/cluster.md, 'Checkpoints and time limits'; the requires_pegasus test checks the .dag).
    """
    for n in (1, 2, 5):
        prof = catalogs.job_profiles(ExecutionSpec(site="condorpool", retries=n), checkpointed=True)
        assert [v for ns, k, v in prof if ns == Namespace.DAGMAN] == [n]
        assert type(n) is int and not any("UNLESS" in str(v).upper() for _, _, v in prof)


def test_walltime_reaches_the_batch_system():
    """maxwalltime alone left pegasus_job_runtime = 0 on the batch (glite) site: runtime carries it, in seconds."""
    prof = catalogs.job_profiles(ExecutionSpec(site="sharedfs", maxwalltime=90), checkpointed=False)
    assert (Namespace.PEGASUS, "maxwalltime", 90) in prof and (Namespace.PEGASUS, "runtime", 5400) in prof


def test_checkpoint_placeholder(tmp_path):
    rc = ReplicaCatalog()
    path = catalogs.checkpoint_placeholder(rc, "outputs/checkpoints/train.keras", tmp_path)
    assert path.is_file() and path.stat().st_size == 0
    assert path.parent.parent.parent.name == "placeholders"
    entry = next(iter(rc.entries.values()))
    assert entry.lfn == "outputs/checkpoints/train.keras"
    assert {p.pfn for p in entry.pfns} == {path.as_uri()}
    with pytest.raises(WorkflowError):
        catalogs.checkpoint_placeholder(rc, "../escape.keras", tmp_path)


def test_describe_sites():
    text = catalogs.describe_sites()
    assert catalogs.available_sites() == ["condorpool", "gpus", "local", "sharedfs"]
    for name in catalogs.available_sites():
        assert name in text
