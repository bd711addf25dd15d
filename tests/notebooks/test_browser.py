"""One real-browser test: JupyterLab + headless Chromium run notebook 01 and render its widgets."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.requires_chromium, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy_notebook(tmp: Path) -> Path:
    """Notebook 01 with tiny parameters injected after the parameters cell (papermill-style)."""
    nb = nbformat.read(ROOT / "notebooks" / "01_land_cover_quickstart.ipynb", as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    inject = nbformat.v4.new_code_cell(f'dataset_dir = {str(tmp / "data")!r}\nrun_dir = {str(tmp / "run")!r}\n'
                                       'overrides = ["train.epochs=1"]')
    nb.cells.insert(idx + 1, inject)
    out = tmp / "01.ipynb"
    nbformat.write(nb, out)
    return out


ALL_CELLS_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const kernel = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const idle = !kernel || !kernel.dataset.status || kernel.dataset.status === 'idle';
  window.__mlwfPrompts = prompts.join(" ") + " kernel=" + (kernel && kernel.dataset.status);
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:?$/.test(t)) && idle;
}"""
"""Every code cell shows an execution count (none queued ``[*]`` or unrun ``[ ]``) and the kernel is idle."""
NOTEBOOK_HEIGHT = """() => {
  const el = document.querySelector('.jp-WindowedPanel-outer') || document.querySelector('.jp-NotebookPanel-notebook');
  if (!el) return document.body.scrollHeight;
  el.scrollTop = 0;  // the first cell at the top of the screenshot
  return el.scrollHeight;
}"""


def _wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url}")


def test_notebook01_renders_widgets_in_chromium(tmp_path, mlwf_kernel):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    nb_path = _copy_notebook(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "MLWF_RUNS_DIR": str(tmp_path / "runs")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    shot = ARTIFACTS / "notebook01.png"
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/status?token={token}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{nb_path.name}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator') !== null"
                                   " || document.title.length > 0", timeout=120_000)
            page.wait_for_timeout(3000)  # let the kernel session start
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.wait_for_selector(".widget-tab, .jupyter-widgets", timeout=180_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(e => e.innerText.includes('run finished'))", timeout=420_000)
            try:  # the last cell too, not just the run
                page.wait_for_function(ALL_CELLS_DONE, timeout=300_000)
            except PlaywrightTimeout:
                pytest.fail(f"not every cell finished: {page.evaluate('() => window.__mlwfPrompts')}")
            # JupyterLab scrolls the notebook inside a panel: grow the page to the notebook's height so
            # that the full-page screenshot holds every cell, then wait for the cells to re-render.
            for _ in range(3):  # offscreen cells get their real height once rendered: measure again
                height = page.evaluate(NOTEBOOK_HEIGHT)
                page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 200, 16_000))})
                page.wait_for_timeout(500)
            page.wait_for_function(ALL_CELLS_DONE, timeout=60_000)
            page.wait_for_timeout(1000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
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
