"""The step registry: declared units of work that become Pegasus jobs.

A step is a plain function in an importable module, declared with :func:`step`.
Its parameters say what the job needs::

    @step("fit-stretch", outputs=("params",))
    def fit_stretch(spec: RunSpec, split: Path, images: list[Path], params: Path,
                    source: str = "all") -> None: ...

* a parameter annotated ``RunSpec`` receives the run's spec (the job reads ``spec.yaml``);
* parameters annotated ``Path`` or ``list[Path]`` are files: outputs when named in
  ``outputs`` (or ``checkpoints``), inputs otherwise;
* every other parameter (``str``, ``int``, ``float``, ``bool``, ``list[str]``) is a plain value.

Files reach a step only as arguments: a job runs in a flat sandbox on an HTCondor pool
(condorio), holding its declared files and nothing else, so a step never looks for a
file beside another one (DESIGN.md, "Files inside a job: a flat sandbox").

From the declaration the workflow builder makes the Pegasus job (files, arguments,
dependencies) and ``mlwf step NAME`` makes the command line; nothing else knows the
list of steps. Steps defined in ``__main__`` (a notebook cell, a script) are refused:
a Pegasus job must be able to import them.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlwf_nb.errors import StepError
from mlwf_nb.registry import Registry, load_target

__all__ = ["StepDef", "STEPS", "step", "get_step", "available_steps", "run_step", "FILE", "FILES"]

FILE = "file"
FILES = "files"
_BUILTIN_MODULES = ("mlwf_nb.steps.checks", "mlwf_nb.steps.landcover", "mlwf_nb.steps.landcover_eval",
                    "mlwf_nb.steps.hpo", "mlwf_nb.steps.samples", "mlwf_nb.steps.galaxy", "mlwf_nb.steps.lung",
                    "mlwf_nb.steps.masks", "mlwf_nb.steps.notebook")
STEPS: Registry[StepDef] = Registry(
    "step", "mlwf_nb.steps", error=StepError, modules=_BUILTIN_MODULES,
    check=lambda name, obj: _check_step(name, obj),
    hint="declare steps with @mlwf_nb.steps.step in an importable module, or list them in the mlwf_nb.steps "
         "entry-point group")


@dataclasses.dataclass(frozen=True)
class StepDef:
    """A declared step: its function and what each parameter is."""

    name: str
    func: Callable[..., Any]
    files: dict[str, str]              # parameter -> FILE | FILES
    outputs: tuple[str, ...]
    checkpoints: tuple[str, ...]
    values: dict[str, type]            # plain parameters and their types (``list`` for list[str])
    spec_param: str | None
    resources: dict[str, Any]
    doc: str
    warm: bool = False                 # imports Keras/TensorFlow: the local backend forks it from a warm worker
    runs_model: bool = False           # trains or runs a model: gets execution.cores/memory_mb/gpus (catalogs)

    @property
    def transformation(self) -> str:
        """Pegasus transformation name (job names read ``<transformation>_<id>``)."""
        return self.name.replace("-", "_")

    @property
    def reference(self) -> str:
        """``module:function``, how a job imports the step."""
        return f"{self.func.__module__}:{self.func.__qualname__}"

    @property
    def command_name(self) -> str:
        """What ``mlwf step`` is given: the name for built-in steps, ``module:function`` otherwise."""
        return self.name if self.func.__module__ in _BUILTIN_MODULES else self.reference

    def inputs(self) -> list[str]:
        """Names of the input-file parameters."""
        return [p for p in self.files if p not in self.outputs and p not in self.checkpoints]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the step function directly (tests, notebooks)."""
        return self.func(*args, **kwargs)


def step(name: str | None = None, *, outputs: Sequence[str] = (), checkpoints: Sequence[str] = (),
         cores: int | None = None, memory_mb: int | None = None, gpus: int | None = None,
         replace: bool = False, warm: bool = False,
         runs_model: bool = False) -> Callable[[Callable[..., Any]], StepDef]:
    """Declare a function as a workflow step (see the module docstring).

    ``warm=True`` marks a step that imports Keras/TensorFlow (seconds per process): the
    local backend then forks its jobs from a worker that has those modules loaded
    (:mod:`mlwf_nb.backends._warm`) instead of starting a fresh interpreter each time.
    ``runs_model=True`` marks a step that trains or runs a model: on a cluster it asks for
    ``execution.cores``, ``memory_mb`` and ``gpus``; every other step for one core and no GPU
    (:func:`mlwf_nb.catalogs.resource_profiles`). ``cores``/``memory_mb``/``gpus`` override both.
    """

    def deco(func: Callable[..., Any]) -> StepDef:
        if func.__module__ == "__main__" or "<" in func.__qualname__:
            raise StepError(
                f"step {name or func.__name__!r} is defined in {func.__module__!r} "
                f"({func.__qualname__}); Pegasus jobs must import steps, so move it into a module "
                "file (e.g. my_steps.py next to the notebook) and import it from there")
        sdef = _describe(name or func.__name__.replace("_", "-"), func, tuple(outputs), tuple(checkpoints),
                         {"cores": cores, "memory_mb": memory_mb, "gpus": gpus}, warm, runs_model)
        old = STEPS.get(sdef.name) if STEPS.loaded(sdef.name) else None
        if old is not None and old.reference != sdef.reference and not replace:
            raise StepError(f"step name {sdef.name!r} is already taken by {old.reference}; "
                            "choose another name or pass replace=True")
        STEPS.register(sdef.name, sdef)
        return sdef

    return deco


def _describe(name: str, func: Callable[..., Any], outputs: tuple[str, ...],
              checkpoints: tuple[str, ...], resources: dict[str, Any], warm: bool = False,
              runs_model: bool = False) -> StepDef:
    hints = typing.get_type_hints(func)
    files: dict[str, str] = {}
    values: dict[str, type] = {}
    spec_param = None
    for pname in inspect.signature(func).parameters:
        hint = hints.get(pname, str)
        if getattr(hint, "__name__", "") == "RunSpec":
            spec_param = pname
        elif hint is Path:
            files[pname] = FILE
        elif typing.get_origin(hint) is list and typing.get_args(hint) == (Path,):
            files[pname] = FILES
        elif hint in (str, int, float, bool):
            values[pname] = hint
        elif typing.get_origin(hint) is list and typing.get_args(hint) == (str,):
            values[pname] = list
        else:
            raise StepError(f"step {name!r}: parameter {pname!r} has type {hint!r}; steps take "
                            "RunSpec, Path, list[Path], str, int, float, bool or list[str]")
    for out in (*outputs, *checkpoints):
        if out not in files:
            raise StepError(f"step {name!r}: output {out!r} must be a Path or list[Path] parameter")
    return StepDef(name, func, files, outputs, checkpoints, values, spec_param,
                   {k: v for k, v in resources.items() if v is not None},
                   inspect.getdoc(func) or "", warm, runs_model)


def _check_step(name: str, obj: Any) -> StepDef:
    if not isinstance(obj, StepDef):
        raise StepError(f"step {name!r}: {obj!r} is not a step (declare it with @mlwf_nb.steps.step)")
    return obj


def get_step(name: str) -> StepDef:
    """Find a step by name, or by ``module:function`` reference (imports the module).

    Raises:
        StepError: an unknown name (the message lists the registered steps), or a reference
            whose module cannot be imported.
    """
    if ":" in name and name not in STEPS:
        return _check_step(name, load_target(name, error=StepError, what=f"step {name!r}"))
    return STEPS.get(name)


def available_steps() -> list[str]:
    """Names of the registered steps (built-ins and installed packages' included)."""
    return STEPS.names()


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(sdef: StepDef) -> argparse.ArgumentParser:
    """An argparse parser for ``mlwf step NAME`` built from the declaration."""
    parser = argparse.ArgumentParser(prog=f"mlwf step {sdef.name}", description=sdef.doc.split("\n")[0])
    if sdef.spec_param:
        parser.add_argument("--spec", required=True, type=Path, help="the run's spec.yaml")
    for pname, kind in sdef.files.items():
        flag = "--" + pname.replace("_", "-")
        if kind == FILES:
            parser.add_argument(flag, dest=pname, nargs="*", type=Path, default=[])
        else:
            parser.add_argument(flag, dest=pname, type=Path, required=True)
    sig = inspect.signature(sdef.func)
    for pname, typ in sdef.values.items():
        default = sig.parameters[pname].default
        if typ is list:
            parser.add_argument("--" + pname.replace("_", "-"), dest=pname, nargs="*", type=str,
                                default=[] if default is inspect.Parameter.empty else list(default))
            continue
        conv: Callable[[str], Any] = _parse_bool if typ is bool else typ
        parser.add_argument("--" + pname.replace("_", "-"), dest=pname, type=conv,
                            required=default is inspect.Parameter.empty,
                            default=None if default is inspect.Parameter.empty else default)
    return parser


RESERVED_OPTIONS = ("--mlwf-events", "--mlwf-job")
"""``mlwf step`` options of every step: the job's events file and id (Pegasus jobs get them as arguments)."""


def _reserved(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Take ``--mlwf-events F`` / ``--mlwf-job ID`` out of ``argv``; the rest and the values found."""
    rest, found = [], {}
    items = iter(argv)
    for arg in items:
        if arg in RESERVED_OPTIONS:
            found[arg] = next(items, "")
        else:
            rest.append(arg)
    return rest, found


def run_step(name: str, argv: Sequence[str]) -> Any:
    """Parse ``argv`` for step ``name`` and call it (what a Pegasus job runs).

    ``--mlwf-events FILE`` and ``--mlwf-job ID`` (any step) set where its events go
    (``$MLWF_EVENTS``, ``$MLWF_JOB``): a Pegasus job gets them as arguments, which clustering keeps.
    """
    sdef = get_step(name)
    argv, reserved = _reserved(argv)
    args = vars(build_parser(sdef).parse_args(argv))
    for option, variable in zip(RESERVED_OPTIONS, ("MLWF_EVENTS", "MLWF_JOB"), strict=True):
        if reserved.get(option):
            os.environ[variable] = reserved[option]
    events = os.environ.get("MLWF_EVENTS")
    if events:  # a declared output under condorio: it must exist even if the step emits nothing
        Path(events).parent.mkdir(parents=True, exist_ok=True)
        Path(events).touch()
    if sdef.spec_param:
        from mlwf_nb.spec import load_spec

        args[sdef.spec_param] = load_spec(args.pop("spec"))
    for out in (*sdef.outputs, *sdef.checkpoints):
        targets = args[out] if isinstance(args[out], list) else [args[out]]
        for target in targets:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
    return sdef.func(**args)
