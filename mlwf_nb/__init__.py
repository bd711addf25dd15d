"""mlwf_nb: Jupyter-first machine-learning workflows on Pegasus.

The top level stays light (no TensorFlow import): ``import mlwf_nb`` is fast,
and heavy layers load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwf_nb.errors import MlwfError, SpecError
from mlwf_nb.spec import RunSpec, load_spec

__version__ = "0.1.0"

__all__ = ["__version__", "MlwfError", "SpecError", "RunSpec", "load_spec", "submit", "Run"]

if TYPE_CHECKING:
    from mlwf_nb.runs import Run, submit


def __getattr__(name: str) -> Any:
    if name in ("submit", "Run"):
        from mlwf_nb import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'mlwf_nb' has no attribute {name!r}")
