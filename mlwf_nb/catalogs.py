"""Pegasus catalogs and properties for a run: sites, transformations, profiles.

The workflow builder asks this module for the site catalog, the transformation
catalog, the properties and each job's profiles; it never spells a Pegasus
profile key itself. Site presets (``execution.site``):

``local``
    Jobs run on this host (Pegasus's ``local`` site), shared filesystem, data
    symlinked rather than copied (``pegasus.transfer.links``).
``condorpool``
    An HTCondor pool without a shared filesystem: ``pegasus.style=condor``,
    vanilla universe, ``data.configuration=condorio`` (HTCondor moves files).
``sharedfs``
    A campus cluster with a shared filesystem, submitted from its login node.
    Default: SLURM through HTCondor's batch GAHP (``pegasus.style=glite``,
    the BOSCO route, ``grid_resource = batch slurm``); set
    ``MLWF_BATCH_SCHEDULER`` to ``pbs``, ``sge`` or ``lsf`` for other batch
    systems, or ``condor`` for an HTCondor pool with a shared filesystem.
    Shared scratch is ``<run>/scratch`` (the run directory must then be on the
    shared filesystem) or ``$MLWF_SHARED_SCRATCH``.
``gpus``
    Like ``condorpool`` plus ``request_gpus`` / the ``pegasus gpus`` profile.

Directory layout: the ``local`` site's shared scratch is ``<run>/scratch`` and
its local storage (where outputs are staged back) is the run directory itself,
because LFNs are already run-relative (``outputs/model.keras`` lands at
``<run>/outputs/model.keras``).

``sharedfs`` sites also carry ``env PEGASUS_HOME`` (where Pegasus is installed on
the nodes, :func:`mlwf_nb.planner_rules.pegasus_home`): the planner needs it to find
``pegasus-kickstart``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Pegasus.api import (
    OS,
    Arch,
    Container,
    Directory,
    FileServer,
    Grid,
    Job,
    Namespace,
    Operation,
    Properties,
    ReplicaCatalog,
    Scheduler,
    Site,
    SiteCatalog,
    SupportedJobs,
    Transformation,
    TransformationCatalog,
)

from mlwf_nb.errors import WorkflowError
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
ENV_SHARED_SCRATCH = "MLWF_SHARED_SCRATCH"
ENV_BATCH_SCHEDULER = "MLWF_BATCH_SCHEDULER"
_SCHEDULERS = {"slurm": Scheduler.SLURM, "pbs": Scheduler.PBS, "sge": Scheduler.SGE,
               "lsf": Scheduler.LSF, "condor": Scheduler.CONDOR}

#: one profile: (namespace, key, value), applied with ``obj.add_profiles(ns, key=key, value=value)``
Profile = tuple[Namespace, str, "str | int"]


@dataclass(frozen=True)
class SitePreset:
    """A named execution site recipe.

    Attributes:
        name: the site name used in the catalogs and ``--sites``.
        description: one line for ``mlwf sites``.
        data_configuration: ``sharedfs``, ``condorio`` or ``nonsharedfs``.
        style: ``pegasus.style`` (``condor``, ``glite``) or None for the local site.
        shared_scratch: whether the site has a shared scratch directory (sharedfs).
        gpus: whether jobs ask for GPUs by default.
        profiles: extra site-level profiles.
    """

    name: str
    description: str
    data_configuration: str
    style: str | None = None
    shared_scratch: bool = False
    gpus: bool = False
    profiles: tuple[Profile, ...] = field(default_factory=tuple)

    @property
    def shared_filesystem(self) -> bool:
        """True where jobs see the run directory (job events can be followed live)."""
        return self.data_configuration == "sharedfs"


SITE_PRESETS: dict[str, SitePreset] = {
    "local": SitePreset(
        "local", "this host; shared filesystem, inputs symlinked (pegasus.transfer.links)",
        "sharedfs", style=None, shared_scratch=True),
    "condorpool": SitePreset(
        "condorpool", "HTCondor pool, no shared filesystem: vanilla universe, condorio file transfer",
        "condorio", style="condor",
        profiles=((Namespace.CONDOR, "universe", "vanilla"), (Namespace.CONDOR, "+WantIOProxy", "true"))),
    "sharedfs": SitePreset(
        "sharedfs", "campus cluster with a shared filesystem: SLURM (or $MLWF_BATCH_SCHEDULER) via "
        "HTCondor glite/BOSCO from the login node; scratch <run>/scratch or $MLWF_SHARED_SCRATCH",
        "sharedfs", style="glite", shared_scratch=True,
        profiles=((Namespace.PEGASUS, "auxillary.local", "true"),)),
    "gpus": SitePreset(
        "gpus", "HTCondor pool with GPU slots: condorpool + request_gpus / pegasus gpus",
        "condorio", style="condor", gpus=True,
        profiles=((Namespace.CONDOR, "universe", "vanilla"), (Namespace.CONDOR, "+WantIOProxy", "true"))),
}


def available_sites() -> list[str]:
    """Names of the site presets, sorted."""
    return sorted(SITE_PRESETS)


def describe_sites() -> str:
    """A short table of the presets (for ``mlwf sites``)."""
    width = max(map(len, SITE_PRESETS))
    return "\n".join(f"{p.name:<{width}}  [{p.data_configuration}]  {p.description}"
                     for p in SITE_PRESETS.values())


def get_preset(name: str) -> SitePreset:
    """The preset called ``name``.

    Raises:
        WorkflowError: unknown name; lists the presets and the ``site_catalog`` escape hatch.
    """
    try:
        return SITE_PRESETS[name]
    except KeyError:
        raise WorkflowError(f"execution.site: unknown site preset {name!r}; expected one of "
                            f"{available_sites()}, or set execution.site_catalog to your own "
                            "sites.yml that defines it") from None


def _local_site(run_dir: Path) -> Site:
    scratch = run_dir / "scratch"
    storage = run_dir
    return Site("local", arch=Arch.X86_64, os_type=OS.LINUX).add_directories(
        Directory(Directory.SHARED_SCRATCH, scratch, shared_file_system=True)
        .add_file_servers(FileServer(scratch.as_uri(), Operation.ALL)),
        Directory(Directory.LOCAL_STORAGE, storage)
        .add_file_servers(FileServer(storage.as_uri(), Operation.ALL)),
    )


def batch_scheduler() -> str:
    """The batch system of the ``sharedfs`` preset: ``$MLWF_BATCH_SCHEDULER`` (default slurm)."""
    name = os.environ.get(ENV_BATCH_SCHEDULER, "slurm").lower()
    if name not in _SCHEDULERS:
        raise WorkflowError(f"${ENV_BATCH_SCHEDULER}={name!r} is not a known batch system; "
                            f"expected one of {sorted(_SCHEDULERS)}")
    return name


def _execution_site(preset: SitePreset, run_dir: Path) -> Site:
    site = Site(preset.name, arch=Arch.X86_64, os_type=OS.LINUX)
    style = preset.style
    if preset.name == "sharedfs":
        sched = batch_scheduler()
        if sched == "condor":
            style = "condor"
            site.add_profiles(Namespace.CONDOR, key="universe", value="vanilla")
        else:
            site.add_grids(Grid(Grid.BATCH, contact="localhost", scheduler_type=_SCHEDULERS[sched],
                                job_type=SupportedJobs.COMPUTE))
            site.add_profiles(Namespace.CONDOR, key="grid_resource", value=f"batch {sched}")
    if preset.shared_scratch:
        scratch = Path(os.environ.get(ENV_SHARED_SCRATCH) or run_dir / "scratch")
        site.add_directories(Directory(Directory.SHARED_SCRATCH, scratch, shared_file_system=True)
                             .add_file_servers(FileServer(scratch.as_uri(), Operation.ALL)))
    if preset.shared_filesystem:
        from mlwf_nb.planner_rules import pegasus_home

        home = pegasus_home()
        if home:  # without it the planner cannot find pegasus-kickstart (planner_rules refuses first)
            site.add_profiles(Namespace.ENV, key="PEGASUS_HOME", value=home)
    if style:
        site.add_profiles(Namespace.PEGASUS, key="style", value=style)
    site.add_profiles(Namespace.PEGASUS, key="data.configuration", value=preset.data_configuration)
    for ns, key, value in preset.profiles:
        site.add_profiles(ns, key=key, value=value)
    return site


def build_site_catalog(execution: ExecutionSpec, run_dir: Path) -> SiteCatalog:
    """The site catalog for a run: ``local`` plus the execution site's preset.

    With ``execution.site_catalog`` set, the user's ``sites.yml`` is loaded
    (and validated) instead; it must define ``execution.site``.

    Raises:
        WorkflowError: unknown preset, or a user catalog that is invalid or lacks the site.
    """
    run_dir = Path(run_dir).resolve()
    if execution.site_catalog:
        return load_site_catalog(Path(execution.site_catalog), execution.site)
    preset = get_preset(execution.site)
    local = _local_site(run_dir)
    if preset.name == "local":
        local.add_profiles(Namespace.PEGASUS, key="data.configuration", value="sharedfs")
        return SiteCatalog().add_sites(local)
    return SiteCatalog().add_sites(local, _execution_site(preset, run_dir))


def load_site_catalog(path: Path, site: str) -> SiteCatalog:
    """Load a user's ``sites.yml`` into a ``SiteCatalog``; it must define ``site`` (and may define local).

    Raises:
        WorkflowError: the file is invalid against ``sc-5.0.yml`` or does not define ``site``.
    """
    from mlwf_nb import schemas

    data = schemas.load_yaml(path)
    schemas.validate_data(data, "sites", source=str(path))
    names = [s.get("name") for s in data.get("sites", [])]
    if site not in names:
        raise WorkflowError(f"{path}: site catalog does not define execution.site {site!r} "
                            f"(it defines {names}); add it or choose one of those sites")
    catalog = SiteCatalog()
    catalog.add_sites(*(_site_from_dict(s) for s in data["sites"]))
    return catalog


def _add_profile_dict(obj: Any, profiles: dict[str, dict[str, Any]] | None) -> None:
    for ns, entries in (profiles or {}).items():
        for key, value in entries.items():
            obj.add_profiles(Namespace(ns), key=key, value=value)


def _site_from_dict(d: dict[str, Any]) -> Site:
    site = Site(d["name"], arch=Arch(d["arch"]) if "arch" in d else None,
                os_type=OS(d["os.type"]) if "os.type" in d else None,
                os_release=d.get("os.release"), os_version=d.get("os.version"))
    dir_types = {t.value: t for t in (Directory.SHARED_SCRATCH, Directory.SHARED_STORAGE,
                                      Directory.LOCAL_SCRATCH, Directory.LOCAL_STORAGE)}
    for dd in d.get("directories", []):
        directory = Directory(dir_types[dd["type"]], dd["path"],
                              shared_file_system=bool(dd.get("sharedFileSystem", False)))
        for fs in dd.get("fileServers", []):
            server = FileServer(fs["url"], Operation(fs["operation"]))
            _add_profile_dict(server, fs.get("profiles"))
            directory.add_file_servers(server)
        site.add_directories(directory)
    grid_types = {g.value: g for g in type(Grid.BATCH)}
    for gd in d.get("grids", []):
        jobtype = SupportedJobs(gd["jobtype"]) if "jobtype" in gd else None
        site.add_grids(Grid(grid_types[gd["type"]], gd["contact"], Scheduler(gd["scheduler"]), jobtype))
    _add_profile_dict(site, d.get("profiles"))
    return site


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
