"""schemas: validation against the official Pegasus 5 schemas in ../shared/pegasus/schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from Pegasus.api import File, Job, ReplicaCatalog, Transformation, TransformationCatalog, Workflow

from mlwf_nb import schemas
from mlwf_nb.errors import WorkflowError

SCHEMA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "pegasus" / "schema"


@pytest.fixture(autouse=True)
def _need_schemas(monkeypatch):
    import os

    path = Path(os.environ.get(schemas.ENV_SCHEMAS) or SCHEMA_DIR)
    if not (path / "wf-5.0.yml").is_file():
        pytest.skip(f"official Pegasus schemas not found at {path} (set {schemas.ENV_SCHEMAS})")


def _write_workflow(path: Path) -> Path:
    wf = Workflow("t")
    tr = Transformation("split", site="local", pfn="/usr/bin/mlwf", is_stageable=False)
    job = Job(tr).add_args("step", "split").add_inputs(File("dataset/images/a.tif"))
    job.add_outputs(File("work/split.json"))
    wf.add_jobs(job)
    wf.write(str(path))
    return path


def test_schema_dir_found_and_env_override(tmp_path, monkeypatch):
    assert (schemas.schema_dir() / "common.yml").is_file()
    monkeypatch.setenv(schemas.ENV_SCHEMAS, str(tmp_path))
    with pytest.raises(WorkflowError, match="MLWF_PEGASUS_SCHEMAS"):
        schemas.schema_dir()


def test_workflow_written_by_api_validates(tmp_path):
    schemas.validate_file(_write_workflow(tmp_path / "workflow.yml"), "workflow")


def test_relative_common_refs_are_resolved(tmp_path):
    """A bad profile namespace is checked through tc-5.0.yml -> common.yml#/$defs/profiles."""
    tc = TransformationCatalog().add_transformations(
        Transformation("x", site="local", pfn="/bin/true", is_stageable=False))
    tc.write(str(tmp_path / "transformations.yml"))
    data = schemas.load_yaml(tmp_path / "transformations.yml")
    schemas.validate_data(data, "transformations")
    data["transformations"][0]["profiles"] = {"nonsense": {"a": 1}}
    with pytest.raises(WorkflowError, match=r"\$\.transformations\[0\]\.profiles"):
        schemas.validate_data(data, "transformations", source="tc")


def test_violations_listed_with_json_paths(tmp_path):
    path = tmp_path / "replicas.yml"
    path.write_text('pegasus: "5.0"\nreplicas:\n  - lfn: a\n  - pfns: []\n')
    with pytest.raises(WorkflowError) as err:
        schemas.validate_file(path, "replicas")
    msg = str(err.value)
    assert str(path) in msg and "$.replicas[0]" in msg and "$.replicas[1]" in msg


def test_yaml11_dates_and_yes_kept_as_strings(tmp_path):
    """Pegasus's createdOn timestamp and yes/no scalars must not turn into datetime/bool."""
    path = tmp_path / "replicas.yml"
    path.write_text('x-pegasus: {createdOn: 2020-12-15T10:38:07Z, apiLang: python}\n'
                    'pegasus: "5.0"\nreplicas:\n  - lfn: "yes"\n    pfns: [{site: local, pfn: /x}]\n'
                    '  - lfn: no\n    pfns: [{site: local, pfn: /y}]\n')
    data = schemas.load_yaml(path)
    assert data["x-pegasus"]["createdOn"] == "2020-12-15T10:38:07Z"
    assert data["replicas"][1]["lfn"] == "no"
    schemas.validate_file(path, "replicas")


def test_validate_run_dir(tmp_path):
    from mlwf_nb import catalogs
    from mlwf_nb.spec import ExecutionSpec

    ex = ExecutionSpec()
    _write_workflow(tmp_path / "workflow.yml")
    rc = ReplicaCatalog().add_replica("local", "dataset/images/a.tif", "file:///data/a.tif",
                                      checksum={"sha256": "0" * 64})
    rc.write(str(tmp_path / "replicas.yml"))
    catalogs.build_transformation_catalog(ex, ["split"], "/usr/bin/mlwf").write(
        str(tmp_path / "transformations.yml"))
    catalogs.build_site_catalog(ex, tmp_path).write(str(tmp_path / "sites.yml"))
    assert [p.name for p in schemas.validate_run_dir(tmp_path)] == [
        "workflow.yml", "replicas.yml", "transformations.yml", "sites.yml"]
    (tmp_path / "sites.yml").unlink()
    with pytest.raises(WorkflowError, match=r"sites\.yml"):
        schemas.validate_run_dir(tmp_path)


def test_unknown_kind():
    with pytest.raises(WorkflowError, match="expected one of"):
        schemas.validate_data({}, "dax")
