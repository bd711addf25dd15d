"""The sweep pipeline: one notebook, one papermill job per combination of parameter values.

notebook[c0] ... notebook[cN-1] (in parallel) -> sweep-collect (``outputs/sweep.json``, ``sweep.png``)

Spec section used: ``sweep`` (``notebook``, ``parameters: [{name, values}]``, ``kernel``,
``timeout``) and ``execution``. Every executed notebook is kept as
``outputs/notebooks/<stem>.c<i>.ipynb``. ``mlwf sweep`` and :func:`mlwf_nb.sweep`
write this spec for you.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlwf_nb.errors import SpecError
from mlwf_nb.pipelines.base import Graph, Pipeline
from mlwf_nb.spec import RunSpec
from mlwf_nb.steps.notebook import combination_label, combinations

__all__ = ["PIPELINE", "build", "prepare", "notebook_parameters"]


def notebook_parameters(path: str | Path) -> list[str]:
    """The variables of a notebook's cell tagged ``parameters`` (what papermill can set).

    Raises:
        SpecError: The notebook is missing, unreadable, or has no ``parameters`` cell.
    """
    import nbformat
    import papermill as pm

    nb_path = Path(path)
    try:
        nbformat.read(nb_path, as_version=4)
        found = pm.inspect_notebook(str(nb_path))
    except (OSError, ValueError) as err:
        raise SpecError(f"sweep.notebook: cannot read {str(nb_path)!r} as a notebook ({err})") from err
    if not found:
        raise SpecError(f"sweep.notebook: {str(nb_path)!r} has no cell tagged 'parameters' (or it is empty); "
                        "tag the cell that sets the defaults with 'parameters' (View > Cell toolbar > Tags)")
    return list(found)


def prepare(spec: RunSpec) -> None:
    """Check the notebook and that every swept name is one of its parameters (nothing is set silently)."""
    if not spec.sweep.notebook:
        raise SpecError("sweep.notebook is empty; name the notebook to sweep (mlwf sweep NOTEBOOK --param ...)")
    known = notebook_parameters(spec.sweep.notebook)
    unknown = [p.name for p in spec.sweep.parameters if p.name not in known]
    if unknown:
        raise SpecError(f"sweep.parameters: {unknown} are not parameters of {spec.sweep.notebook}; its "
                        f"'parameters' cell sets {known}")
    combinations(spec.sweep)


def build(spec: RunSpec, g: Graph) -> None:
    """Add one ``notebook`` job per combination and the ``sweep-collect`` job to ``g``."""
    path = Path(spec.sweep.notebook).resolve()
    stem = path.stem
    source = g.add_input(f"sweep/{path.name}", path, hashlib.sha256(path.read_bytes()).hexdigest())
    results = []
    for i, params in enumerate(combinations(spec.sweep)):
        result = f"work/sweep/{stem}.c{i}.result.json"
        g.add("notebook", f"notebook[{combination_label(params)}]", notebook=source, index=i,
              executed=f"outputs/notebooks/{stem}.c{i}.ipynb", result=result)
        results.append(result)
    g.add("sweep-collect", "sweep-collect", results=results, table="outputs/sweep.json",
          figure="outputs/sweep.png")


PIPELINE = Pipeline(name="sweep", build=build, prepare=prepare, task="notebooks",
                    description="One notebook over a grid of parameter values, a papermill job each")
