"""Imports point down the layers of DESIGN.md (docs/architecture.md lists them as they are).

Every ``import``/``from ... import`` of every module counts, the ones inside functions and under
``TYPE_CHECKING`` too: a lazy import of a higher layer is still a dependency on it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mlwf_nb"

# top to bottom; a unit is a subpackage or a top-level module of mlwf_nb ("__init__": the package itself)
LAYERS: list[tuple[str, set[str]]] = [
    ("front doors", {"cli", "__init__", "demo"}),
    ("widgets", {"widgets"}),
    ("views", {"views"}),
    ("notebook services", {"params", "sweeps"}),
    ("runs", {"runs"}),
    ("backends", {"backends"}),
    ("workflow", {"workflow", "catalogs", "sites", "planner_rules"}),  # planner_rules: lands with issue 14
    ("pipelines", {"pipelines"}),
    ("steps", {"steps"}),
    ("ml, hpo", {"ml", "hpo"}),
    ("data", {"data"}),
    ("rundir", {"rundir"}),
    ("spec", {"spec"}),
    ("foundation", {"errors", "_io", "_yaml", "safety", "registry", "schemas", "records", "chirp", "kernel",
                    "tensorboard_server"}),
]
RANK = {unit: len(LAYERS) - i for i, (_, units) in enumerate(LAYERS) for unit in units}

# besides the order: what a unit must not import although it sits below
NEVER: dict[str, set[str]] = {
    # "a backend never knows what a step computes" (the warm worker names job modules as strings only)
    "backends": {"steps", "pipelines", "ml", "hpo", "data", "workflow"},
}
ONLY_WIDGETS_IMPORT = {"ipywidgets"}  # views (what papermill keeps) and every layer below: no ipywidgets


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones made absolute; ``from mlwf_nb import x``
    counts as ``mlwf_nb.x``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [f"{base}.{a.name}" for a in node.names] if base == "mlwf_nb" else [base]
            out += [(node.lineno, n) for n in names]
    return out


def violations(path: Path, source: str | None = None) -> list[str]:
    """What the file imports against the layers (empty: nothing)."""
    src = _unit(_module_name(path))
    bad = []
    for line, name in imports(path, source):
        where = f"mlwf_nb/{path.relative_to(PKG)}:{line}: imports {name}"
        top = name.split(".")[0]
        if top in ONLY_WIDGETS_IMPORT and src != "widgets":
            bad.append(f"{where} (only widgets/ imports {top})")
        if top != "mlwf_nb" or name == "mlwf_nb.__version__":  # the version: set before anything is imported
            continue
        dst = _unit(name)
        if dst == src:
            continue
        if dst not in RANK:
            bad.append(f"{where} ({dst!r} is in no layer: add it to LAYERS here and to docs/architecture.md)")
        elif RANK[dst] > RANK[src]:
            bad.append(f"{where} (layer {_layer(src)!r} imports the higher layer {_layer(dst)!r})")
        elif dst in NEVER.get(src, ()):
            bad.append(f"{where} ({src} never imports {dst})")
    return bad


def _layer(unit: str) -> str:
    return next(name for name, units in LAYERS if unit in units)


FILES = sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PKG).as_posix())
def test_imports_point_down_the_layers(path):
    assert _unit(_module_name(path)) in RANK, f"{path} is in no layer: add it to LAYERS and docs/architecture.md"
    assert not violations(path), "\n".join(violations(path))


@pytest.mark.parametrize(("where", "source", "why"), [
    ("data/probe.py", "def f():\n    from mlwf_nb.runs import Run\n", "imports the higher layer 'runs'"),
    ("rundir/probe.py", "from mlwf_nb.backends import get_backend\n", "imports the higher layer 'backends'"),
    ("spec/probe.py", "from ..widgets import Studio\n", "imports the higher layer 'widgets'"),
    ("views/probe.py", "import ipywidgets as w\n", "only widgets/ imports ipywidgets"),
    ("backends/probe.py", "from mlwf_nb import steps\n", "backends never imports steps"),
    ("ml/probe.py", "from mlwf_nb import newthing\n", "'newthing' is in no layer"),
])
def test_the_check_finds_an_upward_import(where, source, why):
    (found,) = violations(PKG / where, source)
    assert why in found and where in found


def test_architecture_doc_names_every_layer():
    doc = (PKG.parent / "docs" / "architecture.md").read_text()
    units = [u for _, layer in LAYERS for u in layer if (PKG / u).is_dir() or (PKG / f"{u}.py").is_file()]
    missing = [u for u in units if u != "__init__" and not re.search(rf"`{re.escape(u)}(\.py|/)`", doc)]
    assert not missing, f"docs/architecture.md does not describe {missing}"
