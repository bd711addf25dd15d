"""Helpers for the real-browser tests (JupyterLab and JupyterHub in headless Chromium)."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
#: Debian's Chromium, driven by playwright (its own browser download is unreachable)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH = 1300

ALL_CELLS_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const kernel = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const idle = !kernel || !kernel.dataset.status || kernel.dataset.status === 'idle';
  window.__mlwfPrompts = prompts.join(" ") + " kernel=" + (kernel && kernel.dataset.status);
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:?$/.test(t)) && idle;
}"""
"""Every code cell shows an execution count (none queued ``[*]`` or unrun ``[ ]``) and the kernel is idle."""

_PAGE_HEIGHT = """() => {
  const el = document.querySelector('.jp-WindowedPanel-outer') || document.querySelector('.jp-NotebookPanel-notebook');
  if (!el) return document.body.scrollHeight;
  el.scrollTop = 0;  // the first cell at the top of the screenshot
  const cells = el.querySelectorAll('.jp-Cell');
  // down to the last cell's bottom, plus the status bar: not the panel's scrollHeight, which holds
  // JupyterLab's scroll-past-end space (as tall as the window, so it grew with every resize)
  if (cells.length) return Math.ceil(cells[cells.length - 1].getBoundingClientRect().bottom) + 60;
  return el.getBoundingClientRect().top + el.scrollHeight;
}"""
"""The window height that shows the whole notebook (JupyterLab scrolls it inside a panel)."""


NOTEBOOK_STATE = """() => {
  const errors = [];
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  cells.forEach((cell, i) => {
    // JupyterLab renders an error (its traceback) as a stderr box too
    const boxes = '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]';
    cell.querySelectorAll(boxes).forEach(
      e => errors.push(`code cell ${i + 1}: error or stderr box:\\n${e.innerText.slice(-3000)}`));
  });
  const kernel = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const status = kernel && kernel.dataset.status;
  if (['dead', 'autorestarting', 'restarting', 'terminating'].includes(status)) errors.push(`the kernel is ${status}`);
  document.querySelectorAll('.jp-Dialog').forEach(d => errors.push('a dialog: ' + d.innerText.slice(0, 500)));
  return errors;
}"""
"""What stops a notebook run, as the page shows it: error outputs, stderr boxes, a dead kernel, a dialog."""

NOTEBOOK_TEXT = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map((cell, i) => {
  const prompt = (cell.querySelector('.jp-InputPrompt') || {}).textContent || '';
  const source = ((cell.querySelector('.jp-InputArea-editor') || {}).innerText || '').split('\\n')[0];
  const out = [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText.slice(-800)).join('\\n');
  return `--- code cell ${i + 1} ${prompt.trim()} ${source}` + (out.trim() ? '\\n' + out : '');
}).join('\\n')"""
"""The notebook's code cells as the page shows them: prompt, first line, the outputs' text (their tails)."""


def follow_notebooks(pages: dict[str, Any], done: str, timeout: float,
                     log: Callable[[], str] = lambda: "") -> None:
    """Wait until the notebook in each page is ``done`` (a JS predicate); fail at once when one stops.

    ``pages``: name -> page, followed together (two users run at the same time). A cell's error output,
    a stderr box, a dead kernel or a dialog fails the test at once with that text, the notebook's outputs
    and ``log()`` (the server's last log lines); so does ``timeout`` seconds without every page done.
    """
    deadline = time.monotonic() + timeout
    waiting = dict(pages)
    while waiting:
        for name, page in list(waiting.items()):
            errors = page.evaluate(NOTEBOOK_STATE)
            if errors:
                _fail(f"{name}: the notebook stopped:\n" + "\n".join(errors), page, log)
            if page.evaluate(done):
                del waiting[name]
        if not waiting:
            return
        if time.monotonic() > deadline:
            page = next(iter(waiting.values()))
            page.evaluate(ALL_CELLS_DONE)  # sets window.__mlwfPrompts
            _fail(f"{', '.join(waiting)}: not done after {timeout:.0f} s "
                  f"(prompts: {page.evaluate('() => window.__mlwfPrompts')})", page, log)
        next(iter(waiting.values())).wait_for_timeout(2000)


def _fail(message: str, page: Any, log: Callable[[], str]) -> None:
    import pytest

    outputs = page.evaluate(NOTEBOOK_TEXT)
    pytest.fail(f"{message}\n\n=== the notebook's outputs\n{outputs}\n\n=== the server's log (last lines)\n{log()}",
                pytrace=False)


def log_tail(path: Path, lines: int = 80) -> Callable[[], str]:
    """``log`` for :func:`follow_notebooks`: the last ``lines`` lines of the log file ``path``."""
    def tail() -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(no log: {err})"
    return tail


def launch(pw: Any) -> Any:
    """Headless Debian Chromium."""
    return pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS, headless=True)


def browser_settings(settings_dir: Path) -> None:
    """Write the JupyterLab user settings of the tests' browser into ``settings_dir``.

    * notebook windowing ``none``: by default JupyterLab leaves cells outside the viewport unrendered,
      so a screenshot of a whole notebook ended in blank space where the last cells were, and checks
      on the page never saw them;
    * no news: the "Would you like to get notified about official Jupyter news?" notification sat over
      the last cell (``--LabApp.news_url`` does not stop it; this setting does).

    ``settings_dir`` is what JupyterLab reads as ``JUPYTERLAB_SETTINGS_DIR`` (a user's own default:
    ``~/.jupyter/lab/user-settings``).
    """
    for plugin, value in ((("notebook-extension", "tracker"), '{"windowingMode": "none"}'),
                          (("apputils-extension", "notification"), '{"fetchNews": "false"}')):
        path = settings_dir / "@jupyterlab" / plugin[0] / f"{plugin[1]}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")


def open_notebook(browser: Any, base: str, name: str, token: str) -> Any:
    """A page of JupyterLab at ``base`` showing notebook ``name``."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    page.goto(f"{base}/lab/tree/{name}?token={token}", timeout=120_000)
    return page


_STARTED = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                     .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def run_all_cells(page: Any, tries: int = 3) -> None:
    """Run > Run All Cells, once the kernel of the open notebook is there; fails when no cell starts.

    The notebook is clicked first: the menu item acts on JupyterLab's current widget and is disabled
    while another one (the file browser) has it, and then a click on it runs nothing.
    """
    import re

    import pytest
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=240_000)
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator') !== null",
                           timeout=120_000)
    page.wait_for_timeout(3000)  # the kernel session starts
    for _ in range(tries):
        page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()  # the notebook is the current widget
        page.keyboard.press("Escape")  # command mode
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
        item = page.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel",
                                                               has_text=re.compile(r"^Run All Cells$")))
        item.first.click()
        try:  # a cell queued [*] or run [n]: not a click that went nowhere
            page.wait_for_function(_STARTED, timeout=30_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    shot = full_page_screenshot(page, ARTIFACTS / f"run-all-cells-failed-{time.strftime('%H%M%S')}.png")
    pytest.fail(f"Run All Cells started no cell in {tries} tries (screenshot {shot}):\n{page.evaluate(NOTEBOOK_TEXT)}",
                pytrace=False)


def full_page_screenshot(page: Any, path: Path) -> Path:
    """Grow the page to the notebook's height (JupyterLab scrolls it in a panel) and take one screenshot."""
    for _ in range(3):  # cells rendered late get their real height: measure again
        height = page.evaluate(_PAGE_HEIGHT)
        page.set_viewport_size({"width": WIDTH, "height": max(1000, min(int(height), 16_000))})
        page.wait_for_timeout(700)
    page.evaluate(_PAGE_HEIGHT)
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float) -> None:
    """Wait until ``url`` answers (a server starting up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered at {url} after {timeout:.0f} s: {err}") from err
            time.sleep(0.5)


LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const visible = r => r.width > 0 && r.height > 0;
  const cells = [...document.querySelectorAll('.jp-Cell')];
  cells.forEach((cell, i) => {
    const cb = cell.getBoundingClientRect();
    const items = cell.querySelectorAll('.jp-OutputArea-output img, .jp-OutputArea-output table, .jupyter-widgets');
    items.forEach(el => {
      const r = el.getBoundingClientRect();
      if (!visible(r)) return;
      if (r.left < cb.left - 1 || r.right > cb.right + 1)
        problems.push(`cell ${i}: ${el.tagName}.${el.className} spans x ${r.left|0}-${r.right|0}, `
                      + `cell ${cb.left|0}-${cb.right|0}`);
      for (let p = el.parentElement; p && p !== cell; p = p.parentElement) {  // clipped by a container?
        const s = getComputedStyle(p);
        if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
        const pr = p.getBoundingClientRect();
        if (r.right > pr.right + 1 || r.bottom > pr.bottom + 1 && s.overflowY === 'hidden')
          problems.push(`cell ${i}: ${el.tagName} clipped by ${p.className} (${r.right|0} > ${pr.right|0})`);
        break;
      }
    });
  });
  document.querySelectorAll('.jp-OutputArea-output img').forEach(img => {
    const r = img.getBoundingClientRect();
    if (visible(r) && (!img.complete || img.naturalWidth === 0)) problems.push('broken image ' + img.src.slice(0, 60));
  });
  document.querySelectorAll('.Toastify__toast').forEach(t => {  // a notification over the notebook
    if (visible(t.getBoundingClientRect())) problems.push('notification: ' + t.innerText.slice(0, 120));
  });
  const stderr = document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]');
  stderr.forEach(e => problems.push('stderr box: ' + e.innerText.slice(0, 200)));
  document.querySelectorAll('.jp-OutputArea-output').forEach(o => {
    if (/^\\w+\\(children=|^\\w+\\(.*value=/.test(o.innerText.trim()))
      problems.push('widget repr: ' + o.innerText.slice(0, 80));
  });
  return problems;
}"""
"""Everything wrong with the page a reader would see: outputs outside or clipped by their cell, broken images,
notifications over the notebook, stderr boxes, widget reprs in place of views."""
