"""The project's Jupyter kernel: ``mlwf kernel install [--user|--sys-prefix|--prefix P]``.

The kernel runs this environment's Python through ``python -m mlwf_nb.kernel``,
which starts an ordinary ipykernel with two things set where the kernel starts
(never in a notebook cell):

* ``KERAS_BACKEND`` (and ``TF_CPP_MIN_LOG_LEVEL``), so the tutorials use the
  toolkit's stack;
* quiet native logs: TensorFlow 2.16+ logs through absl, which ignores
  ``TF_CPP_MIN_LOG_LEVEL`` for its start-up lines (``WARNING: All log messages
  before absl::InitializeLog() ...``, ``I0000 ... oneDNN custom operations are
  on ...``). ipykernel copies everything written to file descriptor 2 into the
  running cell, where these lines showed as red stderr boxes. The launcher puts
  a line filter in front of that copy: INFO and WARNING lines of absl/TensorFlow
  go to the kernel's own stderr (the Jupyter server's log, or papermill's
  terminal), every other byte reaches the cell as before, errors included.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["KERNEL_NAME", "KERNEL_ENV", "kernel_spec", "install_kernel", "is_native_log", "NativeLogFilter",
           "main"]

KERNEL_NAME = "mlwf"
KERNEL_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
_KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels" / KERNEL_NAME

_NATIVE_LOG = re.compile(
    r"(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.+-]+:\d+\] "           # absl: I0000 00:00:17.. 123 port.cc:153]
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] [\w./+-]+:\d+\] "   # tsl: 2025-09-17 14:44:05.1: I a/b.cc:32]
    r"|To enable the following instructions: .*rebuild TensorFlow)"   # the second line of cpu_feature_guard
)


def is_native_log(line: str) -> bool:
    """Whether ``line`` is an INFO or WARNING line of absl/TensorFlow's native logging (errors are not)."""
    return _NATIVE_LOG.match(line) is not None


class NativeLogFilter:
    """Sends absl/TensorFlow INFO and WARNING lines written to a file descriptor elsewhere.

    After :meth:`install`, writes to ``fd`` go through a pipe to a thread that
    passes each line on to what ``fd`` was before (``keep``), unless it is a
    native log line, which goes to ``divert`` instead. A partial line is passed
    on after ``flush_after`` seconds without a newline (progress bars).
    """

    def __init__(self, fd: int = 2, divert: int | None = None, flush_after: float = 0.2) -> None:
        self.fd = fd
        self.divert = divert
        self.flush_after = flush_after
        self.keep = -1
        self._read = -1
        self._thread: threading.Thread | None = None

    def install(self) -> NativeLogFilter:
        """Put the filter in front of ``fd``; returns self."""
        self.keep = os.dup(self.fd)
        self._read, write = os.pipe()
        os.dup2(write, self.fd)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, name="mlwf-native-log-filter", daemon=True)
        self._thread.start()
        return self

    def _route(self, data: bytes) -> None:
        line = data.decode("utf-8", "replace")
        if is_native_log(line):
            if self.divert is not None:
                os.write(self.divert, data)
        else:
            os.write(self.keep, data)

    def _pump(self) -> None:
        pending = b""
        while True:
            ready, _, _ = select.select([self._read], [], [], self.flush_after if pending else None)
            if not ready:  # a partial line waited long enough: pass it on
                os.write(self.keep, pending)
                pending = b""
                continue
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._route(line + b"\n")
        if pending:
            self._route(pending)


def kernel_spec(python: str | None = None) -> dict[str, object]:
    """The kernel.json content for this environment's Python."""
    return {
        "argv": [python or sys.executable, "-m", "mlwf_nb.kernel", "-f", "{connection_file}"],
        "display_name": "Python 3 (mlwf_nb)",
        "language": "python",
        "env": dict(KERNEL_ENV),
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


def main(argv: list[str] | None = None) -> None:
    """Start an ipykernel (``argv`` as for ``ipykernel_launcher``) with the kernel's env and quiet native logs."""
    from ipykernel.kernelapp import IPKernelApp

    for key, value in KERNEL_ENV.items():
        os.environ.setdefault(key, value)
    server_log = os.dup(2)  # the kernel's own stderr, before ipykernel sends fd 2 to the cells
    app = IPKernelApp.instance()
    app.initialize(argv)
    NativeLogFilter(2, divert=server_log).install()
    app.start()


if __name__ == "__main__":
    main()
