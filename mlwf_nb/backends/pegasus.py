"""The ``pegasus`` backend: pegasus-plan + HTCondor DAGMan, watched through the submit directory.

``submit`` starts ``pegasus-plan --submit`` (command line built by the Pegasus
client's own ``get_planner_args``) from a detached process
(:mod:`mlwf_nb.backends.pegasus_plan`), so neither a notebook kernel nor a finished
``mlwf run`` waits for or stops it; ``<run>/pegasus.json`` records the planning
(Planning, PlanFailed with the planner's own error lines, Submitted and the submit directory).
``status`` reads the submit directory (:mod:`mlwf_nb.backends.submitdir`) into
the same dictionary shape as the local backend; ``cancel`` is
``pegasus-remove``, ``resume`` is ``pegasus-run`` (DAGMan's rescue DAG).

:class:`~mlwf_nb.backends.pegasus_relay.PegasusRelay` relays the submit directory's
``jobstate.log`` and the jobs' events into ``<run>/events.jsonl``;
:mod:`mlwf_nb.backends.pegasus_jobs` names Pegasus's jobs and shapes their status.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json
from mlwf_nb.backends import pegasus_plan
from mlwf_nb.backends.base import Backend, RunDir
from mlwf_nb.backends.pegasus_jobs import AUXILIARY_KINDS, analyze, is_auxiliary, jobs_status, map_job_name, tail
from mlwf_nb.backends.pegasus_relay import PegasusRelay
from mlwf_nb.backends.submitdir import read_submit_dir
from mlwf_nb.errors import BackendError, PegasusNotFoundError, RunError
from mlwf_nb.rundir import states

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
_INSTALL_HINT = (
    "install the Pegasus WMS 5.x tarball, RPM or DEB (https://pegasus.isi.edu/downloads) and HTCondor "
    "(https://htcondor.org/downloads, a personal condor is enough on one host), put their bin/ on PATH "
    "and start condor_master; the pip packages pegasus-wms.api/.common only provide the Python API, "
    "not the planner. The local backend (execution.backend=local) needs none of this")
_STATE_FILE = pegasus_plan.STATE_FILE


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
        jobs = jobs_status(sd)
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
                               f"{tail(proc.stderr or proc.stdout, 5)}")
