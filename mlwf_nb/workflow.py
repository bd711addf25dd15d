"""The workflow builder: spec + pipeline -> a Pegasus 5 workflow and its catalogs.

This is the one description of the steps. ``write_run_dir`` writes, into a new run
directory, everything any backend needs::

    spec.yaml  run.json  workflow.yml  replicas.yml  transformations.yml  sites.yml
    pegasus.properties

The embedded local backend executes exactly this ``workflow.yml``; the pegasus
backend hands it to ``pegasus-plan``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from Pegasus.api import File, Job, ReplicaCatalog, Workflow

from mlwf_nb import _io, safety
from mlwf_nb.errors import RunExistsError, WorkflowError
from mlwf_nb.pipelines import Graph, JobNode, Pipeline, get_pipeline
from mlwf_nb.pipelines._prepare import no_generation
from mlwf_nb.rundir import WARM_METADATA
from mlwf_nb.spec import RunSpec

__all__ = ["SPEC_LFN", "WARM_METADATA", "build_graph", "build_workflow", "write_run_dir", "mlwf_executable",
           "RUN_FILES"]

SPEC_LFN = "spec.yaml"
"""Job metadata key: "true" for a job whose step imports Keras (``@step(..., warm=True)``)."""
RUN_FILES = ("spec.yaml", "run.json", "workflow.yml", "replicas.yml", "transformations.yml",
             "sites.yml", "pegasus.properties")


def mlwf_executable() -> str:
    """Absolute path of the ``mlwf`` console script of this environment."""
    candidate = Path(sys.executable).parent / "mlwf"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("mlwf")
    if not found:
        raise WorkflowError("the 'mlwf' command is not installed in this environment; "
                            "run `pip install -e .` (or `make install`) first")
    return found


def build_graph(spec: RunSpec, pipeline: Pipeline | None = None, *, generate: bool = True) -> Graph:
    """Let the spec's pipeline build its job graph (data preparation included).

    With ``generate=False`` (``mlwf plan``, ``mlwf validate``) no data is written: a synthetic
    dataset not made yet is a DatasetError naming the command that makes it
    (:func:`mlwf_nb.pipelines._prepare.no_generation`); an existing dataset is accepted as a run accepts it.
    """
    pipe = pipeline or get_pipeline(spec.pipeline)
    if pipe.prepare is not None:
        if generate:
            pipe.prepare(spec)
        else:  # prepare checks the dataset as a run does, but refuses to generate a synthetic one
            with no_generation():
                pipe.prepare(spec)
    graph = Graph()
    pipe.build(spec, graph)
    if not graph.nodes:
        raise WorkflowError(f"pipeline {pipe.name!r} produced no jobs for this spec")
    return graph


def _job(node: JobNode, files: dict[str, File], execution: Any, job_id: str, run_dir: Path | None) -> Job:
    from mlwf_nb import catalogs

    sdef = node.step
    job = Job(sdef.transformation, _id=job_id, node_label=node.label)

    def f(lfn: str) -> File:
        return files.setdefault(lfn, File(lfn))

    args: list[Any] = ["step", sdef.command_name]
    seen: set[str] = set()  # a file is declared once per job even if two parameters name it
    if sdef.spec_param:
        args += ["--spec", f(SPEC_LFN)]
        job.add_inputs(f(SPEC_LFN))
        seen.add(SPEC_LFN)
    for param in sdef.files:
        value = node.args.get(param)
        if value is None:
            continue
        lfns = value if isinstance(value, list) else [value]
        objs = [f(lfn) for lfn in lfns]
        args += ["--" + param.replace("_", "-"), *objs]
        objs = [o for o in objs if o.lfn not in seen]
        seen.update(o.lfn for o in objs)
        if param in sdef.outputs:
            for obj in objs:
                job.add_outputs(obj, stage_out=obj.lfn.startswith("outputs/"), register_replica=False)
        elif param in sdef.checkpoints:
            for obj in objs:
                job.add_checkpoint(obj, stage_out=True)
        elif objs:
            job.add_inputs(*objs)
    for param in sdef.values:
        if param in node.args:
            value = node.args[param]
            if isinstance(value, list | tuple):
                args += ["--" + param.replace("_", "-"), *(str(v) for v in value)]
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["--" + param.replace("_", "-"), text]
    job.add_metadata(step=sdef.name, label=node.label)
    if sdef.warm:  # the local executor forks such jobs from a worker with Keras loaded (it reads the plan)
        job.add_metadata(**{WARM_METADATA: "true"})
    for ns, key, value in catalogs.job_profiles(execution, checkpointed=bool(sdef.checkpoints),
                                                resources=_resources(sdef)):
        job.add_profiles(ns, key=key, value=value)
    if execution.backend != "local" and run_dir is not None:
        args += _events_file(job, execution, f"{sdef.transformation}_{job_id}", job_id, run_dir)
    job.add_args(*args)
    return job


def _events_file(job: Job, execution: Any, name: str, job_id: str, run_dir: Path) -> list[str]:
    """Where a Pegasus job writes its events, as ``mlwf step`` arguments (``--mlwf-events F --mlwf-job ID``).

    Arguments, not ``env`` profiles: Pegasus merges the env profiles of clustered jobs
    (``execution.cluster_size``) into one, but keeps each job's arguments. On a shared
    filesystem the file is ``<run>/jobs/<name>/events.jsonl``, followed live by the relay;
    under condorio it is the job's output ``jobs/<name>/<name>.events.jsonl`` (a basename of
    its own, so clustered jobs do not collide), staged back when the job ends (chirp carries
    live progress meanwhile, see :mod:`mlwf_nb.chirp`).
    """
    from mlwf_nb.planner_rules import data_configuration

    if data_configuration(execution) == "sharedfs":
        events = str(Path(run_dir).resolve() / "jobs" / name / "events.jsonl")
    else:
        events = f"jobs/{name}/{name}.events.jsonl"
        job.add_outputs(File(events), stage_out=True, register_replica=False)
    return ["--mlwf-events", events, "--mlwf-job", job_id]


def _resources(sdef: Any) -> dict[str, Any]:
    """What the catalogs need to know of a step's resources (see :func:`mlwf_nb.catalogs.resource_profiles`)."""
    return {**sdef.resources, "runs_model": sdef.runs_model}


def build_workflow(spec: RunSpec, graph: Graph, run_dir: Path | None = None) -> Workflow:
    """Turn a job graph into a ``Pegasus.api.Workflow`` (dependencies inferred from files).

    Job ids are Pegasus's own style (``ID0000001`` in graph order), so job names read
    ``<transformation>_<id>`` on every backend.
    """
    wf = Workflow(spec.name, infer_dependencies=True)
    files: dict[str, File] = {}
    for i, node in enumerate(graph.nodes, start=1):
        wf.add_jobs(_job(node, files, spec.execution, f"ID{i:07d}", run_dir))
    wf.add_metadata(**{"mlwf.pipeline": spec.pipeline, "mlwf.spec_name": spec.name})
    return wf


def _replicas(spec: RunSpec, graph: Graph, run_dir: Path) -> ReplicaCatalog:
    from mlwf_nb import catalogs

    rc = ReplicaCatalog()
    rc.add_replica("local", SPEC_LFN, (run_dir / SPEC_LFN).resolve().as_uri(),
                   checksum={"sha256": _sha256(run_dir / SPEC_LFN)})
    for item in graph.inputs.values():
        rc.add_replica("local", item.lfn, item.url,
                       checksum={"sha256": item.sha256} if item.sha256 else None)
    for node in graph.nodes:
        for lfn in node.files("checkpoints"):
            catalogs.checkpoint_placeholder(rc, lfn, run_dir)
    return rc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_run_dir(spec: RunSpec, run_dir: str | os.PathLike[str], *, graph: Graph | None = None,
                  overwrite: bool = False, generate: bool = True) -> Path:
    """Write the spec, the workflow and its catalogs into a new run directory.

    What the real ``pegasus-plan`` would refuse is refused first (:mod:`mlwf_nb.planner_rules`),
    before anything is written. ``generate=False``: write no data (see :func:`build_graph`).

    Raises:
        RunExistsError: ``run_dir`` already holds a run (and ``overwrite`` is false), or it is a
            folder holding other files (a run directory is new or empty: runs are never mixed
            with other files).
        PlanRuleError: the workflow breaks a rule of the planner; the message lists each and its fix.
    """
    from mlwf_nb import catalogs, planner_rules

    spec.validate()
    run = Path(run_dir).resolve()
    if (run / "workflow.yml").exists() and not overwrite:
        raise RunExistsError(f"run directory {str(run)!r} already holds a run; choose another "
                             "--run-dir, `mlwf resume` it, or delete it first")
    if run.exists() and (not run.is_dir() or any(run.iterdir())) and not (run / "workflow.yml").exists():
        raise RunExistsError(f"{str(run)!r} is not a run directory but holds other files; give --run-dir a "
                             "new or empty folder (runs are never written among other files)")
    planner_rules.require(spec.execution)  # before the pipeline reads (or generates) any data
    graph = graph if graph is not None else build_graph(spec, generate=generate)
    planner_rules.require(spec.execution, graph)
    if not run.parent.exists():  # a new runs folder (e.g. ~/runs) is private too: run names are not shown
        run.parent.mkdir(parents=True, mode=safety.dir_mode())
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(run, safety.dir_mode())  # private to the user unless $MLWF_SHARE_GROUP
    spec.save(run / SPEC_LFN)
    wf = build_workflow(spec, graph, run)
    steps = sorted({n.step.transformation for n in graph.nodes})
    resources = {n.step.transformation: _resources(n.step) for n in graph.nodes}
    with _io.atomic_path(run / "workflow.yml") as tmp:
        wf.write(str(tmp))
    with _io.atomic_path(run / "replicas.yml") as tmp:
        _replicas(spec, graph, run).write(str(tmp))
    tc = catalogs.build_transformation_catalog(spec.execution, steps, mlwf_executable(), resources, run_dir=run)
    with _io.atomic_path(run / "transformations.yml") as tmp:
        tc.write(str(tmp))
    with _io.atomic_path(run / "sites.yml") as tmp:
        catalogs.build_site_catalog(spec.execution, run).write(str(tmp))
    with _io.atomic_path(run / "pegasus.properties") as tmp:
        catalogs.build_properties(spec.execution, run).write(str(tmp))
    from mlwf_nb import __version__

    safety.secure_tree(run)  # catalogs' placeholders too
    _io.write_json(run / "run.json", {
        "version": 1, "mlwf_nb": __version__, "pipeline": spec.pipeline, "name": spec.name,
        "backend": spec.execution.backend, "created": time.time(),
        "jobs": [{"name": f"{n.step.transformation}", "label": n.label, "step": n.step.name}
                 for n in graph.nodes],
        "inputs": {k: {"url": v.url, "sha256": v.sha256} for k, v in graph.inputs.items()},
        "data_digest": _inputs_digest(graph),
    })
    return run


def _inputs_digest(graph: Graph) -> str:
    h = hashlib.sha256()
    for lfn in sorted(graph.inputs):
        h.update(f"{lfn}\0{graph.inputs[lfn].sha256 or ''}\n".encode())
    return h.hexdigest()
