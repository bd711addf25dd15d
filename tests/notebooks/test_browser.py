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
    LAYOUT_PROBLEMS,
    ARTIFACTS,
    ROOT,
    WIDTH,
    free_port,
    full_page_screenshot,
    launch,
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
                                       f'run_dir = {str(tmp / "run")!r}\npreset = "tiny"\noverrides = ["train.epochs=1"]')
    nb.cells.insert(idx + 1, inject)
    out = tmp / "01.ipynb"
    nbformat.write(nb, out)
    return out


@contextlib.contextmanager
def jupyter_lab(root: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on 127.0.0.1 serving ``root``: yields (base url, token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "MLWF_RUNS_DIR": str(root / "runs")}
    for key in ("PYTEST_CURRENT_TEST", "MLWF_STATIC"):  # the kernels see what a user's kernel sees
        env.pop(key, None)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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


def test_notebook01_renders_widgets_in_chromium(tmp_path, mlwf_kernel):
    """Live: JupyterLab runs notebook 01; the widgets render, laid out within their cells."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    nb_path = _copy_notebook(tmp_path)
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        page.goto(f"{base}/lab/tree/{nb_path.name}?token={token}", timeout=120_000)
        run_all_cells(page)
        page.wait_for_selector(".widget-tab, .jupyter-widgets", timeout=180_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".some(e => e.innerText.includes('run finished'))", timeout=420_000)
        try:  # the last cell too, not just the run
            page.wait_for_function(ALL_CELLS_DONE, timeout=300_000)
        except PlaywrightTimeout:
            pytest.fail(f"not every cell finished: {page.evaluate('() => window.__mlwfPrompts')}")
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


def test_notebook01_papermill_output_reads_in_jupyterlab(tmp_path, mlwf_kernel):
    """Static: papermill (no widget front end, MLWF_STATIC unset) keeps tables and figures that JupyterLab shows."""
    import papermill as pm
    from playwright.sync_api import sync_playwright

    out = tmp_path / "01-executed.ipynb"
    env_static = os.environ.pop("MLWF_STATIC", None)
    current = os.environ.pop("PYTEST_CURRENT_TEST", None)  # fd 2 reaches the cells, as for users
    try:
        pm.execute_notebook(str(ROOT / "notebooks" / "01_land_cover_quickstart.ipynb"), str(out),
                            kernel_name=mlwf_kernel, cwd=str(tmp_path), progress_bar=False,
                            parameters={"preset": "tiny", "dataset_dir": str(tmp_path / "data"), "synthetic": True,
                                        "overrides": {"train.epochs": 1}}, execution_timeout=900)
    finally:
        for key, value in (("MLWF_STATIC", env_static), ("PYTEST_CURRENT_TEST", current)):
            if value is not None:
                os.environ[key] = value
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        page.goto(f"{base}/lab/tree/{out.name}?token={token}", timeout=120_000)
        page.wait_for_selector(".mlwf-static", timeout=120_000)
        page.wait_for_timeout(2000)
        full_page_screenshot(page, ARTIFACTS / "notebook01-static.png")
        problems = page.evaluate(LAYOUT_PROBLEMS)
        assert not problems, problems
        assert page.locator(".mlwf-static").count() == 4  # studio, patches, augmentations, monitor
        assert page.locator(".mlwf-static img").count() >= 6
        assert "Success" in page.locator(".mlwf-static").last.inner_text()
        browser.close()
