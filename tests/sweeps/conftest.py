"""A tiny notebook to sweep: parameters a, b, gate; it records a score and fails for a == 2 while gate exists."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

BODY = """import os
import mlwf_nb
if gate and a == 2 and os.path.exists(gate):
    raise ValueError(f"boom a={a}")
mlwf_nb.record("score", a * 10 + len(b))
mlwf_nb.record("label", f"{b}{a}")"""


@pytest.fixture
def tiny_notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('a = 1\nb = "x"\ngate = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path
