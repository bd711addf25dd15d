"""The one registry behind every extension point: names, import paths, entry points, clear errors."""

from __future__ import annotations

import pytest

from mlwf_nb.backends import BACKENDS
from mlwf_nb.errors import BackendError, HPOError, SpecError, StepError
from mlwf_nb.hpo.strategies import STRATEGIES
from mlwf_nb.ml.models import MODELS
from mlwf_nb.pipelines import PIPELINES
from mlwf_nb.registry import Registry, load_target
from mlwf_nb.steps.registry import STEPS


@pytest.mark.parametrize(("registry", "group", "error", "builtin"), [
    (BACKENDS, "mlwf_nb.backends", BackendError, "local"),
    (STEPS, "mlwf_nb.steps", StepError, "fit-stretch"),
    (PIPELINES, "mlwf_nb.pipelines", SpecError, "lung"),
    (MODELS, "mlwf_nb.models", SpecError, "unet"),
    (STRATEGIES, "mlwf_nb.hpo_strategies", HPOError, "hyperband"),
])
def test_every_extension_point_is_one_registry(registry, group, error, builtin):
    assert isinstance(registry, Registry) and registry.group == group and registry.error is error
    assert builtin in registry.names() and registry.get(builtin) is registry.get(builtin)
    with pytest.raises(error, match=rf"unknown {registry.kind} 'no-such'; available {registry.plural}: .*{builtin}"):
        registry.get("no-such")


def test_entry_points_add_names_lazily(tmp_path, monkeypatch):
    info = tmp_path / "demo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mlwf_test.things]\nsum = builtins:sum\nbad = builtins:no_such\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[object] = Registry("thing", "mlwf_test.things", error=SpecError)
    assert reg.names() == ["bad", "sum"] and not reg.loaded("sum")
    assert reg.get("sum") is sum and reg.loaded("sum")
    with pytest.raises(SpecError, match="module 'builtins' has no attribute 'no_such'"):
        reg.get("bad")


def test_register_checks_and_refuses_a_taken_name_unless_told():
    reg: Registry[type] = Registry("kind", "mlwf_test.none", error=SpecError,
                                   check=lambda n, o: o if isinstance(o, type) else (_ for _ in ()).throw(
                                       SpecError(f"{n}: not a class")))
    reg.register("a", int)
    with pytest.raises(SpecError, match="already taken by builtins:int"):
        reg.register("a", float, replace=False)
    with pytest.raises(SpecError, match="not a class"):
        reg.register("b", 3)
    with pytest.raises(SpecError, match=r"package\.module:attr"):
        reg.register("c", "no-colon")
    reg.unregister("a")
    assert "a" not in reg


def test_load_target_names_what_is_wrong():
    assert load_target("os.path:join") is __import__("os").path.join
    with pytest.raises(StepError, match=r"cannot import module 'no_such_pkg\.mod' \(No module named 'no_such_pkg'\)"):
        load_target("no_such_pkg.mod:f", error=StepError)


def _builtin_modules(package: str) -> list[str]:
    pkg = __import__("importlib").import_module(package)
    return [m.name for m in __import__("pkgutil").iter_modules(pkg.__path__) if not m.name.startswith("_")]


def test_every_built_in_is_registered_in_code_once():
    """Templates (masks, sweep, centernet, their steps) sit in the one registry like the first ones,
    registered by mlwf_nb itself, not a second time through setup.cfg's entry points."""
    import configparser
    import importlib
    from pathlib import Path

    from mlwf_nb.steps.registry import _BUILTIN_MODULES

    for name in _builtin_modules("mlwf_nb.pipelines"):
        module = importlib.import_module(f"mlwf_nb.pipelines.{name}")
        if hasattr(module, "PIPELINE"):
            assert PIPELINES.get(module.PIPELINE.name) is module.PIPELINE, name
    assert {"masks", "sweep"} <= set(PIPELINES.names())
    assert "centernet" in MODELS.names()
    step_modules = {f"mlwf_nb.steps.{m}" for m in _builtin_modules("mlwf_nb.steps") if m != "registry"}
    assert step_modules == set(_BUILTIN_MODULES), "a steps module the STEPS registry does not import"
    assert {"train-samples", "evaluate-masks", "notebook", "sweep-collect"} <= set(STEPS.names())
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    for group, value in cfg["options.entry_points"].items():
        if group.startswith("mlwf_nb."):
            assert "mlwf_nb." not in value, f"setup.cfg registers built-ins of {group} a second time: {value}"
