"""Live progress of jobs that run without a shared filesystem, through HTCondor's chirp.

Under condorio a job's own events file comes back only when the job ends. Where the
job runs under HTCondor with an I/O proxy (``+WantIOProxy = true``, which the
``condorpool`` and ``gpus`` site presets set), HTCondor puts ``_CONDOR_CHIRP_CONFIG``
in its environment; then each progress event (epoch, checkpoint, trial, artifact) is
also published as the job ClassAd attribute ``MLWF_LastEvent`` with ``condor_chirp
set_job_attr``, at most every :data:`MIN_INTERVAL` seconds (the last one always).
On the submit side the Pegasus relay reads the attribute with ``condor_q -json`` and
writes new values into the run's ``events.jsonl``, marked ``"via": "chirp"``.
Only the latest event of each job is visible this way; the full record still
arrives with the job's outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

__all__ = ["ATTRIBUTE", "PROGRESS_TYPES", "MIN_INTERVAL", "enabled", "publish", "classad_string",
           "read_attributes"]

ATTRIBUTE = "MLWF_LastEvent"
PROGRESS_TYPES = frozenset({"epoch", "checkpoint_saved", "checkpoint_restored", "trial_finished", "artifact"})
MIN_INTERVAL = 5.0
_last_sent = 0.0


def enabled() -> bool:
    """Whether this process runs as an HTCondor job with chirp available."""
    return bool(os.environ.get("_CONDOR_CHIRP_CONFIG")) and shutil.which("condor_chirp") is not None


def classad_string(text: str) -> str:
    """``text`` as a ClassAd string literal (double quotes, backslash escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def publish(event: dict[str, Any], *, force: bool = False) -> bool:
    """Publish ``event`` as the job attribute; returns whether it was sent (never raises)."""
    global _last_sent
    if event.get("type") not in PROGRESS_TYPES or not enabled():
        return False
    now = time.monotonic()
    if not force and now - _last_sent < MIN_INTERVAL and event.get("type") == "epoch":
        return False
    small = {k: v for k, v in event.items() if k not in ("matrix",)}  # keep the attribute small
    value = classad_string(json.dumps(small, separators=(",", ":"), default=str))
    try:
        subprocess.run(["condor_chirp", "set_job_attr", ATTRIBUTE, value], check=True, timeout=20,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    _last_sent = now
    return True


def read_attributes(cluster_ids: list[int], *, condor_q: str = "condor_q") -> dict[int, dict[str, Any]]:
    """The last published event of each of these HTCondor clusters (submit side), by cluster id."""
    if not cluster_ids or shutil.which(condor_q) is None:
        return {}
    constraint = f"{ATTRIBUTE} =!= undefined && ({' || '.join(f'ClusterId == {c}' for c in cluster_ids)})"
    try:
        out = subprocess.run([condor_q, "-json", "-attributes", f"ClusterId,{ATTRIBUTE}", "-constraint", constraint],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        ads = json.loads(out) if out.strip() else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    found: dict[int, dict[str, Any]] = {}
    for ad in ads if isinstance(ads, list) else []:
        try:
            found[int(ad["ClusterId"])] = json.loads(ad[ATTRIBUTE])
        except (KeyError, TypeError, ValueError):
            continue
    return found
