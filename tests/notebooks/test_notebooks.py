"""Every tutorial notebook runs through papermill with tiny parameters (slow)."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from tests.notebooks.papermill_run import NOTEBOOKS, execute, outputs, pngs

ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_thin_clean_and_parameterised(name):
    """Saved without outputs, the mlwf kernel, one parameters cell (default preset cpu), the logic in the package."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert nb.metadata["kernelspec"] == {"display_name": "Python 3 (mlwf_nb)", "language": "python", "name": "mlwf"}
    assert nb.metadata["language_info"]["name"] == "python"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    # the default learns something real in a few minutes; the tests pass preset tiny
    assert len(tagged) == 1 and 'preset: str = "cpu"' in tagged[0].source
    assert "backend: str" not in tagged[0].source or 'backend: str = "local"' in tagged[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert all("@step" not in c.source and "def " not in c.source for c in code)  # logic lives in the package
    assert sum(len(c.source.splitlines()) for c in code) < 60
    # JupyterLab's editor cuts longer lines off at 1300 px with the file browser open (104 characters fit)
    long = [line for c in code for line in c.source.splitlines() if len(line) > 100]
    assert not long, long


@pytest.mark.parametrize("name", ALL)
def test_a_notebook_that_runs_something_follows_it_with_a_monitor_and_can_leave_the_kernel_free(name):
    """Never a silent, blocking ``submit(wait=True)``: a run shows a RunMonitor; ``wait_for_run`` says to wait."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "wait=True" not in code
    if re.search(r"\b(submit|sweep|start_run)\(", code):
        assert "RunMonitor(" in code or "start_run(" in code
        assert "wait_for_run: bool = True" in next(c.source for c in nb.cells
                                                   if "parameters" in c.metadata.get("tags", []))


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


def _run(name, tmp_path, **params):
    return execute(name, tmp_path / f"out-{name}", preset="tiny", dataset_dir=str(tmp_path / "data"), synthetic=True,
                   **params)


@pytest.mark.slow
def test_01_quickstart(notebook01_executed):
    """Without a widget front end every view is saved as HTML with its figures, each once, the monitor final."""
    nb = nbformat.read(notebook01_executed, as_version=4)
    outs = outputs(nb)
    text = json.dumps(outs)
    assert "run finished: Success" in text
    assert "application/vnd.jupyter.widget-view+json" not in text  # no widget views to lose
    assert not [o for o in outs if re.match(r"\w+\(", o.get("data", {}).get("text/plain", ""))]  # no reprs
    html = [o["data"]["text/html"] for o in outs if "text/html" in o.get("data", {})]
    static = [h for h in html if "mlwf-static" in h]
    assert len(static) == 4  # studio (data tab), patches, augmentations, monitor
    monitor = static[-1]
    assert "Success" in monitor and "100% done" in monitor
    assert monitor.count("data:image/png;base64,") >= 3  # curves, confusion matrix, classification map
    assert len(re.findall(r"train_ID\d+", "".join(html))) == 1  # the job table once
    assert text.count("| precision | recall |") + text.count("<th>precision</th>") == 1  # the report, once
    assert "overall_accuracy" in text  # the record cell


@pytest.mark.slow
def test_02_explore(tmp_path):
    nb = _run("02_explore_data.ipynb", tmp_path)
    text = json.dumps(outputs(nb))
    assert "all files match the manifest" in text and pngs(nb)


@pytest.mark.slow
def test_03_hpo(tmp_path):
    from mlwf_nb.data.synth import generate_dataset

    generate_dataset(tmp_path / "data", scenes=6, height=96, width=96, sources=["GF-2", "GF-1"])
    nb = _run("03_hyperparameter_search.ipynb", tmp_path, run_dir=str(tmp_path / "run"))
    text = json.dumps(outputs(nb))
    assert "valid: True" in text
    assert "could not start the search" not in text and "search finished: Success" in text, text[-2000:]
    board = json.loads((tmp_path / "run" / "outputs" / "hpo" / "leaderboard.json").read_text())
    rows = board["trials"] if isinstance(board, dict) else board
    assert len([r for r in rows if r["status"] == "ok"]) >= 2, rows  # the search really ran its trials
    assert "HPO leaderboard" in text and text.count("<tr>") >= 3  # the notebook shows them (header + rows)


@pytest.mark.slow
def test_04_attach(tmp_path):
    nb = _run("04_monitor_a_run.ipynb", tmp_path)  # run_dir "": starts a run to watch
    assert "events replayed, state Success" in json.dumps(outputs(nb))


@pytest.mark.slow
def test_05_pegasus_explains_when_missing(tmp_path):
    from mlwf_nb.errors import MlwfError

    try:
        from mlwf_nb.backends.pegasus import require_pegasus

        require_pegasus()
        pytest.skip("Pegasus is installed here")
    except (ImportError, MlwfError):
        pass
    nb = _run("05_pegasus_submit.ipynb", tmp_path)
    assert "Pegasus is not available here" in json.dumps(outputs(nb))
