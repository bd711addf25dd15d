"""The GPU training path imports no TensorFlow, and light steps never load Keras.

A GPU machine may have Keras on JAX and no TensorFlow (``benchmarks/gpu``): every
module reachable from ``mlwf_nb.ml.train``, ``mlwf_nb.ml.models`` and
``mlwf_nb.data.shards`` must import ``keras`` only, never ``tensorflow``. (JAX is
not installed here, so this is checked on the source's import graph.) Short
steps pay for every module they import: those that need no model must not load
Keras/TensorFlow (several seconds a job).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_PATH = ["mlwf_nb.ml.train", "mlwf_nb.ml.models", "mlwf_nb.ml.checkpoint", "mlwf_nb.data.shards",
            "mlwf_nb.data.augment"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _reachable(roots: list[str]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = _imports(path)
        todo.extend(n for n in seen[name] if n.startswith("mlwf_nb"))
    return seen


def test_gpu_training_path_imports_no_tensorflow():
    graph = _reachable([*GPU_PATH, "benchmarks.gpu.bench_resnet50"])
    assert "mlwf_nb.ml.train" in graph and "benchmarks.gpu.bench_resnet50" in graph
    bad = {mod: sorted(n for n in names if n.split(".")[0] == "tensorflow") for mod, names in graph.items()}
    assert not {m: b for m, b in bad.items() if b}, "these modules import tensorflow directly"


@pytest.mark.parametrize("name", ["integrity", "check", "split", "histogram", "fit-stretch", "preprocess",
                                  "hpo-propose", "hpo-select"])
def test_light_steps_do_not_load_keras(name):
    """``mlwf step NAME`` resolves and parses without Keras; the step bodies import it lazily."""
    code = ("import sys\nfrom mlwf_nb.cli import main\n"
            f"try:\n    main(['step', {name!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "import mlwf_nb.steps.landcover, mlwf_nb.steps.hpo\n"
            "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax', 'keras_tuner') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]
