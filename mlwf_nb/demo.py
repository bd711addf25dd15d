"""``make demo``: the main job end to end on the embedded local backend.

Runs the tutorial notebook ``01_land_cover_quickstart.ipynb`` through papermill
with the ``cpu`` preset (the same notebook a researcher opens in JupyterLab), then
prints where the executed notebook, the confusion matrix, the classification
maps and the report are. ``python -m mlwf_nb.demo tiny`` runs the tiny preset.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_land_cover_quickstart.ipynb"


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit code."""
    import papermill

    from mlwf_nb.runs import Run

    args = sys.argv[1:] if argv is None else argv
    preset = args[0] if args else os.environ.get("MLWF_DEMO_PRESET", "cpu")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path("runs") / f"demo-{preset}-{stamp}"
    executed = Path("runs") / f"demo-{preset}-{stamp}-01_land_cover_quickstart.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    print(f"running {NOTEBOOK.name} with preset={preset} through papermill; run directory {run_dir}", flush=True)
    papermill.execute_notebook(
        str(NOTEBOOK), str(executed), kernel_name="mlwf", progress_bar=False, log_output=False,
        parameters={"preset": preset, "run_dir": str(run_dir), "backend": "local",  # the preset's own dataset
                    "wait_for_run": True})
    run = Run.attach(run_dir)
    state = run.state
    print(f"\nfinished: {state} in {time.monotonic() - start:.0f} s")
    print(f"  executed notebook        {executed.resolve()}")
    for name, path in run.outputs().items():
        print(f"  {name:24} {path}")
    metrics = run.dir / "outputs" / "metrics.json"
    if metrics.exists():
        import json

        m = json.loads(metrics.read_text())
        print(f"\noverall accuracy {m['overall_accuracy']:.3f}, kappa {m['kappa']:.3f}, mIoU {m['miou']:.3f}")
    return 0 if state == "Success" else 1


if __name__ == "__main__":
    sys.exit(main())
