"""Validate the run directory's Pegasus files against the official Pegasus 5 schemas.

The schemas (``wf-5.0.yml``, ``rc-5.0.yml``, ``tc-5.0.yml``, ``sc-5.0.yml`` and
``common.yml``, draft-07 JSON Schema written in YAML) are not bundled: they are
found in ``$MLWF_PEGASUS_SCHEMAS`` or in ``<repo>/../shared/pegasus/schema``.
References between them are relative (``common.yml#/$defs/...``); each schema
gets a ``file://`` base URI inside that folder so ``referencing`` resolves them
without any network access.

Pegasus writes YAML 1.1. A plain safe loader would turn ``yes``/``no``/``on``/
``off`` into booleans and ``2020-12-15T10:38:07Z`` into a ``datetime``, neither
of which the schemas accept where a string is meant; :func:`load_yaml` keeps
both as strings, as Pegasus's own reader does. We always write the site
catalog as its own ``sites.yml`` (never inline in ``workflow.yml``): the
workflow schema points an inline ``siteCatalog`` at the top of ``sc-5.0.yml``,
which requires a ``pegasus:`` key that the Python API leaves out.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from mlwf_nb.errors import WorkflowError

__all__ = [
    "ENV_SCHEMAS",
    "SCHEMA_FILES",
    "RUN_DIR_FILES",
    "schema_dir",
    "load_yaml",
    "loads_yaml",
    "validate_data",
    "validate_file",
    "validate_run_dir",
]

ENV_SCHEMAS = "MLWF_PEGASUS_SCHEMAS"
SCHEMA_FILES: dict[str, str] = {
    "workflow": "wf-5.0.yml",
    "replicas": "rc-5.0.yml",
    "transformations": "tc-5.0.yml",
    "sites": "sc-5.0.yml",
}
#: file name of each catalog inside a run directory
RUN_DIR_FILES: dict[str, str] = {
    "workflow": "workflow.yml",
    "replicas": "replicas.yml",
    "transformations": "transformations.yml",
    "sites": "sites.yml",
}
_MAX_REPORTED = 5


class _PegasusSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads YAML 1.1 the way Pegasus does.

    Only ``true``/``false`` become booleans and timestamps stay strings; no
    Python object tags are ever constructed (it is still the safe loader).
    """


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    return {"true": True, "false": False}.get(str(value).lower(), value)


_PegasusSafeLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_PegasusSafeLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                   yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:str"])


def loads_yaml(text: str) -> Any:
    """Parse Pegasus YAML text (see :func:`load_yaml`); raises ``yaml.YAMLError`` on bad input."""
    return yaml.load(text, Loader=_PegasusSafeLoader)  # a SafeLoader subclass: safe


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Load a Pegasus YAML file (safe loader; YAML 1.1 booleans/dates kept as Pegasus reads them).

    Raises:
        WorkflowError: the file is missing or is not valid YAML.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise WorkflowError(f"{p}: file not found; write the workflow and catalogs first") from err
    try:
        return loads_yaml(text)
    except yaml.YAMLError as err:
        raise WorkflowError(f"{p}: not valid YAML: {err}") from err


def schema_dir() -> Path:
    """The folder holding the official Pegasus 5 schemas.

    ``$MLWF_PEGASUS_SCHEMAS`` when set (and then only there), else ``<repo>/../shared/pegasus/schema``.

    Raises:
        WorkflowError: neither holds ``wf-5.0.yml``; the message says where to put them.
    """
    env = os.environ.get(ENV_SCHEMAS)
    repo = Path(__file__).resolve().parent.parent
    candidates = [Path(env)] if env else [repo.parent / "shared" / "pegasus" / "schema"]
    for cand in candidates:
        if (cand / SCHEMA_FILES["workflow"]).is_file():
            return cand
    looked = ", ".join(str(c) for c in candidates)
    raise WorkflowError(
        f"Pegasus 5 schemas not found (looked in {looked}); copy wf-5.0.yml, rc-5.0.yml, tc-5.0.yml, "
        f"sc-5.0.yml and common.yml from github.com/pegasus-isi/pegasus (share/pegasus/schema) into "
        f"one folder and set {ENV_SCHEMAS} to it")


@functools.lru_cache(maxsize=8)
def _validator(folder: str, kind: str) -> Any:
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    base = Path(folder)
    resources = []
    for yml in sorted(base.glob("*.yml")):
        contents = load_yaml(yml)
        if isinstance(contents, dict):
            resources.append((yml.resolve().as_uri(),
                              Resource.from_contents(contents, default_specification=DRAFT7)))
    registry: Registry[Any] = Registry().with_resources(resources)
    path = base / SCHEMA_FILES[kind]
    schema = dict(load_yaml(path))
    schema["$id"] = path.resolve().as_uri()
    return Draft7Validator(schema, registry=registry)


def _check_kind(kind: str) -> None:
    if kind not in SCHEMA_FILES:
        raise WorkflowError(f"unknown catalog kind {kind!r}; expected one of {sorted(SCHEMA_FILES)}")


def validate_data(data: Any, kind: str, *, source: str = "<data>") -> None:
    """Validate already-loaded catalog data against the schema for ``kind``.

    Args:
        data: the loaded YAML/JSON document.
        kind: one of ``workflow``, ``replicas``, ``transformations``, ``sites``.
        source: a name for the document used in error messages (usually its path).

    Raises:
        WorkflowError: the document violates the schema; lists the first violations with JSON paths.
    """
    _check_kind(kind)
    validator = _validator(str(schema_dir()), kind)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = [f"  {e.json_path}: {e.message[:300]}" for e in errors[:_MAX_REPORTED]]
    more = f"\n  ... and {len(errors) - _MAX_REPORTED} more" if len(errors) > _MAX_REPORTED else ""
    raise WorkflowError(f"{source}: {len(errors)} violation(s) of the Pegasus schema "
                        f"{SCHEMA_FILES[kind]}:\n" + "\n".join(lines) + more
                        + "\nfix the file (or the code that wrote it) and validate again")


def validate_file(path: str | os.PathLike[str], kind: str) -> None:
    """Validate one Pegasus YAML file (workflow, replicas, transformations or sites).

    Raises:
        WorkflowError: the file is missing, not YAML, or violates the schema.
    """
    _check_kind(kind)
    validate_data(load_yaml(path), kind, source=str(path))


def validate_run_dir(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Validate the four catalogs of a run directory; return the files checked.

    Raises:
        WorkflowError: a file is missing or invalid (the first one found).
    """
    base = Path(run_dir)
    checked = []
    for kind, name in RUN_DIR_FILES.items():
        path = base / name
        validate_file(path, kind)
        checked.append(path)
    return checked
