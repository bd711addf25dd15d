"""Every tutorial notebook runs through papermill with tiny parameters (slow)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_clean_and_parameterised(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "mlwf" and nb.metadata["language_info"]["name"] == "python"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_is_visible_to_papermill_typed_documented_and_used(name):
    """``papermill --help-notebook`` lists every assignment of the parameters cell, with a type and a help text."""
    import ast

    from papermill import inspect_notebook

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.target.id if isinstance(t, ast.AnnAssign) else t.targets[0].id
                for t in ast.parse(cell.source).body]
    found = inspect_notebook(str(NOTEBOOKS / name))
    assert list(found) == assigned
    assert {"preset", "dataset_dir", "synthetic", "overrides"} <= set(found)
    for p in found.values():
        assert p["inferred_type_name"] in ("str", "int", "bool", "dict", "float"), p
        assert p["help"], f"{p['name']} has no help comment"
    later = "\n".join(c.source for c in nb.cells[nb.cells.index(cell) + 1:] if c.cell_type == "code")
    unused = [n for n in found if not re.search(rf"\b{n}\b", later)]
    assert not unused, f"parameters never used: {unused}"


@pytest.mark.parametrize(("name", "params", "message"), [
    ("01_land_cover_quickstart.ipynb", {"backend": "slurm"}, "backend='slurm' is not one of 'local'"),
    ("04_monitor_a_run.ipynb", {"run_dir": "."}, "run_dir='.' is not a run folder (it has no workflow.yml)"),
])
def test_a_bad_parameter_stops_the_notebook_with_one_line_before_any_widget(tmp_path, mlwf_kernel, name, params,
                                                                             message):
    import papermill as pm

    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS / name), str(out), kernel_name=mlwf_kernel,
                            cwd=str(tmp_path), parameters={"preset": "tiny", **params},
                            progress_bar=False, execution_timeout=300)
    assert err.value.ename == "ParameterError" and err.value.evalue.startswith(message)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line, no stack
    assert not any(o.get("data", {}).get("application/vnd.jupyter.widget-view+json")
                   for c in nb.cells for o in c.get("outputs", []))
    assert not list(tmp_path.glob("**/dataset.yaml"))  # nothing generated either


def _run(name, tmp_path, kernel, **params):
    import papermill as pm

    out = tmp_path / f"out-{name}"
    env = {"MLWF_STATIC": "1", "MLWF_RUNS_DIR": str(tmp_path / "runs")}
    old = {k: os.environ.get(k) for k in [*env, "PYTEST_CURRENT_TEST"]}
    os.environ.update(env)
    os.environ.pop("PYTEST_CURRENT_TEST")  # else ipykernel keeps fd 2 out of the cells: test what users see
    try:
        pm.execute_notebook(str(NOTEBOOKS / name), str(out), kernel_name=kernel, cwd=str(tmp_path),
                            parameters={"preset": "tiny", "dataset_dir": str(tmp_path / "data"), "synthetic": True,
                                        **params},
                            progress_bar=False, execution_timeout=900)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb = nbformat.read(out, as_version=4)
    stderr = [o["text"] for o in _outputs(nb) if o.get("name") == "stderr"]
    assert not stderr, f"stderr boxes in {name}: {stderr}"
    return nb


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _pngs(nb):
    return [base64.b64decode(o["data"]["image/png"]) for o in _outputs(nb) if "image/png" in o.get("data", {})]


@pytest.mark.slow
def test_01_quickstart(tmp_path, mlwf_kernel):
    """Without a widget front end every view is saved as HTML with its figures, each once, the monitor final."""
    nb = _run("01_land_cover_quickstart.ipynb", tmp_path, mlwf_kernel, run_dir=str(tmp_path / "run"))
    keep = tmp_path.parent / "01_land_cover_quickstart.static.ipynb"  # for the browser test's screenshot
    nbformat.write(nb, keep)
    outputs = _outputs(nb)
    text = json.dumps(outputs)
    assert "run finished: Success" in text
    assert "application/vnd.jupyter.widget-view+json" not in text  # no widget views to lose
    assert not [o for o in outputs if re.match(r"\w+\(", o.get("data", {}).get("text/plain", ""))]  # no reprs
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    static = [h for h in html if "mlwf-static" in h]
    assert len(static) == 4  # studio (data tab), patches, augmentations, monitor
    monitor = static[-1]
    assert "Success" in monitor and "100% done" in monitor
    assert monitor.count("data:image/png;base64,") >= 3  # curves, confusion matrix, classification map
    assert len(re.findall(r"train_ID\d+", "".join(html))) == 1  # the job table once
    assert "Evaluation" in text  # the report


@pytest.mark.slow
def test_02_explore(tmp_path, mlwf_kernel):
    nb = _run("02_explore_data.ipynb", tmp_path, mlwf_kernel)
    text = json.dumps(_outputs(nb))
    assert "all files match the manifest" in text and _pngs(nb)


@pytest.mark.slow
def test_03_hpo(tmp_path, mlwf_kernel):
    from mlwf_nb.data.synth import generate_dataset

    generate_dataset(tmp_path / "data", scenes=6, height=96, width=96, sources=["GF-2", "GF-1"])
    nb = _run("03_hyperparameter_search.ipynb", tmp_path, mlwf_kernel, run_dir=str(tmp_path / "run"))
    text = json.dumps(_outputs(nb))
    assert "valid: True" in text
    assert "could not start the search" not in text and "search finished: Success" in text, text[-2000:]
    board = json.loads((tmp_path / "run" / "outputs" / "hpo" / "leaderboard.json").read_text())
    rows = board["trials"] if isinstance(board, dict) else board
    assert len([r for r in rows if r["status"] == "ok"]) >= 2, rows  # the search really ran its trials
    assert "HPO leaderboard" in text and text.count("<tr>") >= 3  # the notebook shows them (header + rows)


@pytest.mark.slow
def test_04_attach(tmp_path, mlwf_kernel):
    nb = _run("04_monitor_a_run.ipynb", tmp_path, mlwf_kernel)  # run_dir "": starts a run to watch
    assert "events replayed, state Success" in json.dumps(_outputs(nb))


@pytest.mark.slow
def test_05_pegasus_explains_when_missing(tmp_path, mlwf_kernel):
    from mlwf_nb.errors import MlwfError

    try:
        from mlwf_nb.backends.pegasus import require_pegasus

        require_pegasus()
        pytest.skip("Pegasus is installed here")
    except (ImportError, MlwfError):
        pass
    nb = _run("05_pegasus_submit.ipynb", tmp_path, mlwf_kernel)
    assert "Pegasus is not available here" in json.dumps(_outputs(nb))
