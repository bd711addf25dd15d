"""mlwf_nb.safety: names that cannot escape, private files, group sharing, container mounts."""

from __future__ import annotations

import stat

import pytest
import yaml

from mlwf_nb import _io
from mlwf_nb.safety import SHARE_GROUP_ENV, UnsafeNameError, check_name, check_within, secure_tree


@pytest.mark.parametrize("name", ["landcover", "GF-2_000", "trial-3", "run.v2", "a+b@c"])
def test_safe_names_pass(name):
    assert check_name(name, "name") == name


@pytest.mark.parametrize("name", ["", "..", "../x", "a/../b", "/abs", "a/b", "a\\b", ".hidden", "x\0y",
                                  "-flag", "a" * 201, None, 3])
def test_unsafe_names_fail(name):
    with pytest.raises(UnsafeNameError, match="name"):
        check_name(name, "name")


def test_paths_stay_inside(tmp_path):
    (tmp_path / "images").mkdir()
    assert check_within("images/a.tif", tmp_path, "image") == tmp_path / "images/a.tif"
    for bad in ("../a.tif", "/etc/passwd", "images/../../a.tif"):
        with pytest.raises(UnsafeNameError, match="points outside"):
            check_within(bad, tmp_path, "image")
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(UnsafeNameError):
        check_within("link/passwd", tmp_path, "image")


@pytest.mark.parametrize(("share", "fmode", "dmode"), [("", 0o600, 0o700), ("1", 0o640, 0o750)])
def test_modes_private_by_default_group_when_asked(tmp_path, monkeypatch, share, fmode, dmode):
    monkeypatch.setenv(SHARE_GROUP_ENV, share)
    p = _io.write_json(tmp_path / "run" / "x.json", {})
    assert stat.S_IMODE(p.stat().st_mode) == fmode
    (tmp_path / "run" / "sub").mkdir(mode=0o777)
    secure_tree(tmp_path / "run")
    assert stat.S_IMODE((tmp_path / "run" / "sub").stat().st_mode) == dmode


def test_run_dir_is_private_and_containers_mount_nothing(tmp_path, monkeypatch):
    """Containers run on condorio sites only (planner_rules): files are staged in, no host folder is mounted."""
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.workflow import build_graph, write_run_dir
    from tests.steps import custom_steps

    monkeypatch.delenv(SHARE_GROUP_ENV, raising=False)
    spec = RunSpec.from_preset("tiny").with_overrides(["name=c", "execution.container=docker://mlwf/job",
                                                       "execution.site=condorpool"])
    run = write_run_dir(spec, tmp_path / "run", graph=build_graph(spec, custom_steps.PIPELINE))
    for p in [run, *run.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    tc = yaml.safe_load((run / "transformations.yml").read_text())
    mounts = [m for c in tc.get("containers", []) for m in c.get("mounts", [])]
    assert tc["containers"] and mounts == [], mounts  # no home, no /, not even the run directory


def test_a_new_runs_folder_is_private_too(tmp_path, monkeypatch):
    """Other users of a shared machine see no run names in a runs folder mlwf created (e.g. ~/runs)."""
    from mlwf_nb.spec import RunSpec
    from mlwf_nb.workflow import build_graph, write_run_dir
    from tests.steps import custom_steps

    monkeypatch.delenv(SHARE_GROUP_ENV, raising=False)
    spec = RunSpec.from_preset("tiny").with_overrides(["name=c"])
    run = write_run_dir(spec, tmp_path / "home" / "runs" / "c-1", graph=build_graph(spec, custom_steps.PIPELINE))
    assert stat.S_IMODE(run.parent.stat().st_mode) == 0o700
    (tmp_path / "shared").mkdir(mode=0o755)  # a folder the admin made: its mode is theirs
    run = write_run_dir(spec, tmp_path / "shared" / "c-2", graph=build_graph(spec, custom_steps.PIPELINE))
    assert stat.S_IMODE(run.parent.stat().st_mode) == 0o755
