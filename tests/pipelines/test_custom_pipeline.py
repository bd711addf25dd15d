"""A researcher's own pipeline: declared steps -> Pegasus jobs -> run on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlwf_nb.errors import RunExistsError
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import build_graph, write_run_dir
from tests.steps import custom_steps

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec():
    return RunSpec.from_preset("tiny").with_overrides(["name=numbers"])


def test_steps_become_jobs_with_inputs_and_outputs(tmp_path, spec):
    graph = build_graph(spec, custom_steps.PIPELINE)
    run = write_run_dir(spec, tmp_path / "run", graph=graph)
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    jobs = {j["id"]: j for j in wf["jobs"]}
    assert len(jobs) == 3
    by_name = {}
    for job in jobs.values():
        by_name.setdefault(job["name"], []).append(job)
    (total,) = by_name["sum_numbers"]
    uses = {u["lfn"]: u["type"] for u in total["uses"]}
    assert uses == {"spec.yaml": "input", "work/numbers-0.json": "input", "work/numbers-1.json": "input",
                    "outputs/total.json": "output"}
    assert total["arguments"][:2] == ["step", "tests.steps.custom_steps:sum_numbers"]
    assert "--scale" in total["arguments"] and "2.0" in total["arguments"]
    parents = {d["id"]: set(d["children"]) for d in wf.get("jobDependencies", [])}
    for make in by_name["make_numbers"]:
        assert total["id"] in parents[make["id"]]


def test_run_dir_validates_against_the_official_schemas(tmp_path, spec):
    from mlwf_nb import schemas

    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec, custom_steps.PIPELINE))
    checked = schemas.validate_run_dir(run)
    assert len(checked) == 4


def test_existing_run_dir_is_not_overwritten(tmp_path, spec):
    graph = build_graph(spec, custom_steps.PIPELINE)
    write_run_dir(spec, tmp_path / "run", graph=graph)
    with pytest.raises(RunExistsError, match="already holds a run"):
        write_run_dir(spec, tmp_path / "run", graph=graph)


def test_custom_pipeline_runs_on_the_local_backend(tmp_path, spec, monkeypatch):
    from mlwf_nb.backends import get_backend
    from mlwf_nb.rundir.events import read_events
    from mlwf_nb.runs import Run

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # jobs import tests.steps.custom_steps
    run_dir = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec, custom_steps.PIPELINE))
    get_backend("local").submit(run_dir, jobs=2, wait=True)
    run = Run.attach(run_dir)
    assert run.state == "Success", run.status()
    assert json.loads((run_dir / "outputs/total.json").read_text()) == {"total": 2.0 * (3 + 33)}
    events = list(read_events(run_dir / "events.jsonl"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["type"] == "log" and "total 72.0" in e["message"] for e in events)
    st = run.status()
    assert st["totals"]["succeeded"] >= 3 and st["dags"]["root"]["state"] == "Success"
