"""One real-browser test: JupyterLab + headless Chromium run notebook 01 and render its widgets."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.browser import (
    ALL_CELLS_DONE,
    ARTIFACTS,
    LAYOUT_PROBLEMS,
    ROOT,
    browser_settings,
    follow_notebooks,
    free_port,
    full_page_screenshot,
    launch,
    log_tail,
    open_notebook,
    run_all_cells,
    wait_http,
)

pytestmark = [pytest.mark.requires_chromium, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")]


def _copy_notebook(tmp: Path) -> Path:
    """Notebook 01 with tiny parameters injected after the parameters cell (papermill-style)."""
    nb = nbformat.read(ROOT / "notebooks" / "01_land_cover_quickstart.ipynb", as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    inject = nbformat.v4.new_code_cell(f'dataset_dir = {str(tmp / "data")!r}\nsynthetic = True\n'
                                       f'run_dir = {str(tmp / "run")!r}\npreset = "tiny"\n'
                                       'overrides = {"train.epochs": 1}')
    nb.cells.insert(idx + 1, inject)
    out = tmp / "01.ipynb"
    nbformat.write(nb, out)
    return out


@contextlib.contextmanager
def jupyter_lab(root: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on 127.0.0.1 serving ``root``: yields (base url, token); its log: ``root/jupyterlab.log``."""
    port, token = free_port(), secrets.token_hex(16)
    settings = root / ".lab-settings"  # this browser's JupyterLab user settings
    browser_settings(settings)
    # and its own workspace: the default one (~/.jupyter/lab/workspaces) is shared by every JupyterLab of
    # this user, and a page restored the open tabs of another test's server
    env = {**os.environ, "MLWF_RUNS_DIR": str(root / "runs"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".lab-workspaces")}
    for key in ("PYTEST_CURRENT_TEST", "MLWF_STATIC"):  # the kernels see what a user's kernel sees
        env.pop(key, None)
    log = (root / "jupyterlab.log").open("w")  # the server's and its kernels' own stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.disable_check_xsrf=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/status?token={token}", timeout=90)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


RUN_DONE = f"""() => [...document.querySelectorAll('.jp-OutputArea-output')]
                      .some(e => e.innerText.includes('run finished')) && ({ALL_CELLS_DONE})()"""
"""Notebook 01's run finished and every cell has run."""


def test_notebook01_renders_widgets_in_chromium(tmp_path, mlwf_kernel):
    """Live: JupyterLab runs notebook 01; the widgets render, laid out within their cells."""
    from playwright.sync_api import sync_playwright

    nb_path = _copy_notebook(tmp_path)
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as pw:
        browser = launch(pw)
        page = open_notebook(browser, base, nb_path.name, token)
        run_all_cells(page)
        # the run finished and the last cell ran too; a cell's error, a stderr box or a dead kernel fails at once
        follow_notebooks({"notebook 01": page}, RUN_DONE, timeout=900, log=log_tail(tmp_path / "jupyterlab.log"))
        page.locator(".lm-TabBar-tabLabel", has_text="training").last.click()  # curves, matrix, map
        page.wait_for_timeout(500)
        full_page_screenshot(page, ARTIFACTS / "notebook01.png")
        problems = page.evaluate(LAYOUT_PROBLEMS)
        assert not problems, problems
        assert page.locator(".widget-tab").count() >= 1
        assert page.locator(".jupyter-widgets").count() >= 5
        assert page.locator(".mlwf-static").count() == 0  # a front end is attached: live widgets
        shown = page.locator(".widget-image:visible")
        assert shown.count() >= 5  # patch thumbnails and patch, augmentations, curves, matrix, map
        browser.close()


def test_notebook01_papermill_output_reads_in_jupyterlab(notebook01_executed):
    """Static: papermill (no widget front end, MLWF_STATIC unset) keeps tables and figures that JupyterLab shows."""
    from playwright.sync_api import sync_playwright

    with jupyter_lab(notebook01_executed.parent) as (base, token), sync_playwright() as pw:
        browser = launch(pw)
        page = open_notebook(browser, base, notebook01_executed.name, token)
        page.wait_for_selector(".mlwf-static", timeout=120_000)
        page.wait_for_timeout(2000)
        full_page_screenshot(page, ARTIFACTS / "notebook01-static.png")
        problems = page.evaluate(LAYOUT_PROBLEMS)
        assert not problems, problems
        assert page.locator(".mlwf-static").count() == 4  # studio, patches, augmentations, monitor
        assert page.locator(".mlwf-static img").count() >= 6
        assert "Success" in page.locator(".mlwf-static").last.inner_text()
        last = page.locator(".jp-Cell").last  # every cell is on the page, down to the record cell
        assert "overall_accuracy = " in last.inner_text()
        browser.close()


def test_a_cell_error_ends_the_wait_at_once_with_its_text_and_the_server_log(tmp_path, mlwf_kernel):
    """The browser and hub tests' wait (follow_notebooks) stops at a failed cell, not at its timeout."""
    from playwright.sync_api import sync_playwright

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": mlwf_kernel, "display_name": "mlwf",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("raise ValueError('probe failure in the second cell')"),
                nbformat.v4.new_code_cell("print('never reached')")]
    nbformat.write(nb, tmp_path / "fails.ipynb")
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as pw:
        browser = launch(pw)
        page = open_notebook(browser, base, "fails.ipynb", token)
        run_all_cells(page)
        with pytest.raises(pytest.fail.Exception) as failed:  # the third cell never runs: done is never true
            follow_notebooks({"probe": page}, ALL_CELLS_DONE, timeout=600, log=log_tail(tmp_path / "jupyterlab.log"))
        browser.close()
    message = str(failed.value)
    assert message.startswith("probe: the notebook stopped:"), message  # not "not done after 600 s"
    assert "code cell 2: error or stderr box" in message and "ValueError: probe failure in the second cell" in message
    assert "--- code cell 3 [ ]: print('never reached')" in message  # the notebook's cells, as the page shows them
    assert "=== the server's log" in message and "Kernel started" in message
