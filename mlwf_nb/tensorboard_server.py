"""``mlwf tensorboard RUN_DIR``: TensorBoard over a run's ``outputs/tensorboard`` on 127.0.0.1.

Every training job of a run writes its event files under
``outputs/tensorboard/<job>/{train,validation}/`` (:mod:`mlwf_nb.ml.tensorboard`);
one TensorBoard over that folder shows every job (the final training, each HPO
trial) as its own runs. In a notebook the same folder works with TensorBoard's
own magic: ``%load_ext tensorboard`` then ``%tensorboard --logdir RUN_DIR/outputs/tensorboard``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mlwf_nb.errors import RunError

__all__ = ["logdir", "serve"]


def logdir(run_dir: str | os.PathLike[str]) -> Path:
    """The run's TensorBoard folder.

    Raises:
        RunError: ``run_dir`` is not a run directory, or no training has written logs yet.
    """
    run = Path(run_dir)
    if not (run / "workflow.yml").exists():
        raise RunError(f"{str(run)!r} is not a run directory (no workflow.yml); give the directory `mlwf run` printed")
    folder = run / "outputs" / "tensorboard"
    if not folder.is_dir() or not any(folder.rglob("*tfevents*")):
        raise RunError(f"{str(folder)!r} holds no TensorBoard logs yet: they appear when a training job of the run "
                       "starts (train, trials); `mlwf status` shows whether one has")
    return folder


def serve(run_dir: str | os.PathLike[str], port: int = 0, stop: threading.Event | None = None) -> int:
    """Start TensorBoard on 127.0.0.1 (``port`` 0: a free one), print its address, serve until ``stop``/Ctrl-C."""
    from tensorboard import program

    folder = logdir(run_dir)
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(folder), "--host", "127.0.0.1", "--port", str(int(port)),
                          "--reload_interval", "5", "--load_fast", "false"])
    url = board.launch()
    print(f"TensorBoard for {folder} at {url} (Ctrl-C stops it)", flush=True)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    return 0
