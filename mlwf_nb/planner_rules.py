"""What the real ``pegasus-plan`` refuses although the Pegasus schemas accept it, checked up front.

Every rule here was met by planning the generated workflows with the real planner (Pegasus
5.1.2 and 6.0.0-dev built from pegasus-isi/pegasus; the table is in docs/cluster.md):

``unique-basenames``
    Under condorio (an HTCondor pool without a shared filesystem) HTCondor copies a job's
    files into one flat scratch folder, so two files of one job (or of one cluster of jobs,
    ``execution.cluster_size``) must not share a basename. Pegasus >= 5.1 refuses it ("conflict
    due to same basename, which is not allowed in CondorIO transfer mode"); older releases plan
    it and the files overwrite each other at run time. The local backend's sandbox
    (``execution.staging=sandbox``) runs jobs the same way.
``container-data-configuration``
    A container needs the condorio or nonsharedfs data configuration: Pegasus 6 refuses a
    container on a shared-filesystem site ("Containers are only supported when the data
    configuration is condorio or nonsharedfs"), 5.x silently runs without it.
``site-pegasus-home``
    A shared-filesystem execution site other than ``local`` needs ``env PEGASUS_HOME`` (where
    Pegasus is installed on its nodes): the planner cannot find ``pegasus-kickstart`` otherwise.
``batch-walltime``
    A site that submits to a batch system (SLURM, PBS, SGE, LSF through HTCondor's batch GAHP)
    needs a walltime per job, ``execution.maxwalltime``; without it ``pegasus_job_runtime`` is 0.

:func:`check` returns the violations, :func:`require` raises one :class:`PlanRuleError`
listing them all with the fix for each; ``mlwf validate`` and ``mlwf plan`` (and every
submit) run them before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mlwf_nb.errors import WorkflowError

if TYPE_CHECKING:
    from mlwf_nb.pipelines import Graph
    from mlwf_nb.spec import ExecutionSpec

__all__ = ["PlanRuleError", "Violation", "RULES", "check", "require", "check_execution", "basename_conflicts",
           "data_configuration", "flat_sandbox", "ENV_PEGASUS_HOME", "pegasus_home"]

RULES = ("unique-basenames", "container-data-configuration", "site-pegasus-home", "batch-walltime")
ENV_PEGASUS_HOME = "MLWF_PEGASUS_HOME"
_SHARED = "sharedfs"


class PlanRuleError(WorkflowError):
    """The workflow breaks rules the real pegasus-plan enforces; ``violations`` lists them."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        lines = "\n".join(f"  - [{v.rule}] {v.message}" for v in self.violations)
        super().__init__(f"pegasus-plan would refuse this workflow, or plan it to fail ({len(self.violations)} "
                         f"problem{'s' if len(self.violations) != 1 else ''}):\n{lines}")


@dataclass(frozen=True)
class Violation:
    """One broken rule: its name (one of :data:`RULES`) and a message that says why and what to do."""

    rule: str
    message: str


def data_configuration(execution: ExecutionSpec) -> str:
    """The data configuration of the execution site: ``sharedfs``, ``condorio`` or ``nonsharedfs``."""
    from mlwf_nb.sites import SITE_PRESETS

    preset = SITE_PRESETS.get(execution.site)
    if execution.site_catalog:
        site = _user_site(execution)
        profile = ((site or {}).get("profiles") or {}).get("pegasus", {}).get("data.configuration")
        if profile:
            return str(profile)
    return preset.data_configuration if preset is not None else "condorio"


def flat_sandbox(execution: ExecutionSpec) -> bool:
    """Whether each job runs in its own flat scratch folder (condorio, nonsharedfs or the local sandbox)."""
    if execution.backend == "local" and execution.staging == "sandbox":
        return True
    return data_configuration(execution) != _SHARED


def pegasus_home() -> str | None:
    """Pegasus's install folder on a shared-filesystem site's nodes.

    ``$MLWF_PEGASUS_HOME``, else the installation of the ``pegasus-plan`` on this PATH (a campus
    cluster's login node shares its filesystem with the nodes), else None.
    """
    import shutil
    from pathlib import Path

    home = os.environ.get(ENV_PEGASUS_HOME)
    if home:
        return home
    planner = shutil.which("pegasus-plan")
    return str(Path(planner).resolve().parent.parent) if planner else None


def _user_site(execution: ExecutionSpec) -> dict[str, Any] | None:
    from pathlib import Path

    from mlwf_nb import schemas

    if not execution.site_catalog:
        return None
    data = schemas.load_yaml(Path(execution.site_catalog)) or {}
    return next((s for s in data.get("sites", []) if s.get("name") == execution.site), None)


def check_execution(execution: ExecutionSpec) -> list[Violation]:
    """The rules that depend on the execution settings alone (no workflow needed)."""
    out: list[Violation] = []
    conf = data_configuration(execution)
    if execution.container and conf == _SHARED:
        out.append(Violation("container-data-configuration", (
            f"execution.container is set but site {execution.site!r} uses the sharedfs data configuration, "
            "where Pegasus 6 refuses containers and 5.x silently runs without them; run on a condorio site "
            "(execution.site=condorpool or gpus), give a nonsharedfs site in execution.site_catalog, or unset "
            "execution.container")))
    return out + _site_rules(execution, conf)


def _site_rules(execution: ExecutionSpec, conf: str) -> list[Violation]:
    from mlwf_nb.sites import SITE_PRESETS, batch_scheduler

    out: list[Violation] = []
    if execution.site_catalog:
        site = _user_site(execution) or {}
        env = (site.get("profiles") or {}).get("env") or {}
        if conf == _SHARED and execution.site != "local" and "PEGASUS_HOME" not in env:
            out.append(Violation("site-pegasus-home", (
                f"site {execution.site!r} of {execution.site_catalog} has a shared filesystem but no env profile "
                "PEGASUS_HOME; the planner needs it to find pegasus-kickstart on the nodes: add "
                "`profiles: {env: {PEGASUS_HOME: /path/to/pegasus}}` to the site")))
        return out
    preset = SITE_PRESETS.get(execution.site)
    if preset is None or not preset.shared_filesystem or preset.name == "local":
        return out
    if pegasus_home() is None:
        out.append(Violation("site-pegasus-home", (
            f"site {execution.site!r} has a shared filesystem: the planner needs Pegasus's install folder on its "
            f"nodes (env PEGASUS_HOME) to find pegasus-kickstart; set ${ENV_PEGASUS_HOME} (e.g. "
            f"{ENV_PEGASUS_HOME}=/opt/pegasus) or put the cluster's pegasus-plan on PATH")))
    if batch_scheduler() != "condor" and execution.maxwalltime <= 0:
        out.append(Violation("batch-walltime", (
            f"site {execution.site!r} submits to {batch_scheduler().upper()} through HTCondor's batch GAHP, which "
            "needs a walltime per job; set execution.maxwalltime (minutes), e.g. --set execution.maxwalltime=120")))
    return out


def _levels(graph: Graph) -> list[int]:
    """Each node's level as Pegasus's horizontal clustering counts it: 1 + the deepest parent's level."""
    producer = {lfn: i for i, node in enumerate(graph.nodes) for lfn in node.files("outputs")}
    level: list[int] = []
    for node in graph.nodes:  # a pipeline adds a job after the jobs it reads from
        parents = [producer[f] for f in node.files("inputs") if f in producer]
        level.append(1 + max((level[p] for p in parents if p < len(level)), default=0))
    return level


def job_file_groups(graph: Graph, execution: ExecutionSpec) -> list[tuple[str, list[str]]]:
    """``(what, files)`` for every job, and for every cluster the planner may make of several jobs."""
    from mlwf_nb.catalogs import CLUSTERED_STEPS

    groups = [(f"job {node.label!r}", _lfns(node)) for node in graph.nodes]
    if execution.cluster_size > 0:
        clusters: dict[tuple[str, int], list[int]] = {}
        for i, (node, lvl) in enumerate(zip(graph.nodes, _levels(graph), strict=True)):
            if node.step.transformation in CLUSTERED_STEPS:
                clusters.setdefault((node.step.transformation, lvl), []).append(i)
        for (name, lvl), members in clusters.items():
            if len(members) > 1:
                files = sorted({f for i in members for f in _lfns(graph.nodes[i])})
                groups.append((f"a cluster of {name} jobs (level {lvl}, execution.cluster_size="
                               f"{execution.cluster_size})", files))
    return groups


def _lfns(node: Any) -> list[str]:
    return [*node.files("inputs"), *node.files("outputs"), *node.files("checkpoints")]


def basename_conflicts(files: Iterable[str]) -> dict[str, list[str]]:
    """``{basename: [lfn, ...]}`` for every basename that two different LFNs share."""
    by_name: dict[str, set[str]] = {}
    for lfn in files:
        if lfn:
            by_name.setdefault(PurePosixPath(lfn).name, set()).add(lfn)
    return {name: sorted(lfns) for name, lfns in sorted(by_name.items()) if len(lfns) > 1}


def check_graph(graph: Graph, execution: ExecutionSpec) -> list[Violation]:
    """The rules on the workflow's files (only where jobs run in a flat sandbox)."""
    if not flat_sandbox(execution):
        return []
    out = []
    where = (f"{data_configuration(execution)} (site {execution.site!r})"
             if data_configuration(execution) != _SHARED else "the local sandbox (execution.staging=sandbox)")
    for what, files in job_file_groups(graph, execution):
        also = " or turn clustering off (execution.cluster_size=0)" if what.startswith("a cluster") else ""
        for name, lfns in basename_conflicts(files).items():
            out.append(Violation("unique-basenames", (
                f"{what} reads or writes {' and '.join(lfns)}, which share the basename {name!r}: under {where} "
                f"a job's files land in one flat folder; give them names that carry scene and role "
                f"(e.g. GF-2_002.image.tif){also}")))
    return out


def check(execution: ExecutionSpec, graph: Graph | None = None) -> list[Violation]:
    """Every rule that applies: the execution settings, and the workflow's files when ``graph`` is given."""
    return check_execution(execution) + (check_graph(graph, execution) if graph is not None else [])


def require(execution: ExecutionSpec, graph: Graph | None = None) -> None:
    """Raise :class:`PlanRuleError` when :func:`check` finds anything."""
    found = check(execution, graph)
    if found:
        raise PlanRuleError(found)
