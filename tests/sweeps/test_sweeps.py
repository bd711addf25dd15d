"""Notebook sweeps: one papermill job per combination, in one workflow that plans like any other."""

from __future__ import annotations

import json

import pytest
import yaml

from mlwf_nb.errors import SpecError, StepError
from mlwf_nb.records import RECORD_MIME, read_records, record
from mlwf_nb.steps.notebook import combinations
from mlwf_nb.sweeps import format_results, parse_param, results, sweep, sweep_spec
from mlwf_nb.workflow import build_graph, write_run_dir


def test_params_parse_as_yaml_values():
    assert parse_param("lr=0.001,1e-2") == ("lr", [0.001, 0.01])
    assert parse_param("preset=tiny,cpu") == ("preset", ["tiny", "cpu"])
    assert parse_param("flag=true") == ("flag", [True])
    assert parse_param('overrides=[["a=1"], ["a=2", "b=3"]]') == ("overrides", [["a=1"], ["a=2", "b=3"]])
    for bad in ("lr", "=1,2", "lr="):
        with pytest.raises(SpecError, match="name=value1,value2"):
            parse_param(bad)


def test_combinations_vary_the_last_parameter_fastest(tiny_notebook):
    spec = sweep_spec(tiny_notebook, {"a": [1, 2], "b": ["x", "yy", "z"]})
    combos = combinations(spec.sweep)
    assert len(combos) == 6 and combos[0] == {"a": 1, "b": "x"} and combos[1] == {"a": 1, "b": "yy"}
    assert spec.pipeline == "sweep" and spec.name == "sweep-tiny" and spec.sweep.notebook == str(tiny_notebook)
    with pytest.raises(StepError, match="at least one value"):
        combinations(sweep_spec(tiny_notebook, {"a": []}).sweep)


def test_record_checks_values_and_reads_back_from_outputs():
    assert record("accuracy", 0.91) == 0.91  # outside IPython: checked and returned
    with pytest.raises(SpecError, match="not a finite number"):
        record("loss", float("nan"))
    with pytest.raises(SpecError, match="not JSON data"):
        record("model", object())
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {RECORD_MIME: {"name": "acc", "value": 0.5}}},
        {"output_type": "display_data", "data": {RECORD_MIME: {"name": "acc", "value": 0.7}}}]}]}
    import nbformat

    assert read_records(nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, **nb})) == \
        {"acc": 0.7}


def test_unknown_parameters_and_missing_notebooks_are_refused(tiny_notebook, tmp_path):
    with pytest.raises(SpecError, match=r"\['lr'\] are not parameters of .*sets \['a', 'b', 'gate'\]"):
        build_graph(sweep_spec(tiny_notebook, {"lr": [1]}))
    with pytest.raises(SpecError, match="does not exist"):
        sweep_spec(tmp_path / "nope.ipynb", {"a": [1]})


def test_the_sweep_plans_like_every_other_workflow(tiny_notebook, tmp_path):
    from mlwf_nb import schemas

    spec = sweep_spec(tiny_notebook, {"a": [1, 2], "b": ["x", "yy"]})
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec))
    wf = yaml.safe_load((run / "workflow.yml").read_text())
    jobs = wf["jobs"]
    assert [j["name"] for j in jobs] == ["notebook"] * 4 + ["sweep_collect"]
    assert [j["nodeLabel"] for j in jobs[:2]] == ["notebook[a=1,b=x]", "notebook[a=1,b=yy]"]
    children = {d["id"]: set(d["children"]) for d in wf.get("jobDependencies", [])}
    assert all(jobs[-1]["id"] in children[j["id"]] for j in jobs[:4])  # collect waits for every notebook
    for job in jobs:  # a flat sandbox: every file of a job has its own basename
        names = [u["lfn"].rsplit("/", 1)[-1] for u in job["uses"]]
        assert len(names) == len(set(names))
    staged = {u["lfn"] for j in jobs for u in j["uses"] if u["type"] == "output" and u.get("stageOut")}
    assert {"outputs/notebooks/tiny.c3.ipynb", "outputs/sweep.json", "outputs/sweep.png"} <= staged
    replicas = yaml.safe_load((run / "replicas.yml").read_text())
    assert any(r["lfn"] == "sweep/tiny.ipynb" and r.get("checksum") for r in replicas["replicas"])
    try:
        schemas.schema_dir()
    except Exception as err:  # pragma: no cover - shared/ absent
        pytest.skip(f"Pegasus schemas not available: {err}")
    assert len(schemas.validate_run_dir(run)) == 4


@pytest.mark.slow
def test_a_failing_combination_fails_its_job_the_others_finish_and_resume_reruns_only_it(tiny_notebook, tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("fail a=2 while I exist")
    run = sweep(tiny_notebook, {"a": [1, 2], "b": ["x", "yy"], "gate": [str(gate)]}, run_dir=tmp_path / "run",
                wait=True, overrides=["execution.retries=0"])
    assert run.state == "Failure"
    rows = results(run)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    assert rows[0]["records"] == {"score": 11, "label": "x1"} and rows[1]["records"]["score"] == 12
    assert rows[2]["error"] == "ValueError: boom a=2" and rows[2]["cell"] == 3  # In [3]: after the injected one
    st = run.status()["mlwf"]
    failed = st["failed_jobs"]
    assert len(failed) == 2 and "ValueError: boom a=2" in st["jobs"][failed[0]]["stderr_tail"]
    executed = json.loads((run.dir / "outputs/notebooks/tiny.c2.ipynb").read_text())  # kept, with the traceback
    assert any(o.get("ename") == "ValueError" for c in executed["cells"] for o in c.get("outputs", []))
    assert not (run.dir / "outputs/sweep.json").exists()
    assert "failed" in format_results(rows) and "#2: ValueError: boom a=2" in format_results(rows)

    gate.unlink()
    run.resume(wait=True)
    assert run.wait(timeout=600) == "Success"
    tries = {j: v["tries"] for j, v in run.status()["mlwf"]["jobs"].items() if j.startswith("notebook_")}
    assert sorted(tries.values()) == [1, 1, 2, 2]  # only the failed combinations ran again
    table = json.loads((run.dir / "outputs/sweep.json").read_text())
    assert table["parameters"] == ["a", "b", "gate"] and table["records"] == ["label", "score"]
    assert [r["records"]["score"] for r in table["rows"]] == [11, 12, 21, 22]
    assert [r["status"] for r in results(run)] == ["ok"] * 4
    assert (run.dir / "outputs/sweep.png").stat().st_size > 5000


@pytest.mark.slow
def test_a_sweep_in_the_sandbox_runs_as_on_a_pool(tiny_notebook, tmp_path):
    """execution.staging=sandbox: each notebook job in an empty folder holding only its declared files.

    As on an HTCondor pool, a failed combination's executed notebook does not come back (Pegasus stages
    out no output of a failed job); its failure still reaches the results through the job's events.
    """
    gate = tmp_path / "gate"
    gate.write_text("fail a=2 while I exist")
    run = sweep(tiny_notebook, {"a": [1, 2], "gate": [str(gate)]}, run_dir=tmp_path / "run", wait=True,
                overrides=["execution.retries=0", "execution.staging=sandbox"])
    assert run.state == "Failure"
    rows = results(run)
    assert [r["status"] for r in rows] == ["ok", "failed"] and rows[1]["error"] == "ValueError: boom a=2"
    assert (run.dir / "outputs/notebooks/tiny.c0.ipynb").is_file()
    assert not (run.dir / "outputs/notebooks/tiny.c1.ipynb").exists()  # lost with the failed job, as on a pool
    gate.unlink()
    run.resume(wait=True)
    assert run.wait(timeout=600) == "Success"
    table = json.loads((run.dir / "outputs/sweep.json").read_text())
    assert [r["records"]["score"] for r in table["rows"]] == [11, 21]
    assert (run.dir / "outputs/sweep.png").stat().st_size > 5000
