"""Static views of a run: shown from its RunState, without ipywidgets."""

from __future__ import annotations

import subprocess
import sys

from matplotlib.figure import Figure

from mlwf_nb.rundir.events import job_state_event
from mlwf_nb.runs import RunState
from mlwf_nb.views import show_state


def test_views_import_no_ipywidgets():
    code = "import sys, mlwf_nb.views, mlwf_nb.views.scenes; print('ipywidgets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_show_state_of_a_failed_run(tmp_path, capsys):
    (tmp_path / "err").write_text("Traceback\nValueError: bad scene\n")
    rs = RunState(run_dir=tmp_path)
    events = [{"type": "run_started", "total": 2},
              {"type": "epoch", "job": "ID1", "epoch": 1, "metrics": {"loss": 1.0, "val_loss": 1.2}},
              job_state_event(job="ID1", name="train_ID1", step="train", state="succeeded", try_=1, exit_code=0),
              {**job_state_event(job="ID2", name="evaluate_ID2", step="evaluate", state="failed", try_=1,
                                 exit_code=1), "stderr": "err"},
              {"type": "artifact", "kind": "confusion_matrix", "matrix": [[2, 1], [0, 3]], "classes": ["a", "b"]},
              {"type": "trial_finished", "round": 0, "trial": 1, "objective": 0.5, "status": "COMPLETED"},
              {"type": "run_finished", "state": "Failure"}]
    rs.apply([{"seq": i, **e} for i, e in enumerate(events, 1)])
    shown = show_state(rs, title=str(tmp_path))
    assert shown["state"] == "Failure" and isinstance(shown["history"], Figure)
    assert isinstance(shown["confusion"], Figure) and [r["trial"] for r in shown["leaderboard"]] == [1]
    out = capsys.readouterr().out  # IPython.display outside a kernel prints what it shows
    assert "evaluate_ID2" in out or "HTML" in out
