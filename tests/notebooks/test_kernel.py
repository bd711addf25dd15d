"""The mlwf kernel: its spec, and absl/TensorFlow start-up lines kept out of the cells."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlwf_nb.kernel import KERNEL_ENV, NativeLogFilter, is_native_log, kernel_spec

ROOT = Path(__file__).resolve().parents[2]
ABSL = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796310928.440764   12821 port.cc:153] oneDNN custom operations are on. You may see ...",
    "W0000 00:00:1758131045.228000 3722035 computation_placer.cc:177] computation placer already registered.",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
]
KEPT = [
    "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory",
    "Traceback (most recent call last):",
    "W0000 is how my own message starts",
    "epoch 1/3: loss 0.41",
]


@pytest.mark.parametrize("line", ABSL)
def test_native_info_and_warning_lines_are_recognised(line):
    assert is_native_log(line + "\n")


@pytest.mark.parametrize("line", KEPT)
def test_errors_and_other_output_are_not(line):
    assert not is_native_log(line + "\n")


def test_filter_routes_lines_and_passes_partial_lines_on(tmp_path):
    out_r, out_w = os.pipe()          # what the fd was: the cell
    log = (tmp_path / "server.log").open("wb")
    src_w = os.dup(out_w)             # the fd native code writes to, going to the cell until now
    os.set_blocking(out_r, False)
    filt = NativeLogFilter(src_w, divert=log.fileno(), flush_after=0.05).install()
    os.write(src_w, ("\n".join(ABSL[:2]) + "\nkept line\n" + ABSL[3][:30]).encode())
    os.write(src_w, (ABSL[3][30:] + "\n50%").encode())
    deadline, got = time.monotonic() + 10, b""
    while time.monotonic() < deadline and not got.endswith(b"50%"):
        time.sleep(0.02)
        try:
            got += os.read(out_r, 4096)
        except BlockingIOError:
            pass
    assert got == b"kept line\n50%"
    os.close(src_w)
    filt._thread.join(5)
    log.close()
    assert (tmp_path / "server.log").read_text().splitlines() == [ABSL[0], ABSL[1], ABSL[3]]
    for fd in (out_r, out_w, filt.keep):
        os.close(fd)


def test_installed_spec_matches_the_committed_kernel_json():
    committed = json.loads((ROOT / "kernels" / "mlwf" / "kernel.json").read_text())
    spec = kernel_spec("python3")
    assert committed == spec and spec["env"] == KERNEL_ENV
    assert spec["argv"][1:3] == ["-m", "mlwf_nb.kernel"]


def test_cells_of_the_mlwf_kernel_see_no_native_log_lines(mlwf_kernel):
    """A real mlwf kernel: absl lines written to fd 2 go to its log; an error line still reaches the cell."""
    from jupyter_client.manager import start_new_kernel

    # ipykernel leaves fd 2 alone under pytest (PYTEST_CURRENT_TEST): start it as Jupyter would
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    km, kc = start_new_kernel(kernel_name=mlwf_kernel, env=env)
    try:
        code = ("import os\n"
                f"os.write(2, {(ABSL[0] + chr(10) + ABSL[1] + chr(10)).encode()!r})\n"
                f"os.write(2, {(KEPT[0] + chr(10)).encode()!r})\n"
                "import time; time.sleep(0.5)\n"
                "print(os.environ['KERAS_BACKEND'])")
        streams: list[tuple[str, str]] = []
        kc.execute_interactive(code, timeout=60, output_hook=lambda m: streams.append(
            (m["content"]["name"], m["content"]["text"])) if m["msg_type"] == "stream" else None)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    stderr = "".join(t for n, t in streams if n == "stderr")
    stdout = "".join(t for n, t in streams if n == "stdout")
    assert "absl" not in stderr and "oneDNN" not in stderr, stderr
    assert KEPT[0] in stderr
    assert stdout.strip() == "tensorflow"
