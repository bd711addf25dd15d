"""One real-browser test: JupyterLab + headless Chromium run notebook 01 and render its widgets."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.browser import (
    ALL_CELLS_DONE,
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
    inject = nbformat.v4.new_code_cell(f'dataset_dir = {str(tmp / "data")!r}\nrun_dir = {str(tmp / "run")!r}\n'
                                       'preset = "tiny"\noverrides = ["train.epochs=1"]')
    nb.cells.insert(idx + 1, inject)
    out = tmp / "01.ipynb"
    nbformat.write(nb, out)
    return out


def test_notebook01_renders_widgets_in_chromium(tmp_path, mlwf_kernel):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    nb_path = _copy_notebook(tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "MLWF_RUNS_DIR": str(tmp_path / "runs")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    shot = ARTIFACTS / "notebook01.png"
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/status?token={token}", timeout=90)
        with sync_playwright() as pw:
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
            full_page_screenshot(page, shot)
            errors = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
            texts = [errors.nth(i).inner_text() for i in range(errors.count())]
            assert not [t for t in texts if "Traceback" in t], texts
            assert page.locator(".widget-tab").count() >= 1
            assert page.locator(".jupyter-widgets").count() >= 5
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
