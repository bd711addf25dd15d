"""YAML as the toolkit reads it: the safe loader, and a key given twice in one mapping is an error.

PyYAML's safe loader keeps the last of two equal keys without a word, so a spec or
``dataset.yaml`` that sets ``train.epochs`` twice silently loses the first value.
:func:`safe_load` raises a ``yaml.constructor.ConstructorError`` (a ``yaml.YAMLError``)
naming the key and the line of both, which callers turn into their own typed error.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

__all__ = ["safe_load"]


class _UniqueKeySafeLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys."""


def _mapping(loader: _UniqueKeySafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the safe constructor reports it below
            continue
        if first is not None:
            raise ConstructorError(None, None, f"key {key!r} is given twice (first on line "
                                   f"{first.start_mark.line + 1}); keep one of them", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeySafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def safe_load(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, but a key given twice in one mapping raises ``ConstructorError``."""
    return yaml.load(text, Loader=_UniqueKeySafeLoader)  # a SafeLoader subclass: no Python objects
