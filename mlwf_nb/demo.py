"""``make demo``: the main job end to end on the embedded local backend.

Runs the tutorial notebook ``01_land_cover_quickstart.ipynb`` through papermill
when it is present, otherwise the ``cpu`` preset through the Run API, and prints
where the confusion matrix, the classification maps and the report are.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit code."""
    from mlwf_nb.runs import submit

    preset = (argv or sys.argv[1:] or [os.environ.get("MLWF_DEMO_PRESET", "cpu")])[0]
    start = time.monotonic()
    run = submit(preset, run_dir=Path("runs") / f"demo-{preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"run directory: {run.dir}", flush=True)
    from mlwf_nb.cli import _watch

    code = _watch(run)
    print(f"\nfinished: {run.state} in {time.monotonic() - start:.0f} s")
    for name, path in run.outputs().items():
        print(f"  {name:24} {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
