"""Report results from a notebook: ``mlwf_nb.record("accuracy", 0.91)``.

A recorded value is kept in the notebook itself, as a display output of its own
MIME type (:data:`RECORD_MIME`) in the cell that recorded it, so it survives in
the executed notebook that papermill writes. A sweep (:mod:`mlwf_nb.sweeps`)
reads it back from there with :func:`read_records`; the same notebook run by
hand shows ``accuracy = 0.91`` under the cell. Outside IPython ``record`` only
checks and returns the value.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from mlwf_nb.errors import SpecError

__all__ = ["RECORD_MIME", "record", "read_records"]

RECORD_MIME = "application/vnd.mlwf.record+json"


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (numpy scalars and arrays become numbers and lists)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    json.dumps(value, allow_nan=False)  # raises for what JSON cannot hold
    return value


def record(name: str, value: Any) -> Any:
    """Record a result of this notebook under ``name`` (a sweep collects it into ``outputs/sweep.json``).

    Args:
        name: A short key, e.g. ``"accuracy"``; recording it again replaces the value.
        value: A number, string, bool, or a list/dict of those (numpy scalars are fine).

    Returns:
        ``value`` as recorded.

    Raises:
        SpecError: ``name`` is empty, or ``value`` is not JSON data (a NaN included).
    """
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"record(name, value): name must be a non-empty string, got {name!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"record({name!r}, {value!r}): not a finite number; record None or a string instead")
    try:
        value = _plain(value)
    except (TypeError, ValueError) as err:
        raise SpecError(f"record({name!r}, ...): {type(value).__name__} is not JSON data ({err}); record "
                        "numbers, strings, bools, or lists and dicts of them") from err
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return value
    if get_ipython() is not None:
        from IPython.display import display

        display({RECORD_MIME: {"name": name, "value": value}, "text/plain": f"{name} = {value!r}"}, raw=True)
    return value


def read_records(notebook: str | os.PathLike[str] | Any) -> dict[str, Any]:
    """The values recorded in an (executed) notebook, by name, the last recording of a name winning."""
    import nbformat

    nb = notebook if hasattr(notebook, "cells") else nbformat.read(os.fspath(notebook), as_version=4)
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data", {}).get(RECORD_MIME)
            if isinstance(data, dict) and "name" in data:
                found[str(data["name"])] = data.get("value")
    return found
