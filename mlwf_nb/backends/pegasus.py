"""The ``pegasus`` backend: pegasus-plan + HTCondor DAGMan, watched through the submit directory.

``submit`` starts ``pegasus-plan --submit`` (command line built by the Pegasus
client's own ``get_planner_args``) from a detached process
(:mod:`mlwf_nb.backends.pegasus_plan`), so neither a notebook kernel nor a finished
``mlwf run`` waits for or stops it; ``<run>/pegasus.json`` records the planning
(Planning, PlanFailed with the planner's own error lines, Submitted and the submit directory).
``status`` reads the submit directory (:mod:`mlwf_nb.backends.submitdir`) into
the same dictionary shape as the local backend; ``cancel`` is
``pegasus-remove``, ``resume`` is ``pegasus-run`` (DAGMan's rescue DAG).

:class:`PegasusRelay` turns the submit directory's ``jobstate.log`` into
``job_state``/``run_started``/``run_finished`` events in ``<run>/events.jsonl``
(the run's single writer) and relays the jobs' own events from
``<run>/jobs/<job>/events.jsonl`` (written live on shared-filesystem sites via
``MLWF_EVENTS``, staged back at job end under condorio). Offsets are kept in
``<run>/pegasus-relay.json``, so a restarted relay never repeats an event.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json, write_json
from mlwf_nb.backends import pegasus_plan
from mlwf_nb.backends.base import Backend, RunDir
from mlwf_nb.backends.submitdir import SubmitDirStatus, read_braindump, read_dag, read_submit_dir
from mlwf_nb.errors import BackendError, MlwfError, PegasusNotFoundError, RunError
from mlwf_nb.rundir import jobstate, states
from mlwf_nb.rundir.events import EventReader, EventWriter, job_state_event

__all__ = [
    "PegasusBackend",
    "PegasusRelay",
    "AUXILIARY_KINDS",
    "PEGASUS_TOOLS",
    "CONDOR_TOOLS",
    "check_pegasus",
    "require_pegasus",
    "map_job_name",
    "planner_command",
    "is_auxiliary",
    "analyze",
]

PEGASUS_TOOLS = ("pegasus-plan", "pegasus-run", "pegasus-remove", "pegasus-status", "pegasus-analyzer",
                 "pegasus-version")
CONDOR_TOOLS = ("condor_submit_dag", "condor_q", "condor_chirp")
#: job-name prefixes of the jobs Pegasus adds to a workflow, longest first
AUXILIARY_KINDS = ("stage_in_local", "stage_in_remote", "stage_in", "stage_out_local", "stage_out_remote",
                   "stage_out", "stage_inter", "stage_worker", "create_dir", "cleanup", "register", "chmod",
                   "pegasus_plan", "dax", "subdax")
_INSTALL_HINT = (
    "install the Pegasus WMS 5.x tarball, RPM or DEB (https://pegasus.isi.edu/downloads) and HTCondor "
    "(https://htcondor.org/downloads, a personal condor is enough on one host), put their bin/ on PATH "
    "and start condor_master; the pip packages pegasus-wms.api/.common only provide the Python API, "
    "not the planner. The local backend (execution.backend=local) needs none of this")
_WAIT_FOR_POST = frozenset({"JOB_TERMINATED", "JOB_SUCCESS", "JOB_FAILURE"})
_STATE_FILE = pegasus_plan.STATE_FILE
_RELAY_FILE = "pegasus-relay.json"
_RELAY_LOCK = "pegasus-relay.lock"


def check_pegasus() -> dict[str, Any]:
    """What of Pegasus/HTCondor is present: ``{tool: path or None, ..., "htchirp": bool, "missing": [...]}``."""
    out: dict[str, Any] = {t: shutil.which(t) for t in (*PEGASUS_TOOLS, *CONDOR_TOOLS)}
    try:
        import htcondor2.htchirp  # noqa: F401
        out["htchirp"] = True
    except ImportError:
        out["htchirp"] = False
    try:
        import Pegasus.api  # noqa: F401
        out["pegasus_api"] = True
    except ImportError:
        out["pegasus_api"] = False
    out["missing"] = [t for t in ("pegasus-plan", "condor_submit_dag") if not out[t]]
    out["ok"] = not out["missing"]
    return out


def require_pegasus(tools: tuple[str, ...] = ("pegasus-plan", "condor_submit_dag")) -> dict[str, str]:
    """Paths of ``tools``.

    Raises:
        PegasusNotFoundError: names the missing tools and how to install them.
    """
    found = {t: shutil.which(t) for t in tools}
    missing = [t for t, p in found.items() if not p]
    if missing:
        raise PegasusNotFoundError(f"the pegasus backend needs {', '.join(missing)} on PATH, not found; "
                                   + _INSTALL_HINT)
    return {t: str(p) for t, p in found.items()}


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


def _run_site(run: Path) -> str:
    spec = run / "spec.yaml"
    if spec.is_file():
        from mlwf_nb.spec import RunSpec

        return RunSpec.from_yaml(spec.read_text(encoding="utf-8"), source=str(spec)).execution.site
    from mlwf_nb.schemas import load_yaml

    sites = [s.get("name") for s in (load_yaml(run / "sites.yml") or {}).get("sites", [])]
    others = [s for s in sites if s != "local"]
    return others[0] if others else "local"


def planner_command(run_dir: RunDir, *, site: str | None = None, jobs: int | None = None,
                    plan: str = "pegasus-plan") -> list[str]:
    """The ``pegasus-plan`` command line for a run directory (built with Pegasus's ``get_planner_args``)."""
    from Pegasus.client._client import get_planner_args

    run = Path(run_dir).resolve()
    props: dict[str, Any] = {}
    if jobs:
        props["dagman.maxjobs"] = str(jobs)
    cluster = ["horizontal"] if _clustered(run) else None
    args = get_planner_args(conf=str(run / "pegasus.properties"), sites=[site or _run_site(run)],
                            output_sites=["local"], dir=str(run / "submit"), relative_dir="pegasus",
                            cleanup="none", force=True, submit=True, cluster=cluster, **props)
    return [plan, *args, str(run / "workflow.yml"), "--json"]


def _clustered(run: Path) -> bool:
    """Whether the transformation catalog asks for horizontal clustering (``execution.cluster_size``)."""
    try:
        return "clusters.size" in (run / "transformations.yml").read_text(encoding="utf-8")
    except OSError:
        return False


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


CHIRP_INTERVAL = 10.0
"""Seconds between two ``condor_q`` reads of the jobs' published progress."""


class PegasusRelay:
    """Relays a submit directory's jobstate.log and the jobs' event files into ``<run>/events.jsonl``.

    ``poll()`` never blocks; :meth:`start` runs it from a daemon thread at a
    bounded rate until ``run_finished`` was written.
    """

    def __init__(self, run_dir: RunDir, submit_dir: RunDir, *, interval: float = 2.0) -> None:
        self.run = Path(run_dir)
        self.submit_dir = Path(submit_dir)
        self.interval = interval
        self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chirp_at = -1e9
        self._chirp_seen: dict[str, Any] = {}

    def _load(self) -> None:
        """Take up where the last relay of this run (in any process) left off."""
        state = self._load_state()
        self._saved: dict[str, Any] | None = state
        self.finished: bool = bool(state.get("finished"))
        self.started: bool = bool(state.get("started"))
        self._jobstate = jobstate.JobStateReader(self.submit_dir / "jobstate.log", int(state.get("jobstate", 0)))
        self._job_offsets: dict[str, int] = dict(state.get("jobs", {}))
        self._records: dict[str, list[jobstate.JobStateRecord]] = {}
        self._replay(self._jobstate.offset)
        self._last: dict[str, tuple[str, int]] = {k: tuple(v) for k, v in state.get("last", {}).items()}

    def _load_state(self) -> dict[str, Any]:
        try:
            data = read_json(self.run / _RELAY_FILE)
        except (FileNotFoundError, ValueError):
            return {}
        if data.get("submit_dir") != str(self.submit_dir):
            return {"jobs": data.get("jobs", {})}  # a new submit dir (replan): keep job-file offsets only
        return dict(data)

    def _save_state(self) -> None:
        self._saved = {
            "submit_dir": str(self.submit_dir), "jobstate": self._jobstate.offset, "jobs": self._job_offsets,
            "started": self.started, "finished": self.finished,
            "last": {k: list(v) for k, v in self._last.items()}}
        write_json(self.run / _RELAY_FILE, self._saved)

    def _replay(self, offset: int) -> None:
        """Rebuild per-job records from the part of jobstate.log already relayed (after a restart)."""
        if offset <= 0:
            return
        try:
            with open(self.submit_dir / "jobstate.log", "rb") as fh:
                text = fh.read(offset).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            rec = jobstate.parse_line(line)
            if rec is not None and not rec.is_internal:
                self._records.setdefault(rec.job, []).append(rec)

    def _emit(self, w: EventWriter, job: str) -> int:
        s = jobstate.summarize(self._records[job])[job]
        key = (s.state, s.tries)
        if self._last.get(job) == key:
            return 0
        self._last[job] = key
        step, jid = map_job_name(job)
        w.write(job_state_event(job=jid or job, name=job, step=step, state=s.state, exit_code=s.exit_code,
                                try_=s.tries, site=s.site, auxiliary=step in AUXILIARY_KINDS))
        return 1

    def _job_event(self, w: EventWriter, rec: jobstate.JobStateRecord) -> int:
        self._records.setdefault(rec.job, []).append(rec)
        if rec.state in _WAIT_FOR_POST:
            return 0  # pegasus-exitcode (the POST script) decides; its record follows
        return self._emit(w, rec.job)

    def poll(self) -> int:
        """Relay what is new; returns the number of events written.

        Any number of relays of one run (a thread in the submitting kernel, ``Run.status()``
        in another) take turns under a lock, each from the offsets the last one saved, so
        ``events.jsonl`` keeps a single writer at a time and no event is relayed twice.
        """
        with open(self.run / _RELAY_LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                if self._load_state() != self._saved:  # another relay went on meanwhile
                    self._load()
            except OSError:
                pass
            return self._poll()

    def restart(self) -> None:
        """DAGMan runs the workflow again (``pegasus-run``): relay its next start and end as the run's."""
        with open(self.run / _RELAY_LOCK, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            self._load()
            self.started = self.finished = False
            self._save_state()

    def _poll(self) -> int:
        records = self._jobstate.poll()
        job_files = sorted((self.run / "jobs").glob("*/*events.jsonl"))
        if not records and not job_files:
            return 0
        n = 0
        with EventWriter(self.run / "events.jsonl") as w:
            for rec in records:
                if rec.is_internal:
                    if rec.state == "DAGMAN_STARTED" and not self.started:
                        self.started = True
                        w.write({"type": "run_started", "backend": "pegasus", "submit_dir": str(self.submit_dir),
                                 "total": _dag_jobs(self.submit_dir)})
                        n += 1
                    elif rec.state == "DAGMAN_FINISHED" and not self.finished:
                        n += self._relay_jobs(w)
                        n += sum(self._emit(w, job) for job in self._records)  # jobs without POST
                        failed = [j for j, (st, _) in self._last.items() if st == "failed"]
                        state = "Success" if rec.exit_code == 0 and not failed else "Failure"
                        w.write({"type": "run_finished", "state": state, "failed_jobs": failed})
                        self.finished = True
                        n += 1
                    continue
                n += self._job_event(w, rec)
            n += self._relay_jobs(w)
            n += self._relay_chirp(w)
        self._save_state()
        return n

    def _relay_chirp(self, w: EventWriter) -> int:
        """Progress that running jobs published as HTCondor job attributes (see :mod:`mlwf_nb.chirp`)."""
        from mlwf_nb import chirp

        now = time.monotonic()
        if now - self._chirp_at < CHIRP_INTERVAL:
            return 0
        self._chirp_at = now
        running: dict[int, str] = {}
        for job, recs in self._records.items():
            last = recs[-1]
            if last.state in ("SUBMIT", "EXECUTE") and last.condor_id:
                try:
                    running[int(float(last.condor_id))] = job
                except ValueError:
                    continue
        seen = self._chirp_seen
        n = 0
        for cluster, event in chirp.read_attributes(sorted(running)).items():
            job = running[cluster]
            key = (event.get("ts"), event.get("type"), event.get("epoch"))
            if seen.get(job) == key:
                continue
            seen[job] = key
            _, jid = map_job_name(job)
            w.write({**{k: v for k, v in event.items() if k not in ("v", "seq")},
                     "job": event.get("job") or jid or job, "name": job, "via": "chirp"})
            n += 1
        return n

    def _relay_jobs(self, w: EventWriter) -> int:
        n = 0
        for path in sorted((self.run / "jobs").glob("*/*events.jsonl")):
            job = path.parent.name
            reader = EventReader(path, self._job_offsets.get(job, 0))
            for ev in reader.poll():
                if isinstance(ev, dict):
                    ev.setdefault("job", job)
                    w.write(ev)
                    n += 1
            self._job_offsets[job] = reader.offset
        return n

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.finished:
            try:
                self.poll()
            except OSError:
                pass  # transient (file being replaced); try again next tick
            self._stop.wait(self.interval)

    def start(self) -> PegasusRelay:
        """Follow in a daemon thread until the run finishes or :meth:`stop` is called."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=f"mlwf-relay-{self.run.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the relay thread to end (the run finished)."""
        if self._thread is not None:
            self._thread.join(timeout)


class PegasusBackend(Backend):
    """Plans and submits run directories with Pegasus; status from the submit directory."""

    name = "pegasus"

    @classmethod
    def unavailable(cls) -> str:
        """Why Pegasus cannot run here ("" when pegasus-plan and condor_submit_dag are on PATH)."""
        try:
            require_pegasus()
        except PegasusNotFoundError as err:
            return str(err)
        return ""

    def __init__(self, *, relay_interval: float = 2.0) -> None:
        self.relay_interval = relay_interval
        self._relays: dict[str, PegasusRelay] = {}

    # --- submit ----------------------------------------------------------------------------
    def submit(self, run_dir: RunDir, *, jobs: int | None = None, wait: bool = False) -> dict[str, Any]:
        """Plan and submit ``<run>/workflow.yml`` (see :class:`Backend`) from a detached planning process.

        With ``wait``, returns when that process has ended: the plan failed, or the submitted
        run finished (it relays the run's events meanwhile).

        Raises:
            PegasusNotFoundError: pegasus-plan or condor_submit_dag is not on PATH.
            RunError: the run directory lacks workflow.yml or its catalogs.
            WorkflowError: a catalog violates the Pegasus schema (when the schemas are available).
        """
        run = Path(run_dir).resolve()
        tools = require_pegasus()
        for name in ("workflow.yml", "sites.yml", "transformations.yml", "replicas.yml", "pegasus.properties"):
            if not (run / name).is_file():
                raise RunError(f"{run / name} not found; write the workflow and its catalogs first")
        self._validate(run)
        cmd = planner_command(run, jobs=jobs, plan=tools["pegasus-plan"])
        proc = pegasus_plan.start(run, cmd)
        if wait:
            proc.wait()
        return self.status(run)

    @staticmethod
    def _validate(run: Path) -> None:
        from mlwf_nb import schemas
        from mlwf_nb.errors import WorkflowError

        try:
            schemas.schema_dir()
        except WorkflowError:
            return  # no schemas on this machine: pegasus-plan will check
        schemas.validate_run_dir(run)

    def follow(self, run_dir: RunDir) -> PegasusRelay | None:
        """Start (or return) the event relay of a submitted run; None before it is submitted."""
        run = Path(run_dir).resolve()
        relay = self._relays.get(str(run))
        if relay is not None:
            return relay.start()
        submit_dir = self.submit_dir(run)
        if submit_dir is None:
            return None
        relay = PegasusRelay(run, submit_dir, interval=self.relay_interval)
        self._relays[str(run)] = relay
        return relay.start()

    # --- status ----------------------------------------------------------------------------
    @staticmethod
    def _state(run: Path) -> dict[str, Any]:
        try:
            return pegasus_plan.planning_state(dict(read_json(run / _STATE_FILE)))
        except FileNotFoundError:
            raise RunError(f"{run / _STATE_FILE} not found; this run was not submitted with the "
                           "pegasus backend (submit it first)") from None

    def sync(self, run_dir: RunDir) -> None:
        """Relay what the submit directory has that ``events.jsonl`` lacks (one poll, under the relay lock)."""
        run = Path(run_dir).resolve()
        relay = self._relays.get(str(run))
        if relay is None:
            submit_dir = self.submit_dir(run) if (run / _STATE_FILE).exists() else None
            if submit_dir is None:
                return
            relay = self._relays[str(run)] = PegasusRelay(run, submit_dir, interval=self.relay_interval)
        if not relay.finished:
            relay.poll()

    def state(self, run_dir: RunDir) -> str:
        """Planning or PlanFailed (from ``pegasus.json``), else what the submit directory says."""
        run = Path(run_dir).resolve()
        st = self._state(run)
        if not st.get("submit_dir") or st.get("state") == "PlanFailed":
            return str(st.get("state", "Planning"))
        return read_submit_dir(st["submit_dir"], kickstart=False).state

    def submit_dir(self, run_dir: RunDir) -> Path | None:
        """The submit directory recorded in ``<run>/pegasus.json`` (None while planning)."""
        sd = self._state(Path(run_dir)).get("submit_dir")
        return Path(sd) if sd else None

    def status(self, run_dir: RunDir) -> dict[str, Any]:
        """Status in the local backend's shape, from the submit directory.

        ``mlwf`` holds ``state`` (Planning, PlanFailed, Running, Success, Failure),
        ``jobs`` (per job: state, exit_code, tries, site, step, started, finished,
        stderr_tail for failed jobs), ``failed_jobs``, ``submit_dir`` and ``analyzer``
        (findings for failed jobs; plus ``pegasus-analyzer --json`` output where installed).
        """
        run = Path(run_dir).resolve()
        st = self._state(run)
        if not st.get("submit_dir") or st.get("state") == "PlanFailed":
            totals = states.totals(())
            failed = st.get("state") == "PlanFailed"
            root = dict(totals, dagname="", state="Failure" if failed else "Running")
            mlwf: dict[str, Any] = {"state": st.get("state", "Planning"), "jobs": {}, "failed_jobs": [],
                                    "submit_dir": st.get("submit_dir"), "plan": st}
            if failed:
                mlwf["message"] = st.get("message") or "; ".join(st.get("errors", [])) or "pegasus-plan failed"
                mlwf["errors"] = list(st.get("errors", []))
            return {"totals": totals, "dags": {"root": root}, "mlwf": mlwf}
        sd = read_submit_dir(st["submit_dir"])
        out = sd.status()
        jobs = _jobs(sd)
        failed = [n for n, j in jobs.items() if j["state"] == "failed"]
        out["mlwf"] = {"state": sd.state, "jobs": jobs, "failed_jobs": failed,
                       "submit_dir": st["submit_dir"],
                       "futile": sd.progress.futile if sd.progress else 0}
        if failed:
            out["mlwf"]["analyzer"] = analyze(sd)
        return out

    # --- cancel / resume -------------------------------------------------------------------
    def cancel(self, run_dir: RunDir) -> None:
        """``pegasus-remove <submit dir>``.

        Raises:
            PegasusNotFoundError: pegasus-remove is not on PATH.
            BackendError: nothing submitted yet, or pegasus-remove failed.
        """
        tool = require_pegasus(("pegasus-remove",))["pegasus-remove"]
        self._call(run_dir, [tool])

    def resume(self, run_dir: RunDir, *, wait: bool = False) -> dict[str, Any]:
        """``pegasus-run <submit dir>``: DAGMan resubmits the rescue DAG, finished jobs are skipped.

        A run that was planned but refused by HTCondor (PlanFailed with its submit directory)
        is submitted this way once HTCondor runs.

        Raises:
            PegasusNotFoundError: pegasus-run is not on PATH.
            BackendError: nothing submitted yet, or pegasus-run failed.
        """
        run = Path(run_dir).resolve()
        tool = require_pegasus(("pegasus-run", "condor_submit_dag"))["pegasus-run"]
        if self.submit_dir(run) is None:
            self._call(run, [tool])  # raises the error that says why
        relay = self._relays.pop(str(run), None)
        if relay is not None:
            relay.stop()
        relay = PegasusRelay(run, self.submit_dir(run) or run, interval=self.relay_interval)
        relay.restart()  # before DAGMan starts, so its DAGMAN_STARTED is relayed by whichever relay reads it
        self._call(run, [tool])
        if self._state(run).get("state") == "PlanFailed":  # planned, but HTCondor had refused it: submitted now
            pegasus_plan.record(run, state="Submitted", submitted=time.time())
        self._relays[str(run)] = relay.start()
        if wait:
            relay.join()
        return self.status(run)

    def _call(self, run_dir: RunDir, cmd: list[str]) -> None:
        submit_dir = self.submit_dir(Path(run_dir))
        if submit_dir is None:
            raise BackendError(f"{run_dir}: no submit directory recorded in {_STATE_FILE} yet "
                               "(still planning, or the plan failed: see pegasus-plan.log)")
        proc = subprocess.run([*cmd, str(submit_dir)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BackendError(f"{Path(cmd[0]).name} {submit_dir} failed (exit {proc.returncode}): "
                               f"{_tail(proc.stderr or proc.stdout, 5)}")


def _dag_jobs(submit_dir: Path) -> int:
    """How many jobs the planned DAG has (0 when it cannot be read)."""
    try:
        bd = read_braindump(submit_dir)
        return len(read_dag(submit_dir / str(bd.get("dag") or f"{bd.get('pegasus_wf_name', '')}.dag"))[0])
    except (OSError, MlwfError):
        return 0


def _jobs(sd: SubmitDirStatus) -> dict[str, dict[str, Any]]:
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
        return _tail(ks[-1].stderr or ks[-1].stdout)
    inst = [i for i in sd.instances if i.job == job]
    return _tail(inst[-1].stdout_text or inst[-1].stderr_text) if inst else ""


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
