"""An HPO strategy defined outside mlwf_nb, as a researcher would: one class, registered through the registry.

``centre-first`` tries the middle of the space alone in a round of its own, then random
points K at a time. The tests install it through the ``mlwf_nb.hpo_strategies``
entry-point group (a ``.dist-info`` folder on the path), so the workflow's jobs find it
by name, as they would an installed package's strategy.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner

from mlwf_nb.hpo.strategies import RoundPlan, Strategy, register_strategy


class CentreFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is the point ``centre`` of the unit cube (0.5: the middle)."""

    def __init__(self, centre: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.centre = centre

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The centre for the search's first trial, random values after it."""
        if not self.trials:
            values = {hp.name: hp.prob_to_value(self.centre) for hp in self.hyperparameters.space}
            return {"status": "RUNNING", "values": values}
        return super().populate_space(trial_id)


@register_strategy
class CentreFirstStrategy(Strategy):
    """The middle of the space alone first, then random rounds of K."""

    name = "centre-first"
    description = "the middle of the space first, then random points K at a time"
    options = {"centre": 0.5}
    oracle = "tests.hpo.centre_first:CentreFirstOracle"

    def rounds(self) -> list[RoundPlan]:
        """A round of one (the centre), then rounds of K until ``hpo.trials``."""
        rest, k = self.trial_budget() - 1, int(self.hpo.parallel)
        return [RoundPlan(0, 1), *(RoundPlan(i + 1, min(k, rest - i * k)) for i in range(math.ceil(rest / k)))]

    def oracle_options(self) -> dict[str, Any]:
        """The centre, as a point of keras-tuner's unit cube."""
        return {"centre": float(self.opts["centre"])}
