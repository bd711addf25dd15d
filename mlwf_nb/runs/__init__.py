"""Runs: the Run handle, and the one way to read a run (a follower folding events into a RunState)."""

from __future__ import annotations

from mlwf_nb.rundir.states import FINAL_STATES, JOB_STATES
from mlwf_nb.runs.handle import Run, check_spec, default_run_dir, plan, submit
from mlwf_nb.runs.state import RunFollower, RunLengthList, RunState

__all__ = ["Run", "submit", "plan", "check_spec", "default_run_dir", "RunState", "RunFollower", "RunLengthList",
           "FINAL_STATES", "JOB_STATES"]
