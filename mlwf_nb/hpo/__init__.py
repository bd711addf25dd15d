"""Hyper-parameter search as workflow rounds: search spaces, oracles, rounds, leaderboard.

"What to try" apart from "how to run it": nothing here imports Pegasus or
trains a model. The workflow runs ``hpo-propose[r] -> trial[r, 1..K] ->
hpo-propose[r+1] -> ... -> hpo-select`` (see :mod:`mlwf_nb.steps.hpo`), and these
functions decide what each trial tries.

Names are loaded on first use, because keras-tuner imports TensorFlow (seconds).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    # space
    "build_hyperparameters", "apply_hp", "validate_space",
    # oracles
    "make_oracle", "STRATEGIES", "Strategy", "register_strategy", "EvolutionaryOracle",
    # rounds
    "RoundPlan", "round_plans", "plan_rounds", "propose", "select", "state_path",
    # objective, leaderboard
    "analytic_objective", "optimum", "load_results", "rank_results", "best_result",
]

_WHERE = {
    "build_hyperparameters": "space", "apply_hp": "space", "validate_space": "space",
    "make_oracle": "oracles", "STRATEGIES": "strategies", "Strategy": "strategies",
    "register_strategy": "strategies", "EvolutionaryOracle": "evolutionary",
    "RoundPlan": "rounds", "round_plans": "rounds", "plan_rounds": "rounds", "propose": "rounds",
    "select": "rounds", "state_path": "rounds",
    "analytic_objective": "objective", "optimum": "objective",
    "load_results": "leaderboard", "rank_results": "leaderboard", "best_result": "leaderboard",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mlwf_nb.hpo' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mlwf_nb.hpo.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
