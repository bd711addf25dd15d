"""Helpers for the real-browser tests (JupyterLab and JupyterHub in headless Chromium)."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
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

_NOTEBOOK_HEIGHT = """() => {
  const el = document.querySelector('.jp-WindowedPanel-outer') || document.querySelector('.jp-NotebookPanel-notebook');
  if (!el) return document.body.scrollHeight;
  el.scrollTop = 0;  // the first cell at the top of the screenshot
  return el.scrollHeight;
}"""


def launch(pw: Any) -> Any:
    """Headless Debian Chromium."""
    return pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS, headless=True)


def run_all_cells(page: Any) -> None:
    """Run > Run All Cells, once the kernel of the open notebook is there."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=240_000)
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator') !== null",
                           timeout=120_000)
    page.wait_for_timeout(3000)  # the kernel session starts
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def full_page_screenshot(page: Any, path: Path) -> Path:
    """Grow the page to the notebook's height (JupyterLab scrolls it in a panel) and take one screenshot."""
    for _ in range(3):  # cells rendered late get their real height: measure again
        height = page.evaluate(_NOTEBOOK_HEIGHT)
        page.set_viewport_size({"width": WIDTH, "height": max(1000, min(int(height) + 120, 16_000))})
        page.wait_for_timeout(700)
    page.evaluate(_NOTEBOOK_HEIGHT)
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
        problems.push(`cell ${i}: ${el.tagName}.${el.className} spans x ${r.left|0}-${r.right|0}, cell ${cb.left|0}-${cb.right|0}`);
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
  const stderr = document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]');
  stderr.forEach(e => problems.push('stderr box: ' + e.innerText.slice(0, 200)));
  document.querySelectorAll('.jp-OutputArea-output').forEach(o => {
    if (/^\\w+\\(children=|^\\w+\\(.*value=/.test(o.innerText.trim())) problems.push('widget repr: ' + o.innerText.slice(0, 80));
  });
  return problems;
}"""
"""Everything wrong with the page a reader would see: outputs outside or clipped by their cell, broken images,
stderr boxes, widget reprs in place of views."""
