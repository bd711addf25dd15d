"""Pegasus catalogs and properties for a run: sites, transformations, profiles.

The workflow builder asks this module for the site catalog, the transformation
catalog, the properties and each job's profiles; it never spells a Pegasus
profile key itself. The site catalog and the site presets (``execution.site``:
``local``, ``condorpool``, ``sharedfs``, ``gpus``) are in :mod:`mlwf_nb.sites`;
this module re-exports them.

Containers: with ``execution.container`` set, every transformation runs in
one container (``Container.SINGULARITY`` or ``Container.DOCKER``) built from
``docker/job`` (or ``docker/job-gpu``), where ``mlwf`` is installed at
:data:`CONTAINER_EXECUTABLE`; the transformation is *installed inside the image*
(``type: installed`` with ``container: mlwf``), so nothing is staged. Containers
need a condorio (or nonsharedfs) site (:mod:`mlwf_nb.planner_rules`). GPU jobs
need no container arguments: Pegasus adds ``--nv`` (Singularity/Apptainer) or
``--gpus all`` (Docker) itself for a job with a ``gpus`` profile.

Resources belong to steps: a step that runs a model (``@step(runs_model=True)``:
train, trials, evaluations) asks for ``execution.cores``, ``memory_mb`` and ``gpus``
(one GPU by default on the ``gpus`` site); every other step for one core, at most
:data:`LIGHT_MEMORY_MB` and no GPU. A step's own ``cores=``/``memory_mb=``/``gpus=`` win.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from Pegasus.api import (
    Container,
    Job,
    Namespace,
    Properties,
    ReplicaCatalog,
    Transformation,
    TransformationCatalog,
)

from mlwf_nb.errors import WorkflowError
from mlwf_nb.sites import (
    ENV_BATCH_SCHEDULER,
    ENV_SHARED_SCRATCH,
    SITE_PRESETS,
    Profile,
    SitePreset,
    available_sites,
    batch_scheduler,
    build_site_catalog,
    describe_sites,
    get_preset,
    load_site_catalog,
)
from mlwf_nb.spec import ExecutionSpec

__all__ = [
    "SitePreset",
    "SITE_PRESETS",
    "CONTAINER_EXECUTABLE",
    "CONTAINER_NAME",
    "ENV_SHARED_SCRATCH",
    "ENV_BATCH_SCHEDULER",
    "available_sites",
    "describe_sites",
    "get_preset",
    "build_site_catalog",
    "load_site_catalog",
    "build_transformation_catalog",
    "build_properties",
    "job_profiles",
    "apply_job_profiles",
    "checkpoint_placeholder",
    "batch_scheduler",
    "resource_profiles",
    "LIGHT_MEMORY_MB",
    "Profile",
]

CONTAINER_EXECUTABLE = "/opt/mlwf/bin/mlwf"
CONTAINER_NAME = "mlwf"
def _container(execution: ExecutionSpec) -> Container | None:
    if not execution.container:
        return None
    kind = Container.SINGULARITY if execution.container_type == "singularity" else Container.DOCKER
    return Container(CONTAINER_NAME, kind, image=execution.container)


LIGHT_MEMORY_MB = 4096
"""The most memory a step that runs no model asks for (``execution.memory_mb`` is for the model steps)."""


def resource_profiles(res: dict[str, Any] | None, execution: ExecutionSpec) -> list[Profile]:
    """Pegasus 5 resource profiles of one step: ``cores``, ``memory`` (MB), ``gpus``; condor ``request_gpus``.

    ``res``: the step's ``{"runs_model": bool, "cores", "memory_mb", "gpus"}`` (see the module docstring).
    """
    res = res or {}
    preset = SITE_PRESETS.get(execution.site)
    if res.get("runs_model"):
        cores, memory = execution.cores, execution.memory_mb
        gpus = execution.gpus or (1 if preset is not None and preset.gpus else 0)
    else:
        cores, memory, gpus = 1, min(execution.memory_mb, LIGHT_MEMORY_MB), 0
    cores = int(res.get("cores") or cores)
    memory = int(res.get("memory_mb") or res.get("memory") or memory)
    gpus = int(res["gpus"]) if res.get("gpus") is not None else gpus
    out: list[Profile] = []
    if cores > 0:
        out.append((Namespace.PEGASUS, "cores", cores))
    if memory > 0:
        out.append((Namespace.PEGASUS, "memory", memory))
    if gpus > 0:
        out.append((Namespace.PEGASUS, "gpus", gpus))
        out.append((Namespace.CONDOR, "request_gpus", gpus))
    return out


def build_transformation_catalog(execution: ExecutionSpec, transformations: list[str], executable: str,
                                 resources: dict[str, dict[str, Any]] | None = None,
                                 *, run_dir: Path | None = None) -> TransformationCatalog:
    """One transformation per step name, each running the ``mlwf`` console script.

    Args:
        execution: where and how jobs run.
        transformations: step transformation names (``integrity``, ``train``, ...).
        executable: absolute path of the ``mlwf`` script on the sites (ignored with a container,
            which uses :data:`CONTAINER_EXECUTABLE`).
        resources: per transformation ``{"runs_model", "cores", "memory_mb", "gpus"}`` (see
            :func:`resource_profiles`).
        run_dir: the run directory (unused; kept for callers that pass it).

    Raises:
        WorkflowError: a relative executable path, or duplicate transformation names.
    """
    if len(set(transformations)) != len(transformations):
        raise WorkflowError(f"duplicate transformation names in {transformations}")
    container = _container(execution)
    if container is None and not os.path.isabs(executable):
        raise WorkflowError(f"transformation executable {executable!r} must be an absolute path "
                            "(e.g. shutil.which('mlwf'))")
    tc = TransformationCatalog()
    if container is not None:
        tc.add_containers(container)
    sites = ["local"] if execution.site == "local" else [execution.site, "local"]
    if execution.site_catalog and execution.site not in SITE_PRESETS:
        sites = [execution.site]
    pfn = CONTAINER_EXECUTABLE if container is not None else executable
    for name in transformations:
        tr = Transformation(name)
        for site in sites:
            tr.add_sites(_tsite(site, pfn, container))
        for ns, key, value in resource_profiles((resources or {}).get(name), execution):
            tr.add_profiles(ns, key=key, value=value)
        if execution.cluster_size > 0 and name in CLUSTERED_STEPS:
            # Pegasus horizontal clustering: short fan-out jobs run N to a job, paying one start-up
            tr.add_profiles(Namespace.PEGASUS, key="clusters.size", value=int(execution.cluster_size))
        tc.add_transformations(tr)
    return tc


CLUSTERED_STEPS = frozenset({"preprocess", "trial"})
"""Short fan-out steps bundled by ``execution.cluster_size`` (``pegasus-plan --cluster horizontal``)."""


def _tsite(site: str, pfn: str, container: Container | None) -> Any:
    from Pegasus.api import TransformationSite

    return TransformationSite(site, pfn, is_stageable=False, container=container)


def build_properties(execution: ExecutionSpec, run_dir: Path | None = None) -> Properties:
    """``pegasus.properties`` for a run.

    Sets ``dagman.retry``, ``pegasus.data.configuration`` (from the site),
    ``pegasus.transfer.links`` on shared filesystems, ``dagman.maxjobs`` when
    ``execution.jobs`` > 0 and, with ``run_dir``, absolute catalog paths.
    """
    preset = SITE_PRESETS.get(execution.site)
    data_conf = preset.data_configuration if preset else "condorio"
    props = Properties()
    props["pegasus.mode"] = "production"
    props["dagman.retry"] = str(execution.retries)
    props["pegasus.data.configuration"] = data_conf
    if data_conf == "sharedfs":
        props["pegasus.transfer.links"] = "true"
    if execution.jobs > 0:
        props["dagman.maxjobs"] = str(execution.jobs)
    props["pegasus.metrics.app"] = "mlwf"
    props["pegasus.monitord.encoding"] = "json"
    props["pegasus.catalog.replica"] = "YAML"
    if run_dir is not None:
        base = Path(run_dir).resolve()
        props["pegasus.catalog.site.file"] = str(base / "sites.yml")
        props["pegasus.catalog.replica.file"] = str(base / "replicas.yml")
        props["pegasus.catalog.transformation.file"] = str(base / "transformations.yml")
    return props


def job_profiles(execution: ExecutionSpec, *, checkpointed: bool,
                 resources: dict[str, Any] | None = None) -> list[Profile]:
    """The profiles of one job, as ``(Namespace, key, value)`` (no zero values).

    Args:
        execution: the run's execution settings.
        checkpointed: the job writes a checkpoint file (gets ``checkpoint.time``).
        resources: the step's ``{"runs_model", "cores", "memory_mb", "gpus"}`` (see :func:`resource_profiles`).

    Returns:
        ``pegasus checkpoint.time`` (minutes, checkpointed jobs, when > 0),
        ``pegasus maxwalltime`` (minutes) and ``runtime`` (seconds) when > 0, ``dagman RETRY``
        (upper case, as ``add_dagman_profile`` writes it), ``pegasus cores/memory/gpus`` and
        ``condor request_gpus``.
    """
    out: list[Profile] = []
    if checkpointed and execution.checkpoint_time > 0:
        out.append((Namespace.PEGASUS, "checkpoint.time", int(execution.checkpoint_time)))
    if execution.maxwalltime > 0:
        out.append((Namespace.PEGASUS, "maxwalltime", int(execution.maxwalltime)))
        # the batch system's walltime (pegasus_job_runtime -> batch_runtime on glite sites), in seconds
        out.append((Namespace.PEGASUS, "runtime", int(execution.maxwalltime) * 60))
    if execution.retries > 0:
        out.append((Namespace.DAGMAN, "RETRY", int(execution.retries)))  # as add_dagman_profile
    out.extend(resource_profiles(resources, execution))
    return out


def apply_job_profiles(job: Job, execution: ExecutionSpec, *, checkpointed: bool,
                       resources: dict[str, Any] | None = None) -> Job:
    """Add :func:`job_profiles` to ``job`` and return it."""
    for ns, key, value in job_profiles(execution, checkpointed=checkpointed, resources=resources):
        job.add_profiles(ns, key=key, value=value)
    return job


def checkpoint_placeholder(rc: ReplicaCatalog, lfn: str, run_dir: Path) -> Path:
    """Register an empty placeholder for a checkpoint LFN so a first run plans under condorio.

    Pegasus needs every input of a job, checkpoints included, to have a replica
    when it plans a condorio workflow. The placeholder is an empty file at
    ``<run>/placeholders/<lfn>``; steps treat a zero-byte checkpoint as "no
    checkpoint yet". No checksum is registered: the real checkpoint that later
    replaces it must not fail Pegasus's integrity check.

    Returns:
        The placeholder's path.
    """
    if os.path.isabs(lfn) or ".." in Path(lfn).parts:
        raise WorkflowError(f"checkpoint LFN {lfn!r} must be a run-relative path without '..'")
    path = Path(run_dir).resolve() / "placeholders" / lfn
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
    rc.add_replica("local", lfn, path.as_uri())
    return path
