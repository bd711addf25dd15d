"""Why a job failed, in one line: a signal is named, not the last line the job happened to print."""

from __future__ import annotations

from mlwf_nb.cli import format_status
from mlwf_nb.rundir.states import exit_reason

TF_NOISE = "I0000 00:00:1796311109.1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized"


def test_a_killed_job_says_which_signal():
    assert exit_reason(-9, TF_NOISE) == "killed by signal 9 (SIGKILL)"
    assert exit_reason(-15, "") == "killed by signal 15 (SIGTERM)"


def test_bad_input_and_errors_are_named():
    reason = exit_reason(65, f"{TF_NOISE}\nmlwf step integrity: error: 'images/a.tif': sha256 differs\n")
    assert reason.startswith("bad input (exit 65): not retried") and "sha256 differs" in reason
    assert exit_reason(1, "Traceback (most recent call last):\n  File x\nValueError: boom\n") == "ValueError: boom"
    assert exit_reason(3, "") == "exit 3"


def test_format_status_puts_the_reason_on_the_failed_line():
    st = {"totals": {"percent_done": 50.0, "succeeded": 1, "failed": 1, "queued": 0, "unready": 0, "ready": 0,
                     "total": 2},
          "dags": {"root": {"state": "Failure"}},
          "mlwf": {"state": "Failure", "failed_jobs": ["train_ID0000002"],
                   "jobs": {"train_ID0000002": {"state": "failed", "exit_code": -9, "tries": 3,
                                                "stderr_tail": TF_NOISE}}}}
    text = format_status(st)
    assert "FAILED train_ID0000002 (exit -9): killed by signal 9 (SIGKILL)" in text
