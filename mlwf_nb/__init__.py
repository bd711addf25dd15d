"""mlwf_nb: Jupyter-first machine-learning workflows on Pegasus.

The top level stays light (no TensorFlow import): ``import mlwf_nb`` is fast,
and heavy layers load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwf_nb.errors import MlwfError, SpecError
from mlwf_nb.spec import RunSpec, load_spec

__version__ = "0.1.0"

__all__ = ["__version__", "MlwfError", "SpecError", "RunSpec", "load_spec", "submit", "Run", "sweep", "record"]

if TYPE_CHECKING:
    from mlwf_nb.records import record
    from mlwf_nb.runs import Run, submit
    from mlwf_nb.sweeps import sweep


def __getattr__(name: str) -> Any:
    if name in ("submit", "Run"):
        from mlwf_nb import runs

        return getattr(runs, name)
    if name == "sweep":
        from mlwf_nb import sweeps

        return sweeps.sweep
    if name == "record":
        from mlwf_nb import records

        return records.record
    raise AttributeError(f"module 'mlwf_nb' has no attribute {name!r}")
