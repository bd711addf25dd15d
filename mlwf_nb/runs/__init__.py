"""Runs: the Run handle, and the one way to read a run.

:class:`Run` submits a spec or attaches to a run directory; its :class:`Follower`
reads ``events.jsonl`` incrementally and folds it into a :class:`RunState`, which
``Run.status()``, ``Run.events()``, ``Run.wait()``, ``mlwf watch``, the RunMonitor
widget and the static views all read. Nothing above this package parses run files.
"""

from __future__ import annotations

from mlwf_nb.rundir.states import FINAL_STATES, JOB_STATES
from mlwf_nb.runs.follow import Follower
from mlwf_nb.runs.handle import Run, check_spec, default_run_dir, plan, submit
from mlwf_nb.runs.state import RunLengthList, RunState

__all__ = ["Run", "submit", "plan", "check_spec", "default_run_dir", "RunState", "Follower", "RunLengthList",
           "FINAL_STATES", "JOB_STATES"]
