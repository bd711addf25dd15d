"""Pegasus site catalogs for a run: the site presets (``execution.site``) or the user's ``sites.yml``.

Site presets (``execution.site``):

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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Pegasus.api import (
    OS,
    Arch,
    Directory,
    FileServer,
    Grid,
    Namespace,
    Operation,
    Scheduler,
    Site,
    SiteCatalog,
    SupportedJobs,
)

from mlwf_nb.errors import WorkflowError
from mlwf_nb.spec import ExecutionSpec

__all__ = [
    "SitePreset",
    "SITE_PRESETS",
    "ENV_SHARED_SCRATCH",
    "ENV_BATCH_SCHEDULER",
    "available_sites",
    "describe_sites",
    "get_preset",
    "build_site_catalog",
    "load_site_catalog",
    "batch_scheduler",
    "Profile",
]

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
