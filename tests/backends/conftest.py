"""Fixtures for the backend tests: tiny Pegasus.api workflows written into tmp run dirs."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from Pegasus.api import (
    File,
    Job,
    Namespace,
    Properties,
    ReplicaCatalog,
    Site,
    SiteCatalog,
    Transformation,
    TransformationCatalog,
    Workflow,
)

from mlwf_nb.backends.local import _read_pid, executor_alive

SH = "/bin/sh"


class RunBuilder:
    """Builds a run directory with a workflow of /bin/sh (and python) jobs."""

    def __init__(self, root: Path, name: str = "wf") -> None:
        self.root = root
        self.wf = Workflow(name)
        self.tc = TransformationCatalog()
        self.rc = ReplicaCatalog()
        self.props = Properties()
        self.tr: dict[str, Transformation] = {}

    def transformation(self, name: str, pfn: str = SH, **env: str) -> Transformation:
        if name not in self.tr:
            tr = Transformation(name, site="local", pfn=pfn, is_stageable=False)
            if env:
                tr.add_env(**env)
            self.tc.add_transformations(tr)
            self.tr[name] = tr
        return self.tr[name]

    def sh(self, step: str, script: str, *, inputs=(), outputs=(), checkpoints=(), _id=None,
           retry=None, checkpoint_time=None, maxwalltime=None, env=None) -> Job:
        job = Job(self.transformation(step), _id=_id).add_args("-c", script)
        if inputs:
            job.add_inputs(*[File(f) for f in inputs])
        if outputs:
            job.add_outputs(*[File(f) for f in outputs], stage_out=False, register_replica=False)
        for ck in checkpoints:
            job.add_checkpoint(File(ck), stage_out=False, register_replica=False)
        if retry is not None:
            job.add_profiles(Namespace.DAGMAN, key="retry", value=retry)
        if checkpoint_time is not None:
            job.add_profiles(Namespace.PEGASUS, key="checkpoint.time", value=checkpoint_time)
        if maxwalltime is not None:
            job.add_profiles(Namespace.PEGASUS, key="maxwalltime", value=maxwalltime)
        if env:
            job.add_env(**env)
        self.wf.add_jobs(job)
        return job

    def write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            self.wf.write("workflow.yml")
            self.tc.write("transformations.yml")
            self.rc.write("replicas.yml")
            sc = SiteCatalog()
            sc.add_sites(Site("local"))
            sc.write("sites.yml")
            self.props.write("pegasus.properties")
        finally:
            os.chdir(cwd)
        return self.root


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[Callable[..., RunBuilder]]:
    made: list[RunBuilder] = []

    def make(name: str = "run") -> RunBuilder:
        b = RunBuilder(tmp_path / name)
        made.append(b)
        return b

    yield make
    for b in made:  # never leave an executor behind
        pid = _read_pid(b.root) if b.root.exists() else None
        if pid and executor_alive(b.root):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


PY = sys.executable
