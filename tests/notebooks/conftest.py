"""Notebook tests: the mlwf kernel installed into the venv once per session; notebook 01 executed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebooks.papermill_run import execute
from tests.notebooks.papermill_run import mlwf_kernel as _install_kernel


@pytest.fixture(scope="session")
def mlwf_kernel() -> str:
    return _install_kernel()


@pytest.fixture(scope="session")
def notebook01_executed(tmp_path_factory) -> Path:
    """Notebook 01 run by papermill as a user runs it (MLWF_STATIC unset: no widget front end), tiny preset.

    Shared by the saved-notebook test and the test that opens the saved notebook in JupyterLab, so the
    tutorial runs once for both.
    """
    tmp = tmp_path_factory.mktemp("notebook01")
    out = tmp / "01-executed.ipynb"
    execute("01_land_cover_quickstart.ipynb", out, static=None, preset="tiny", dataset_dir=str(tmp / "data"),
            synthetic=True, run_dir=str(tmp / "run"))
    return out
