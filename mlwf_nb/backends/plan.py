"""The plan of a run directory as the local executor runs it: ``workflow.yml`` and its catalogs read.

:func:`read_plan` interprets the Pegasus 5 abstract workflow and its catalogs the way
``pegasus-plan`` would for site ``local`` with symlinking and no stage-out (environment
profiles, the transformation's executable, retries, ``checkpoint.time``/``maxwalltime``, a
stage-in pseudo job for replicas outside the run directory), checks the graph is acyclic and
caches the result in ``<run>/plan-cache.json``. The conventions are in :mod:`mlwf_nb.backends.local`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwf_nb.backends.base import RunDir
from mlwf_nb.backends.staging import STAGE_IN_JOB, load_replicas, needs_stage_in, read_yaml
from mlwf_nb.errors import RunError, WorkflowError
from mlwf_nb.rundir import WARM_METADATA

__all__ = ["Plan", "PlannedJob", "read_plan", "WARM_METADATA"]

"""Job metadata the workflow builder writes for jobs of Keras steps (``"true"``): warm-worker candidates."""



@dataclass(slots=True)
class PlannedJob:
    """One job as the executor runs it; times are in seconds."""

    id: str
    name: str
    step: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # checkpoints included
    checkpoints: list[str] = field(default_factory=list)
    retry: int = 0
    checkpoint_time: float | None = None
    maxwalltime: float | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    warm: bool = False  # job metadata ``mlwf.warm``: may be forked from a warm worker (see _warm)


@dataclass
class Plan:
    """The executable form of ``workflow.yml``: jobs by jobstate name and their edges."""

    name: str
    jobs: dict[str, PlannedJob]
    parents: dict[str, list[str]]
    children: dict[str, list[str]]


def _properties(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#!":
            key, sep, value = line.partition("=") if "=" in line else line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
    return out


def _profile(layers: list[Mapping[str, Any]], ns: str, key: str) -> Any:
    """First value of ``ns.key`` in profile layers ordered most specific first."""
    for prof in layers:
        value = (prof.get(ns) or {}).get(key)
        if value is not None:
            return value
    return None


def _find_tr(tc: list[dict[str, Any]], job: Mapping[str, Any]) -> dict[str, Any]:
    for tr in tc:
        if tr.get("name") == job["name"] and job.get("namespace") in (None, tr.get("namespace")) \
                and job.get("version") in (None, tr.get("version")):
            return tr
    raise WorkflowError(f"job {job.get('id')!r}: transformation {job['name']!r} is not in transformations.yml; "
                        "add it to the TransformationCatalog")


def _pfn(tr: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    sites = tr.get("sites") or []
    if not sites:
        raise WorkflowError(f"transformation {tr['name']!r} has no site entry in transformations.yml")
    site = next((s for s in sites if s.get("name") == "local"), sites[0])
    pfn = str(site["pfn"])
    if pfn.startswith("file://"):
        pfn = pfn[len("file://"):]
    if "://" in pfn:
        raise WorkflowError(f"transformation {tr['name']!r}: pfn {pfn!r} is remote; the local backend runs "
                            "installed executables only (give a path on this machine)")
    return pfn, site


def _seconds(minutes: Any) -> float | None:
    return None if minutes is None else float(minutes) * 60.0


def _planned(job: Mapping[str, Any], tc: list[dict[str, Any]], site_env: Mapping[str, Any],
             props: Mapping[str, str]) -> PlannedJob:
    if job.get("type", "job") != "job":
        raise WorkflowError(f"job {job.get('id')!r} has type {job.get('type')!r}; the local backend runs "
                            "plain jobs only (no sub-workflows)")
    tr = _find_tr(tc, job)
    pfn, tsite = _pfn(tr)
    layers = [job.get("profiles") or {}, tsite.get("profiles") or {}, tr.get("profiles") or {}]
    env = {k[4:]: v for k, v in props.items() if k.startswith("env.")}
    env.update(site_env)
    for prof in reversed(layers):
        env.update(prof.get("env") or {})
    uses = job.get("uses") or []
    for use in uses:  # every file lives inside the run directory: no absolute LFNs, no '..'
        lfn = str(use.get("lfn", ""))
        if not lfn or lfn.startswith("/") or ".." in Path(lfn).parts:
            raise WorkflowError(f"job {job.get('id')!r}: file {lfn!r} would be outside the run directory; "
                                "LFNs are paths relative to it, without '..'")
    retry = _profile(layers, "dagman", "retry") or _profile(layers, "dagman", "RETRY") \
        or props.get("dagman.retry", 0)
    ckpt = _profile(layers, "pegasus", "checkpoint.time") or props.get("pegasus.checkpoint.time")
    wall = _profile(layers, "pegasus", "maxwalltime") or props.get("pegasus.maxwalltime")
    return PlannedJob(
        id=str(job["id"]), name=f"{job['name']}_{job['id']}", step=str(job["name"]),
        argv=[pfn, *(str(a) for a in job.get("arguments") or [])],
        env={str(k): str(v) for k, v in env.items()},
        inputs=[u["lfn"] for u in uses if u.get("type") == "input"],
        outputs=[u["lfn"] for u in uses if u.get("type") in ("output", "checkpoint")],
        checkpoints=[u["lfn"] for u in uses if u.get("type") == "checkpoint"],
        retry=int(retry), checkpoint_time=_seconds(ckpt), maxwalltime=_seconds(wall),
        stdin=job.get("stdin"), stdout=job.get("stdout"), stderr=job.get("stderr"),
        warm=str((job.get("metadata") or {}).get(WARM_METADATA, "")).lower() == "true")


def _edges(wf: Mapping[str, Any], jobs: dict[str, PlannedJob]) -> dict[str, list[str]]:
    """Parents of each job: ``jobDependencies`` united with edges inferred from files."""
    by_id = {pj.id: name for name, pj in jobs.items()}
    parents: dict[str, set[str]] = {name: set() for name in jobs}
    for dep in wf.get("jobDependencies") or []:
        for child in dep.get("children") or []:
            if dep["id"] not in by_id or child not in by_id:
                raise WorkflowError(f"workflow.yml: jobDependencies names unknown job {dep['id']!r} -> {child!r}")
            parents[by_id[child]].add(by_id[dep["id"]])
    producer = {lfn: name for name, pj in jobs.items() for lfn in pj.outputs}
    for name, pj in jobs.items():
        parents[name].update(producer[lfn] for lfn in pj.inputs if lfn in producer and producer[lfn] != name)
    return {name: sorted(ps) for name, ps in parents.items()}


def _check_acyclic(jobs: Mapping[str, PlannedJob], parents: Mapping[str, list[str]],
                   children: Mapping[str, list[str]]) -> None:
    indeg = {n: len(parents[n]) for n in jobs}
    todo = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while todo:
        seen += 1
        for c in children.get(todo.pop(), ()):
            indeg[c] -= 1
            if indeg[c] == 0:
                todo.append(c)
    if seen != len(jobs):
        cycle = sorted(n for n, d in indeg.items() if d > 0)
        raise WorkflowError(f"workflow.yml has a dependency cycle among {cycle[:10]}; remove one edge")


def _add_stage_in(run: Path, wf: Mapping[str, Any], jobs: dict[str, PlannedJob],
                  parents: dict[str, list[str]]) -> None:
    produced = {lfn for pj in jobs.values() for lfn in pj.outputs}
    wanted = list(dict.fromkeys(lfn for pj in jobs.values() for lfn in pj.inputs if lfn not in produced))
    lfns = needs_stage_in(run, wanted, load_replicas(run, wf)) if wanted else []
    if not lfns:
        return
    jobs[STAGE_IN_JOB] = PlannedJob(id=STAGE_IN_JOB, name=STAGE_IN_JOB, step="stage_in",
                                    argv=[sys.executable, "-m", "mlwf_nb.backends.staging", str(run), *lfns],
                                    outputs=list(lfns))
    parents[STAGE_IN_JOB] = []
    staged = set(lfns)
    for name, pj in jobs.items():
        if name != STAGE_IN_JOB and staged.intersection(pj.inputs):
            parents[name].append(STAGE_IN_JOB)


_PLAN_CACHE = "plan-cache.json"
_PLAN_SOURCES = ("workflow.yml", "transformations.yml", "sites.yml", "replicas.yml", "pegasus.properties")


def read_plan(run_dir: RunDir, *, with_stage_in: bool = True) -> Plan:
    """Interpret ``workflow.yml`` and the catalogs of a run directory, cached.

    Parsing a large ``workflow.yml`` costs seconds (YAML); status and the monitor ask
    for the plan often. The parsed plan is kept as JSON in ``<run>/plan-cache.json``,
    keyed by the size and mtime of every file it was read from, and rebuilt when any changes.
    """
    from mlwf_nb import _io

    run = Path(run_dir).resolve()
    key = [with_stage_in] + [[n, st.st_size, st.st_mtime_ns] if (st := _stat(run / n)) else [n] for n in _PLAN_SOURCES]
    cache = run / _PLAN_CACHE
    try:
        doc = _io.read_json(cache)
        if doc.get("key") == key:
            return Plan(name=doc["name"], jobs={k: PlannedJob(**v) for k, v in doc["jobs"].items()},
                        parents=doc["parents"], children=doc["children"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    plan = _read_plan(run, with_stage_in=with_stage_in)
    try:
        _io.write_json(cache, {"key": key, "name": plan.name, "parents": plan.parents, "children": plan.children,
                               "jobs": {k: {f: getattr(v, f) for f in PlannedJob.__slots__}
                                        for k, v in plan.jobs.items()}}, indent=None)
    except OSError:  # a read-only run directory (another user's run): no cache, still correct
        pass
    return plan


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _read_plan(run_dir: RunDir, *, with_stage_in: bool = True) -> Plan:
    """Interpret ``workflow.yml`` and the catalogs of a run directory for local execution.

    Args:
        run_dir: the run directory.
        with_stage_in: add the ``stage_in_local_local_0`` pseudo job for inputs
            no job produces (needs ``replicas.yml``).

    Raises:
        RunError: ``workflow.yml`` is missing.
        WorkflowError: unknown transformation, remote executable, unknown job in
            a dependency, or a dependency cycle.
    """
    run = Path(run_dir).resolve()
    wf = read_yaml(run / "workflow.yml")
    if not isinstance(wf, dict):
        raise RunError(f"{run / 'workflow.yml'} not found or empty; write the workflow into the run directory")
    tc = list(((read_yaml(run / "transformations.yml") or {}).get("transformations")) or [])
    tc += list((wf.get("transformationCatalog") or {}).get("transformations") or [])
    sc = list(((read_yaml(run / "sites.yml") or {}).get("sites")) or [])
    sc += list((wf.get("siteCatalog") or {}).get("sites") or [])
    site_env = next(((s.get("profiles") or {}).get("env") or {} for s in sc if s.get("name") == "local"), {})
    props = _properties(run / "pegasus.properties")
    jobs: dict[str, PlannedJob] = {}
    for job in wf.get("jobs") or []:
        pj = _planned(job, tc, site_env, props)
        jobs[pj.name] = pj
    parents = _edges(wf, jobs)
    if with_stage_in:
        _add_stage_in(run, wf, jobs, parents)
    children: dict[str, list[str]] = {name: [] for name in jobs}
    for name, ps in parents.items():
        for p in ps:
            children[p].append(name)
    _check_acyclic(jobs, parents, children)
    return Plan(name=str(wf.get("name", "workflow")), jobs=jobs, parents=parents, children=children)
