"""The project's Jupyter kernel: ``mlwf kernel install [--user|--sys-prefix|--prefix P]``.

The kernel runs this environment's Python with ``KERAS_BACKEND`` set, so the
tutorial notebooks (which name the ``mlwf`` kernel) use the toolkit's stack.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["KERNEL_NAME", "kernel_spec", "install_kernel"]

KERNEL_NAME = "mlwf"
_KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels" / KERNEL_NAME


def kernel_spec(python: str | None = None) -> dict[str, object]:
    """The kernel.json content for this environment's Python."""
    return {
        "argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (mlwf_nb)",
        "language": "python",
        "env": {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
        "metadata": {"debugger": True},
    }


def install_kernel(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> str:
    """Install the ``mlwf`` kernel; returns the directory it was installed to.

    Default (no flag) is ``--sys-prefix`` so the kernel lives with the environment.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if not (user or prefix):
        sys_prefix = True
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / KERNEL_NAME
        src.mkdir()
        (src / "kernel.json").write_text(json.dumps(kernel_spec(), indent=2) + "\n")
        for logo in ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg"):
            if (_KERNEL_DIR / logo).exists():
                shutil.copy(_KERNEL_DIR / logo, src / logo)
        target_prefix = sys.prefix if sys_prefix else prefix
        return str(KernelSpecManager().install_kernel_spec(str(src), KERNEL_NAME, user=user,
                                                           prefix=target_prefix))
