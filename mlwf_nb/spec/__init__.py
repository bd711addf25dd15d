"""RunSpec: one validated, YAML-round-trippable description of a run (+ presets).

``run`` holds the RunSpec and its loading, ``sections`` the section dataclasses,
``presets`` the built-in presets and ``_schema`` the type-driven checks they share.
"""

from mlwf_nb.spec._schema import parse_override
from mlwf_nb.spec.presets import PRESETS
from mlwf_nb.spec.run import SPEC_VERSION, RunSpec, load_spec
from mlwf_nb.spec.sections import (
                                   AugmentSpec,
                                   DatasetSpec,
                                   EvaluateSpec,
                                   ExecutionSpec,
                                   HPOParam,
                                   HPOSpec,
                                   ModelSpec,
                                   PatchSpec,
                                   SplitSpec,
                                   StretchSpec,
                                   SweepParam,
                                   SweepSpec,
                                   TrainSpec,
)

__all__ = [
    "RunSpec", "DatasetSpec", "SplitSpec", "StretchSpec", "PatchSpec", "AugmentSpec",
    "ModelSpec", "TrainSpec", "EvaluateSpec", "HPOParam", "HPOSpec", "ExecutionSpec", "SweepParam", "SweepSpec",
    "PRESETS", "SPEC_VERSION", "load_spec", "parse_override",
]
