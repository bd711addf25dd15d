"""Shared fixtures of the reliability suite: one tiny dataset per session, tiny run settings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlwf_nb.backends._leftovers import start_records

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def rel_dataset(tmp_path_factory) -> Path:
    """4 scenes of 64x64 pixels from 2 sources, with a manifest (never modified: copy it to break it)."""
    from mlwf_nb.data.integrity import write_manifest
    from mlwf_nb.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("reliability") / "ds"
    generate_dataset(root, scenes=4, height=64, width=64, sources=("GF-2", "GF-1"), seed=1)
    write_manifest(root)
    return root


def tiny_overrides(dataset: Path, *extra: str) -> list[str]:
    """The tiny preset made smaller: 2 train scenes x 64 patches of 16 px, batch 8, jobs 2."""
    return [f"dataset.path={dataset}", "dataset.synthetic=false", "patches.sizes=[16]",
            "patches.per_scene=64", "evaluate.window_sizes=[16]", "train.batch_size=8",
            "execution.jobs=2", *extra]


def wait_for(pred, timeout: float = 60.0, interval: float = 0.01):
    """Poll ``pred`` until it returns something truthy (returned) or ``timeout`` passes (None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    return None


def job_pids(run: Path, step: str) -> dict[int, int]:
    """{try: pid} of the live processes of ``<step>_*`` jobs of the run.

    From the executor's own record (``start NAME try N pid P`` lines of executor.log),
    which holds for fresh processes and for jobs forked from a warm worker alike
    (those keep the worker's command line and initial environment in /proc).
    """
    out = {}
    prefix = step.replace("-", "_") + "_"
    for name, try_, pid in start_records(run / "executor.log"):
        if not name.startswith(prefix):
            continue
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out[try_] = pid
    return out


@pytest.fixture
def repo_on_path(monkeypatch):
    """Jobs of the rel-ticks pipeline import tests.reliability.rel_steps."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return REPO
