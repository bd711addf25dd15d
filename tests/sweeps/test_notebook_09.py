"""Notebook 09 sweeps the land-cover tutorial (two learning rates) under papermill, as one workflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_09_sweeps_the_tutorial(tmp_path):
    import papermill as pm

    from mlwf_nb.kernel import KERNEL_NAME, install_kernel

    install_kernel(sys_prefix=True)
    old = os.environ.get("MLWF_STATIC")
    os.environ["MLWF_STATIC"] = "1"
    pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)  # else ipykernel keeps fd 2 out of the cells
    try:
        pm.execute_notebook(str(NOTEBOOKS / "09_sweep.ipynb"), str(tmp_path / "out.ipynb"), kernel_name=KERNEL_NAME,
                            cwd=str(tmp_path), progress_bar=False, execution_timeout=1200,
                            parameters={"preset": "tiny", "dataset_dir": str(tmp_path / "data"), "synthetic": True,
                                        "run_dir": str(tmp_path / "sweep"), "backend": "local",
                                        "tutorial": str(NOTEBOOKS / "01_land_cover_quickstart.ipynb")})
    finally:
        if pytest_test is not None:
            os.environ["PYTEST_CURRENT_TEST"] = pytest_test
        if old is None:
            os.environ.pop("MLWF_STATIC", None)
        else:
            os.environ["MLWF_STATIC"] = old
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr"], "stderr boxes in 09"
    text = json.dumps(outputs)
    assert "sweep finished: Success" in text and "overall_accuracy" in text
    table = json.loads((tmp_path / "sweep" / "outputs" / "sweep.json").read_text())
    assert [r["status"] for r in table["rows"]] == ["ok", "ok"]
    assert all(0.0 <= r["records"]["overall_accuracy"] <= 1.0 and "kappa" in r["records"] for r in table["rows"])
    assert len(list((tmp_path / "sweep" / "outputs" / "notebooks").glob("*.ipynb"))) == 2
