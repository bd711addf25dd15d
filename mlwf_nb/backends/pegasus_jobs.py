"""Pegasus's jobs as mlwf shows them: job names, per-job status of a submit directory, findings.

:func:`map_job_name` splits a Pegasus job name into its step (or the kind of job Pegasus added:
transfers, directories, cleanup) and id; :func:`jobs_status` turns a read submit directory
(:mod:`mlwf_nb.backends.submitdir`) into the per-job dictionaries of the backend's status, and
:func:`analyze` says what is known about its failed jobs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from mlwf_nb.backends.submitdir import SubmitDirStatus

__all__ = ["AUXILIARY_KINDS", "map_job_name", "is_auxiliary", "jobs_status", "analyze", "tail"]

#: job-name prefixes of the jobs Pegasus adds to a workflow, longest first
AUXILIARY_KINDS = ("stage_in_local", "stage_in_remote", "stage_in", "stage_out_local", "stage_out_remote",
                   "stage_out", "stage_inter", "stage_worker", "create_dir", "cleanup", "register", "chmod",
                   "pegasus_plan", "dax", "subdax")


def map_job_name(name: str) -> tuple[str, str]:
    """Split a Pegasus job name into (step or auxiliary kind, id).

    ``train_ID0000007`` -> ``("train", "ID0000007")``;
    ``stage_in_local_local_0_0`` -> ``("stage_in_local", "local_0_0")``;
    ``create_dir_process_0_local`` -> ``("create_dir", "process_0_local")``.
    A name with no ``_ID`` part and no auxiliary prefix maps to ``(name, "")``.
    """
    for kind in AUXILIARY_KINDS:
        if name == kind or name.startswith(kind + "_"):
            return kind, name[len(kind) + 1:]
    step, sep, jid = name.rpartition("_ID")
    if sep and step:
        return step, "ID" + jid
    return name, ""


def is_auxiliary(name: str) -> bool:
    """True for jobs Pegasus added (transfers, directories, cleanup, registration)."""
    return map_job_name(name)[0] in AUXILIARY_KINDS


def tail(text: str, lines: int = 20) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def jobs_status(sd: SubmitDirStatus) -> dict[str, dict[str, Any]]:
    """Per job of a read submit directory: state, exit code, tries, site, step, id, times (failed: stderr tail)."""
    out: dict[str, dict[str, Any]] = {}
    for name, s in sd.jobs.items():
        step, jid = map_job_name(name)
        entry: dict[str, Any] = {"state": s.state, "exit_code": s.exit_code, "tries": s.tries, "site": s.site,
                                 "step": step, "id": jid, "auxiliary": step in AUXILIARY_KINDS,
                                 "started": s.started, "finished": s.finished}
        if s.state == "failed":
            entry["stderr_tail"] = _stderr_tail(sd, name)
        out[name] = entry
    return out


def _stderr_tail(sd: SubmitDirStatus, job: str) -> str:
    ks = sd.kickstart.get(job)
    if ks and (ks[-1].stderr or ks[-1].stdout):
        return tail(ks[-1].stderr or ks[-1].stdout)
    inst = [i for i in sd.instances if i.job == job]
    return tail(inst[-1].stdout_text or inst[-1].stderr_text) if inst else ""


def analyze(sd: SubmitDirStatus) -> dict[str, Any]:
    """Findings about failed jobs; adds ``pegasus-analyzer --json`` output where it is installed."""
    findings = []
    for name, s in sd.jobs.items():
        if s.state != "failed":
            continue
        ks = sd.kickstart.get(name, [])
        findings.append({"job": name, "step": map_job_name(name)[0], "exit_code": s.exit_code,
                         "tries": s.tries, "site": s.site,
                         "kickstart_exit_code": ks[-1].exit_code if ks else None,
                         "stderr": _stderr_tail(sd, name)})
    out: dict[str, Any] = {"source": "submitdir", "failed": findings}
    tool = shutil.which("pegasus-analyzer")
    if tool:
        try:
            proc = subprocess.run([tool, "--json", str(sd.path)], capture_output=True, text=True,
                                  timeout=60, check=False)
            out["report"] = json.loads(proc.stdout[proc.stdout.index("{"):])
            out["source"] = "pegasus-analyzer"
        except (subprocess.TimeoutExpired, ValueError, OSError) as err:
            out["report_error"] = str(err)
    return out
