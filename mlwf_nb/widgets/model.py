"""SpecModel: the one RunSpec every widget of a Studio edits.

The model holds the spec in a trait; widgets call :meth:`SpecModel.set` with a
key path and a value. A bad value does not raise: the spec stays as it was and
``error`` names the problem, so a widget can show it in place.
"""

from __future__ import annotations

from typing import Any

import traitlets

from mlwf_nb.errors import SpecError
from mlwf_nb.spec import RunSpec

__all__ = ["SpecModel"]


class SpecModel(traitlets.HasTraits):
    """A RunSpec held in a trait, edited through validated overrides.

    Attributes:
        spec: The current, always valid, RunSpec.
        error: The message of the last rejected edit ("" after a good one).
        errors: Rejected edits by key path (cleared per key when that key is set well).
    """

    spec = traitlets.Instance(RunSpec)
    error = traitlets.Unicode("")
    errors = traitlets.Dict()

    def __init__(self, spec: RunSpec | str | None = None, **kwargs: Any) -> None:
        if spec is None or isinstance(spec, str):
            from mlwf_nb.pipelines import preset_spec

            spec = preset_spec(spec or "tiny")  # "tiny" or a pipeline's own, "galaxy:tiny"
        super().__init__(spec=spec, **kwargs)

    def get(self, key_path: str) -> Any:
        """The value at ``key_path`` in the current spec."""
        return self.spec.get(key_path)

    def set(self, key_path: str, value: Any) -> bool:
        """Apply one override; returns whether it was accepted."""
        return self.update({key_path: value})

    def update(self, overrides: dict[str, Any]) -> bool:
        """Apply several overrides at once (all or none); returns whether they were accepted."""
        keys = list(overrides)
        try:
            new = self.spec.with_overrides(dict(overrides))
        except SpecError as err:
            self.error = str(err)
            self.errors = {**self.errors, **{k: str(err) for k in keys}}
            return False
        self.errors = {k: v for k, v in self.errors.items() if k not in keys}
        self.error = ""
        if new != self.spec:
            self.spec = new
        return True

    def replace(self, spec: RunSpec) -> None:
        """Swap in a whole new spec (e.g. loaded from a file or a preset)."""
        self.errors = {}
        self.error = ""
        self.spec = spec
