"""The local backend's condorio sandbox (execution.staging=sandbox): path bugs fail here as on an HTCondor pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlwf_nb.backends import get_backend
from mlwf_nb.backends.sandbox import SandboxError, Sandboxes, undeclared_files
from mlwf_nb.runs import Run
from mlwf_nb.spec import RunSpec
from mlwf_nb.workflow import build_graph, write_run_dir
from tests.backends import sandbox_steps

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, staging: str) -> Run:
    spec = RunSpec.from_preset("tiny").with_overrides(
        {"execution.staging": staging, "execution.retries": 0, "name": f"bugs-{staging}"})
    run = write_run_dir(spec, tmp_path / staging, graph=build_graph(spec, sandbox_steps.PIPELINE))
    get_backend("local").submit(run, jobs=2, wait=True)
    return Run.attach(run)


@pytest.fixture
def sandbox_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # jobs import tests.backends.sandbox_steps
    root = tmp_path / "sandboxes"
    monkeypatch.setenv("MLWF_SANDBOX_ROOT", str(root))
    return root


def test_path_bugs_pass_on_a_shared_filesystem(tmp_path, sandbox_root):
    run = _run(tmp_path, "shared")
    assert run.state == "Success", run.status()["mlwf"]["failed_jobs"]
    assert (run.dir / "outputs/sibling.txt").read_text() == "other\n"  # found by the folder layout
    assert json.loads((run.dir / "outputs/copy.json").read_text())["cwd"] == str(run.dir)


def test_path_bugs_fail_in_the_sandbox_as_on_a_pool(tmp_path, sandbox_root):
    run = _run(tmp_path, "sandbox")
    st = run.status()["mlwf"]
    assert run.state == "Failure"
    failed = {st["jobs"][n]["step"]: st["jobs"][n].get("stderr_tail", "") for n in st["failed_jobs"]}
    assert set(failed) == {"sb_reads_sibling", "sb_writes_extra", "sb_forgets_output"}
    assert "other.txt" in failed["sb_reads_sibling"] and "No such file" in failed["sb_reads_sibling"]
    assert "wrote extra.log, which the job does not declare" in failed["sb_writes_extra"]
    assert "declared output outputs/also.txt was not written" in failed["sb_forgets_output"]
    assert not (run.dir / "outputs/extra.txt").exists()  # a failed job's outputs stay out of the run
    # the well-behaved job ran in an empty folder outside the run, on its own copies of the inputs
    copy = json.loads((run.dir / "outputs/copy.json").read_text())
    assert copy["text"] == "input\nother\n"
    assert Path(copy["cwd"]).is_relative_to(sandbox_root) and not Path(copy["src"]).is_relative_to(run.dir)
    assert copy["src"] == str(Path(copy["cwd"]) / "data/in.txt")  # at its LFN path, as Pegasus >= 5.1 puts it
    assert not any(sandbox_root.rglob("*.txt"))  # every sandbox removed


def test_sandboxes_unit(tmp_path):
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "data/a.txt").write_text("a")
    (run / "work").mkdir()
    (run / "work/ck.json").write_text("{}")
    boxes = Sandboxes(run, {"j": ["data/a.txt"]}, {"j": ["outputs/o.txt"]}, {"j": ["work/ck.json"]})
    box = boxes.enter("j", 1)
    assert (box / "data/a.txt").read_text() == "a" and not (box / "data/a.txt").is_symlink()
    assert (box / "work/ck.json").stat().st_ino != (run / "work/ck.json").stat().st_ino  # checkpoints copied
    (box / "work/ck.json").write_text('{"epoch": 1}')
    assert boxes.leave("j", 75) == 75  # a checkpointing exit: only the checkpoint comes back
    assert (run / "work/ck.json").read_text() == '{"epoch": 1}' and not box.exists()
    box = boxes.enter("j", 2)
    (box / "outputs").mkdir()
    (box / "outputs/o.txt").write_text("o")
    assert boxes.leave("j", 0) == 0 and (run / "outputs/o.txt").read_text() == "o"
    assert undeclared_files(run, ["data/a.txt", "work/ck.json"]) == ["outputs/o.txt"]
    clash = Sandboxes(run, {"k": ["data/a.txt", "work/a.txt"]}, {"k": []}, {"k": []})
    with pytest.raises(SandboxError, match="one basename"):
        clash.enter("k", 1)
    first = Sandboxes(run, {"c": []}, {"c": []}, {"c": ["work/new.keras"]})  # no checkpoint yet
    assert first.enter("c", 1).joinpath("work/new.keras").stat().st_size == 0  # Pegasus's placeholder
    assert first.leave("c", 0) == 0 and (run / "work/new.keras").stat().st_size == 0
    missing = Sandboxes(run, {"m": ["data/nope.txt"]}, {"m": []}, {"m": []})
    with pytest.raises(SandboxError, match="does not exist"):
        missing.enter("m", 1)
    boxes.clear()
    assert not boxes.root.exists()


def test_staging_is_a_spec_setting():
    from mlwf_nb.errors import SpecError

    assert RunSpec.from_preset("tiny").execution.staging == "shared"
    with pytest.raises(SpecError, match="staging"):
        RunSpec.from_preset("tiny").with_overrides({"execution.staging": "copy"})
