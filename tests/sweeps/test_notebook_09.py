"""Notebook 09 sweeps the land-cover tutorial (two learning rates) under papermill, as one workflow."""

from __future__ import annotations

import json

import pytest

from tests.notebooks.papermill_run import NOTEBOOKS, execute, outputs


@pytest.mark.slow
def test_09_sweeps_the_tutorial(tmp_path):
    nb = execute("09_sweep.ipynb", tmp_path / "out.ipynb", timeout=1200, preset="tiny",
                 dataset_dir=str(tmp_path / "data"), synthetic=True, run_dir=str(tmp_path / "sweep"), backend="local",
                 tutorial=str(NOTEBOOKS / "01_land_cover_quickstart.ipynb"))
    text = json.dumps(outputs(nb))
    assert "sweep finished: Success" in text and "overall_accuracy" in text
    assert "2 of 2 combinations ran to the end" in text
    assert text.count("<b>sweep</b>") == 1  # the sweep's table once: the monitor's
    table = json.loads((tmp_path / "sweep" / "outputs" / "sweep.json").read_text())
    assert [r["status"] for r in table["rows"]] == ["ok", "ok"]
    assert all(0.0 <= r["records"]["overall_accuracy"] <= 1.0 and "kappa" in r["records"] for r in table["rows"])
    assert len(list((tmp_path / "sweep" / "outputs" / "notebooks").glob("*.ipynb"))) == 2
