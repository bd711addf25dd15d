"""Planning a run with ``pegasus-plan``, detached from the caller, as the local executor is.

:meth:`PegasusBackend.submit <mlwf_nb.backends.pegasus.PegasusBackend.submit>` starts
``python -m mlwf_nb.backends.pegasus_plan RUN_DIR`` in its own session and returns: a
closed notebook or a finished ``mlwf run`` does not stop it. This process

1. runs the planner command recorded in ``<run>/pegasus.json`` (``pegasus-plan ... --submit``),
   its output going to ``<run>/pegasus-plan.log``;
2. records the outcome in ``pegasus.json``: ``Submitted`` with the submit directory, or
   ``PlanFailed`` with the planner's own error lines (also when the workflow was planned but
   HTCondor refused it: then the submit directory is kept, and ``mlwf resume`` submits it);
   a failure also ends ``events.jsonl`` (``log`` events with those lines, then
   ``run_finished{state: PlanFailed}``), so every reader of the run stops on it;
3. once submitted, relays the submit directory into ``events.jsonl`` until the run ends
   (:class:`~mlwf_nb.backends.pegasus_relay.PegasusRelay`).

``pegasus.json`` holds ``planner_pid``: a run still ``Planning`` whose planner process is
gone is reported PlanFailed (see :func:`planning_state`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json, write_json

__all__ = ["STATE_FILE", "LOG_FILE", "planner_errors", "record", "start", "planning_state", "plan", "main"]

STATE_FILE = "pegasus.json"
LOG_FILE = "pegasus-plan.log"
_STAMP = re.compile(r"^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d\.\d+ \w+:\s*")
_MARKERS = ("[FATAL ERROR]", "[ERROR]", "Error:", "ERROR:", "Message:")


def planner_errors(text: str, limit: int = 12) -> list[str]:
    """The planner's own error lines from its output (timestamps dropped), at most ``limit``, last ones kept.

    A ``[FATAL ERROR]`` line is followed by its numbered causes (`` [1] java.lang...``),
    which are kept too.
    """
    out: list[str] = []
    causes = False
    for raw in text.splitlines():
        line = _STAMP.sub("", raw).strip()
        if not line:
            continue
        if re.match(r"^\[\d+\]", line) and causes:
            out.append(line)
            continue
        causes = "[FATAL ERROR]" in line
        if any(m in line for m in _MARKERS) and line not in ("[FATAL ERROR]",):
            out.append(line)
    return out[-limit:]


def record(run: Path, **fields: Any) -> dict[str, Any]:
    """Update ``<run>/pegasus.json`` with ``fields`` (atomically); returns the new content."""
    try:
        state = dict(read_json(run / STATE_FILE))
    except (FileNotFoundError, ValueError):
        state = {}
    state.update(fields)
    write_json(run / STATE_FILE, state)
    return state


def start(run: Path, cmd: list[str]) -> subprocess.Popen[bytes]:
    """Record ``Planning`` and start the detached planning process for ``run``."""
    record(run, state="Planning", cmd=cmd, submit_dir=None, started=time.time(), errors=[])
    with open(run / LOG_FILE, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlwf_nb.backends.pegasus_plan", str(run)], cwd=run,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    record(run, planner_pid=proc.pid)
    return proc


def _alive(pid: Any) -> bool:
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, TypeError, ValueError):
        return False
    return b"pegasus_plan" in cmdline


def planning_state(st: dict[str, Any]) -> dict[str, Any]:
    """``st`` (``pegasus.json``), PlanFailed when it says Planning but its planner process is gone."""
    if st.get("state") == "Planning" and st.get("planner_pid") and not _alive(st["planner_pid"]):
        return {**st, "state": "PlanFailed",
                "errors": [*st.get("errors", []), "the planning process ended without recording a result; "
                           f"see {LOG_FILE} in the run directory"]}
    return st


def _end(run: Path, errors: list[str], message: str) -> None:
    """A failed plan ends the run's events: the planner's lines as ``log`` events, then ``run_finished``."""
    from mlwf_nb.rundir.events import EventWriter

    with EventWriter(run / "events.jsonl") as w:
        for line in errors:
            w.write({"type": "log", "level": "error", "job": "pegasus-plan", "message": line})
        w.write({"type": "run_finished", "state": "PlanFailed", "message": message, "failed_jobs": []})


def plan(run: Path) -> int:
    """Run the recorded planner command; record and announce the outcome; relay a submitted run. Exit code."""
    st = read_json(run / STATE_FILE)
    cmd = list(st["cmd"])
    with open(run / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, cwd=run, capture_output=True, text=True, check=False)
        except OSError as err:
            proc = subprocess.CompletedProcess(cmd, 127, "", f"Error: cannot run {cmd[0]}: {err}")
        log.write(proc.stdout + proc.stderr)
    submit_dir = _submit_dir(proc.stdout, run)
    if proc.returncode == 0 and submit_dir:
        record(run, state="Submitted", submit_dir=submit_dir, returncode=0, submitted=time.time())
        return _relay(run, submit_dir)
    errors = planner_errors(proc.stdout + "\n" + proc.stderr) or [f"pegasus-plan exited {proc.returncode}"]
    planned = submit_dir is not None and any(Path(submit_dir).glob("*.dag.condor.sub"))
    if planned:
        message = (f"pegasus-plan planned the workflow into {submit_dir}, but submitting it to HTCondor failed: "
                   f"{errors[-1]}; start HTCondor (condor_master), then `mlwf resume {run}`")
    else:
        message = f"pegasus-plan refused the workflow: {errors[-1]} (all of its output: {run / LOG_FILE})"
    record(run, state="PlanFailed", submit_dir=submit_dir, returncode=proc.returncode, errors=errors,
           planned=planned, message=message, finished=time.time())
    _end(run, errors, message)
    return 1


def _submit_dir(stdout: str, run: Path) -> str | None:
    """The submit directory from the planner's ``--json`` answer, else the one it made under ``<run>/submit``."""
    try:
        found = json.loads(stdout[stdout.index("{"):]).get("submit_dir")
        if found:
            return str(found)
    except ValueError:
        pass
    made = sorted((run / "submit").glob("*/braindump.yml")) if (run / "submit").is_dir() else []
    return str(made[-1].parent) if made else None


def _relay(run: Path, submit_dir: str) -> int:
    from mlwf_nb.backends.pegasus_relay import PegasusRelay

    relay = PegasusRelay(run, submit_dir).start()
    relay.join()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlwf_nb.backends.pegasus_plan RUN_DIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m mlwf_nb.backends.pegasus_plan RUN_DIR", file=sys.stderr)
        return 2
    run = Path(args[0]).resolve()
    os.chdir(run)
    return plan(run)


if __name__ == "__main__":
    sys.exit(main())
