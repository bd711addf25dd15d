"""How a spec section is declared and checked: bounded fields, type-driven checks, YAML.

Every section is a dataclass whose fields come from :func:`_f` (a default, bounds and
a one-line description). :func:`build` turns plain data into a section and checks it
against the type hints and bounds: unknown keys, wrong types and out-of-range values
raise :class:`SpecError` naming the key path (``train.epochs``) and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import field
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from mlwf_nb.errors import SpecError

__all__ = ["option", "build", "field_names", "known", "set_path", "check_value", "parse_override"]

T = TypeVar("T")


def option(default: Any, *, lo: float | None = None, hi: float | None = None,
       doc: str = "", lo_open: bool = False) -> Any:
    """A dataclass field with bounds and a one-line description."""
    meta = {"lo": lo, "hi": hi, "doc": doc, "lo_open": lo_open}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value``; the value is parsed as YAML (safe loader)."""
    if "=" not in text:
        raise SpecError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise SpecError(f"override {key!r}: value {raw!r} is not valid YAML") from err
    return key.strip(), value



def field_names(cls: type) -> list[str]:
    """Field names of a section dataclass, in order."""
    return [f.name for f in dataclasses.fields(cls)]


def known(node: Any, part: str) -> str:
    """The 'unknown key' explanation for ``part`` inside ``node``."""
    if dataclasses.is_dataclass(node):
        return f"{part!r} is not a key here; known keys: {', '.join(field_names(type(node)))}"
    return f"{part!r} cannot be addressed inside a {type(node).__name__}"


def set_path(data: dict[str, Any], key: str, value: Any, cls: type) -> None:
    """Set ``key`` (a dotted path) in plain ``data`` shaped like section ``cls``; unknown keys raise."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        names = field_names(cls)
        if part not in names:
            raise SpecError(f"unknown key {path!r}; known keys here: {', '.join(names)}")
        hint = typing.get_type_hints(cls)[part]
        if depth == len(parts) - 1:
            node[part] = value
            return
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise SpecError(f"{path!r} is a value, not a section; cannot set {key!r}")
        node = node.setdefault(part, {})
        cls = hint


def check_value(cls: type, key: str, value: Any) -> Any:
    """Check ``value`` for the dotted ``key`` of section ``cls`` (type and bounds) without building anything."""
    *parents, leaf = key.split(".")
    for part in parents:
        cls = typing.get_type_hints(cls)[part]
    f = next(f for f in dataclasses.fields(cls) if f.name == leaf)
    return _check(typing.get_type_hints(cls)[leaf], value, key, f.metadata)


def build(cls: type[T], data: Any, where: str) -> T:
    """Check plain ``data`` against section ``cls`` (missing keys take defaults) and build it."""
    if not isinstance(data, dict):
        raise SpecError(f"{where or 'spec'} must be a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise SpecError(f"unknown key {_join(where, str(unknown[0]))!r}; "
                        f"known keys{' in ' + where if where else ''}: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _check(hints[f.name], data[f.name], _join(where, f.name), f.metadata)
    return cls(**kwargs)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _check(hint: Any, value: Any, where: str, meta: Any) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _check(inner[0], value, where, meta)
        for alt in inner:
            try:
                return _check(alt, value, where, meta)
            except SpecError:
                continue
        raise SpecError(f"{where} must be {' or '.join(_describe(a) for a in args)}; got {value!r}")
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise SpecError(f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise SpecError(f"{where} must be a mapping of names to values, got {type(value).__name__} {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise SpecError(f"{where} must be a list, got {type(value).__name__} {value!r}")
        (item,) = get_args(hint)
        return [_check(item, v, f"{where}[{i}]", {}) for i, v in enumerate(value)]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where} must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, str):
            value = _yaml11_float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise SpecError(f"{where} must be a string, got {value!r}")
        return value
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = ">" if meta.get("lo_open") else ">="
        raise SpecError(f"{where} must be {op} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
                        + f", got {value!r}")
    if hi is not None and value > hi:
        raise SpecError(f"{where} must be <= {hi:g}, got {value!r}")
    return value


def _describe(hint: Any) -> str:
    """What a value of type ``hint`` looks like, for error messages."""
    if get_origin(hint) is Literal:
        return " or ".join(map(repr, get_args(hint)))
    return {type(None): "null", bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, "a list" if get_origin(hint) is list else getattr(hint, "__name__", str(hint)))


def _yaml11_float(text: str) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; accept it as the number it means."""
    try:
        return float(text) if text.strip().lower() not in ("nan", "inf", "-inf", "+inf") else text
    except ValueError:
        return text


