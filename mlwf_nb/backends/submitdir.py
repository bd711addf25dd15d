"""Read a real Pegasus 5 submit directory into one status object.

Sources, all read-only:

- ``braindump.yml``: workflow name, uuid, planner, properties file, dag file.
- ``jobstate.log``: per-job states, exit codes and tries (parsed by
  :mod:`mlwf_nb.rundir.jobstate`, the same parser the local backend uses).
- ``<wf>.dag``: every job (``JOB``) and edge (``PARENT ... CHILD ...``), so jobs
  that never started count as unready/ready.
- ``<wf>.dag.dagman.out``: the last progress block, the numbers ``pegasus-status``
  shows (Done, Pre, Queued, Post, Ready, Un-Ready, Failed, Futile).
- ``<wf>.stampede.db``: the monitord sqlite database, opened with a
  ``file:...?mode=ro`` URI: job instances, exit codes, tries, stdout/stderr.
- ``00/00/<job>.out.NNN``: kickstart invocation records (YAML, one per try):
  duration, exit code, stdout/stderr data.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb.errors import RunError
from mlwf_nb.rundir import jobstate
from mlwf_nb.schemas import loads_yaml

__all__ = [
    "Progress",
    "JobInstance",
    "KickstartRecord",
    "SubmitDirStatus",
    "read_submit_dir",
    "read_braindump",
    "read_dag",
    "read_progress",
    "read_stampede",
    "read_kickstart",
    "decode_exitcode",
]

_PROGRESS_RE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d((\s+\d+){7,8})\s*$")
_TOTAL_RE = re.compile(r"Of (\d+) nodes total")
_DAG_STATUS_RE = re.compile(r"DAG status: (\d+)")
_EXITING_RE = re.compile(r"EXITING WITH STATUS (-?\d+)")


def decode_exitcode(raw: int | None) -> int | None:
    """A wait(2) status as stored by monitord (512) -> exit code (2); a signal -> minus its number."""
    if raw is None:
        return None
    if raw & 0x7F:
        return -(raw & 0x7F)
    return (raw >> 8) & 0xFF


@dataclass
class Progress:
    """The last progress block of ``*.dag.dagman.out``."""

    done: int = 0
    pre: int = 0
    queued: int = 0
    post: int = 0
    ready: int = 0
    unready: int = 0
    failed: int = 0
    futile: int = 0
    total: int = 0
    dag_status: int | None = None
    exit_status: int | None = None


@dataclass
class JobInstance:
    """One try of one job, from the stampede database."""

    job: str
    type_desc: str
    try_: int
    sched_id: str | None
    site: str | None
    exit_code: int | None
    raw_exitcode: int | None
    duration: float | None
    stdout_file: str | None
    stderr_file: str | None
    stdout_text: str
    stderr_text: str
    states: list[str] = field(default_factory=list)


@dataclass
class KickstartRecord:
    """One kickstart invocation record (``00/00/<job>.out.NNN``)."""

    path: Path
    transformation: str | None
    derivation: str | None
    resource: str | None
    hostname: str | None
    start: str | None
    duration: float | None
    exit_code: int | None
    stdout: str
    stderr: str


@dataclass
class SubmitDirStatus:
    """Everything read from a submit directory."""

    path: Path
    braindump: dict[str, Any]
    records: list[jobstate.JobStateRecord]
    jobs: dict[str, jobstate.JobSummary]
    edges: list[tuple[str, str]]
    progress: Progress | None
    dagman_exit: int | None
    instances: list[JobInstance]
    workflow_states: list[tuple[str, int | None]]
    kickstart: dict[str, list[KickstartRecord]]

    @property
    def state(self) -> str:
        """Running, Success or Failure (from jobstate.log's DAGMAN_FINISHED, else dagman.out)."""
        code = self.dagman_exit
        if code is None and self.progress is not None:
            code = self.progress.exit_status
        if code is None:
            return "Running"
        failed = any(s.state == "failed" for s in self.jobs.values())
        return "Success" if code == 0 and not failed else "Failure"

    def ready_jobs(self) -> list[str]:
        """Unready jobs whose parents all succeeded."""
        parents: dict[str, list[str]] = {}
        for parent, child in self.edges:
            parents.setdefault(child, []).append(parent)
        return [name for name, s in self.jobs.items() if s.state == "unready"
                and all(self.jobs.get(p, jobstate.JobSummary()).state == "succeeded"
                        for p in parents.get(name, []))]

    def status(self) -> dict[str, Any]:
        """The ``Pegasus.client.status`` shaped dictionary (totals + dags.root).

        Counts come from the dagman.out progress block when there is one (the
        numbers ``pegasus-status`` prints), else from jobstate.log and the dag.
        """
        dagname = str(self.braindump.get("dag", "root.dag"))
        code = self.dagman_exit
        if code is None and self.progress is not None:
            code = self.progress.exit_status
        out = jobstate.status_dict(self.jobs, exit_code=code, dagname=dagname, ready=self.ready_jobs())
        prog = self.progress
        if prog is not None and prog.total:
            # what pegasus-status shows: DAGMan's own counts (futile nodes are in no column)
            counts = {"unready": prog.unready, "ready": prog.ready, "pre": prog.pre, "queued": prog.queued,
                      "post": prog.post, "succeeded": prog.done, "failed": prog.failed,
                      "percent_done": float(f"{prog.done / prog.total * 100:.2f}"), "total": prog.total}
            out["totals"] = dict(counts)
            out["dags"]["root"].update(counts)
        return out


def read_braindump(submit_dir: Path) -> dict[str, Any]:
    """``braindump.yml`` as a dict.

    Raises:
        RunError: missing or unreadable (not a Pegasus submit directory).
    """
    path = Path(submit_dir) / "braindump.yml"
    try:
        data = loads_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RunError(f"{path}: cannot read braindump ({err}); is {submit_dir} a Pegasus submit "
                       "directory (the one pegasus-plan printed)?") from err
    if not isinstance(data, dict):
        raise RunError(f"{path}: braindump is not a mapping")
    return data


def read_dag(dag_file: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Job names and (parent, child) edges of a DAGMan ``.dag`` file (missing: empty)."""
    jobs: list[str] = []
    edges: list[tuple[str, str]] = []
    try:
        lines = dag_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return jobs, edges
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "JOB":
            jobs.append(parts[1])
        elif parts and parts[0] == "PARENT" and "CHILD" in parts:
            i = parts.index("CHILD")
            edges.extend((p, c) for p in parts[1:i] for c in parts[i + 1:])
    return jobs, edges


def read_progress(dagman_out: Path) -> Progress | None:
    """The last progress block of a ``*.dag.dagman.out`` (None when there is none yet)."""
    try:
        text = dagman_out.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    prog: Progress | None = None
    total = 0
    dag_status: int | None = None
    exit_status: int | None = None
    for line in text.splitlines():
        if (m := _TOTAL_RE.search(line)) is not None:
            total = int(m.group(1))
        elif (m := _DAG_STATUS_RE.search(line)) is not None:
            dag_status = int(m.group(1))
        elif (m := _EXITING_RE.search(line)) is not None:
            exit_status = int(m.group(1))
        elif (m := _PROGRESS_RE.match(line)) is not None:
            n = [int(x) for x in m.group(1).split()] + [0]
            prog = Progress(done=n[0], pre=n[1], queued=n[2], post=n[3], ready=n[4], unready=n[5],
                            failed=n[6], futile=n[7], total=total, dag_status=dag_status)
    if prog is not None:
        prog.exit_status = exit_status
    return prog


def _unquote(text: str | None) -> str:
    return urllib.parse.unquote(text or "")


def read_stampede(db: Path) -> tuple[list[JobInstance], list[tuple[str, int | None]]]:
    """Job instances (one per try) and workflow states from a stampede database, read-only."""
    if not db.is_file():
        return [], []
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT ji.job_instance_id, j.exec_job_id, j.type_desc, ji.job_submit_seq, ji.sched_id, "
            "ji.site, ji.exitcode, ji.local_duration, ji.stdout_file, ji.stderr_file, "
            "ji.stdout_text, ji.stderr_text FROM job_instance ji JOIN job j ON ji.job_id = j.job_id "
            "ORDER BY ji.job_submit_seq, ji.job_instance_id").fetchall()
        states: dict[int, list[str]] = {}
        for jid, st in conn.execute("SELECT job_instance_id, state FROM jobstate "
                                    "ORDER BY job_instance_id, jobstate_submit_seq"):
            states.setdefault(jid, []).append(st)
        wf_states = [(s, st) for s, st in conn.execute(
            "SELECT state, status FROM workflowstate ORDER BY timestamp, state")]
    finally:
        conn.close()
    tries: dict[str, int] = {}
    out = []
    for (jid, name, type_desc, _seq, sched, site, raw, dur, so_f, se_f, so_t, se_t) in rows:
        tries[name] = tries.get(name, 0) + 1
        out.append(JobInstance(name, type_desc, tries[name], sched, site, decode_exitcode(raw), raw,
                               dur, so_f, se_f, _unquote(so_t), _unquote(se_t), states.get(jid, [])))
    return out, wf_states


def _ks_exit(mainjob: dict[str, Any]) -> int | None:
    status = mainjob.get("status") or {}
    if "regular_exitcode" in status:
        return int(status["regular_exitcode"])
    if "signalled_signal" in status:
        return -int(status["signalled_signal"])
    return decode_exitcode(status.get("raw"))


def read_kickstart(path: Path) -> list[KickstartRecord]:
    """The invocation records in one kickstart output file (empty if it is not YAML/kickstart)."""
    try:
        docs = loads_yaml(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return []
    out = []
    for rec in docs if isinstance(docs, list) else []:
        if not isinstance(rec, dict) or not rec.get("invocation"):
            continue
        files = rec.get("files") or {}
        main = rec.get("mainjob") or {}
        dur = rec.get("duration")
        out.append(KickstartRecord(
            path, rec.get("transformation"), rec.get("derivation"), rec.get("resource"),
            rec.get("hostname"), None if rec.get("start") is None else str(rec.get("start")),
            None if dur is None else float(dur), _ks_exit(main),
            str((files.get("stdout") or {}).get("data") or ""),
            str((files.get("stderr") or {}).get("data") or "")))
    return out


def _kickstart_files(submit_dir: Path) -> dict[str, list[KickstartRecord]]:
    out: dict[str, list[KickstartRecord]] = {}
    for f in sorted(submit_dir.glob("**/*.out.[0-9][0-9][0-9]")):
        job = f.name.rsplit(".out.", 1)[0]
        recs = read_kickstart(f)
        if recs:
            out.setdefault(job, []).extend(recs)
    return out


def read_submit_dir(path: str | Path, *, kickstart: bool = True) -> SubmitDirStatus:
    """Read a Pegasus submit directory (never writes to it).

    Args:
        path: the submit directory (holds ``braindump.yml``).
        kickstart: also parse the kickstart records (``00/00/*.out.NNN``).

    Raises:
        RunError: ``path`` is not a submit directory.
    """
    base = Path(path)
    bd = read_braindump(base)
    dag = base / str(bd.get("dag") or f"{bd.get('pegasus_wf_name', '')}.dag")
    names, edges = read_dag(dag)
    records = jobstate.parse_jobstate(base / str(bd.get("jsd") or "jobstate.log"))
    jobs = jobstate.summarize(records, names)
    progress = read_progress(dag.with_name(dag.name + ".dagman.out"))
    wf = str(bd.get("pegasus_wf_name") or dag.stem)
    instances, wf_states = read_stampede(base / f"{wf}.stampede.db")
    return SubmitDirStatus(base, bd, records, jobs, edges, progress, jobstate.dagman_exit(records),
                           instances, wf_states, _kickstart_files(base) if kickstart else {})
