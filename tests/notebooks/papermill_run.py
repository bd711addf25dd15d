"""Run a tutorial notebook through papermill the way a user's papermill runs it (the one runner of the tests).

The kernel is the ``mlwf`` kernel installed into the venv. ``PYTEST_CURRENT_TEST`` is taken out of the
kernel's environment: ipykernel does not capture fd 2 while it is set, so without this the tests could
never see the red stderr boxes a user sees. Any stderr output fails the run.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@functools.cache
def mlwf_kernel() -> str:
    """Install the mlwf kernel into this venv (once) and return its name."""
    from mlwf_nb.kernel import KERNEL_NAME, install_kernel

    install_kernel(sys_prefix=True)
    return KERNEL_NAME


@contextlib.contextmanager
def user_env(**env: str | None) -> Iterator[None]:
    """``os.environ`` as a user's kernel would see it: ``env`` set (None: unset), no ``PYTEST_CURRENT_TEST``."""
    env = {**env, "PYTEST_CURRENT_TEST": None}
    old = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(name: str | Path, out: Path, *, static: bool | None = True, timeout: int = 900,
            **parameters: Any) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` (or a path) into ``out`` with ``parameters``; fail on any stderr box.

    ``static``: True sets ``MLWF_STATIC=1``, None leaves it unset (papermill's own detection: no widget
    front end, so the widgets show their static forms), False forces live widgets.
    Runs go under ``out``'s folder (``MLWF_RUNS_DIR``) unless the notebook is given a ``run_dir``.
    """
    import papermill as pm

    src = Path(name) if Path(name).is_absolute() else NOTEBOOKS / name
    flag = {True: "1", False: "0", None: None}[static]
    with user_env(MLWF_STATIC=flag, MLWF_RUNS_DIR=str(out.parent / "runs")):
        pm.execute_notebook(str(src), str(out), kernel_name=mlwf_kernel(), cwd=str(out.parent),
                            parameters=parameters, progress_bar=False, execution_timeout=timeout)
    nb = nbformat.read(out, as_version=4)
    stderr = [o.get("text", "") for o in outputs(nb) if o.get("name") == "stderr"]
    assert not stderr, f"stderr boxes in {src.name}: {stderr}"
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Every output of every code cell, in order."""
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def pngs(nb: nbformat.NotebookNode) -> list[bytes]:
    """Every image the saved notebook shows: PNG outputs and PNGs inline in HTML outputs (static forms)."""
    found = []
    for o in outputs(nb):
        data = o.get("data", {})
        if "image/png" in data:
            found.append(base64.b64decode(data["image/png"]))
        found += [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)",
                                                             data.get("text/html", ""))]
    return found
