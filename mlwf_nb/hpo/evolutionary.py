"""An evolutionary search oracle for keras-tuner: generations are workflow rounds.

Generation 0 is ``population_size`` random points. Every later trial is a child:
two parents are picked by tournament (the best of ``tournament_size`` random
members of the parent pool), their values are mixed by uniform crossover (with
probability ``crossover_rate``), then each value mutates with probability
``mutation_rate``: a number moves by a gaussian step of standard deviation
``mutation_scale`` in keras-tuner's unit interval for that parameter — which is
log space for ``sampling="log"`` and linear space otherwise — and a choice is
resampled among its other values. A child that repeats an earlier trial is
mutated again (up to keras-tuner's collision limit), then replaced by a random
point.

The parent pool of generation g+1 is generation g's completed trials plus the
``elitism`` best completed trials of all earlier generations (elites carry over
without being trained again). If nothing completed yet, children are random.

All state is in :meth:`get_state` (JSON); draws come from a numpy generator
seeded by ``(seed, seed_state)``, so a reloaded oracle proposes exactly what the
original would have.
"""

from __future__ import annotations

from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hp_module

__all__ = ["EvolutionaryOracle"]


class EvolutionaryOracle(keras_tuner.Oracle):
    """Tournament selection, uniform crossover, gaussian/resample mutation, elitism.

    Args:
        population_size: Trials per generation (the round size K).
        tournament_size: Members compared in one tournament.
        mutation_rate: Probability that one value mutates.
        mutation_scale: Standard deviation of a numeric mutation, in the unit interval.
        crossover_rate: Probability that a child mixes two parents (else copies one).
        elitism: Best completed trials carried into every parent pool.
        **kwargs: Passed to ``keras_tuner.Oracle`` (objective, max_trials, seed, ...).
    """

    def __init__(self, population_size: int = 8, tournament_size: int = 2,
                 mutation_rate: float = 0.5, mutation_scale: float = 0.15,
                 crossover_rate: float = 0.5, elitism: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if population_size < 1 or tournament_size < 1 or elitism < 0:
            raise ValueError("population_size and tournament_size must be >= 1, elitism >= 0")
        if not (0.0 <= mutation_rate <= 1.0 and 0.0 <= crossover_rate <= 1.0 and mutation_scale > 0):
            raise ValueError("mutation_rate and crossover_rate must be in [0, 1], mutation_scale > 0")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.mutation_rate = mutation_rate
        self.mutation_scale = mutation_scale
        self.crossover_rate = crossover_rate
        self.elitism = elitism
        self.generations: list[list[str]] = []

    # -- proposing -------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Propose generation-0 random values, or a child of the parent pool."""
        if not self.generations or len(self.generations[-1]) >= self.population_size:
            self.generations.append([])
        generation = len(self.generations) - 1
        pool = self._parent_pool(generation)
        values = self._child(pool) if pool else None
        if values is None:
            values = self._random_values()
        if values is None:
            return {"status": "STOPPED", "values": None}
        self.generations[-1].append(trial_id)
        return {"status": "RUNNING", "values": values}

    def _parent_pool(self, generation: int) -> list[keras_tuner.engine.trial.Trial]:
        if generation == 0:
            return []
        previous = [self.trials[t] for t in self.generations[generation - 1]]
        earlier = [self.trials[t] for g in self.generations[: generation - 1] for t in g]
        pool = [t for t in previous if t.status == "COMPLETED"]
        elites = self._ranked([t for t in earlier if t.status == "COMPLETED"])[: self.elitism]
        return pool + [t for t in elites if t not in pool]

    def _ranked(self, trials: list[Any]) -> list[Any]:
        return sorted(trials, key=lambda t: t.score, reverse=self.objective.direction == "max")

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([int(self.seed), int(self._seed_state)])
        self._seed_state += 1
        return rng

    def _tournament(self, pool: list[Any], rng: np.random.Generator) -> Any:
        size = min(self.tournament_size, len(pool))
        picks = [pool[i] for i in rng.choice(len(pool), size=size, replace=False)]
        return self._ranked(picks)[0]

    def _child(self, pool: list[Any]) -> dict[str, Any] | None:
        rng = self._rng()
        first = dict(self._tournament(pool, rng).hyperparameters.values)
        second = dict(self._tournament(pool, rng).hyperparameters.values)
        if rng.random() < self.crossover_rate:
            values = {k: (second.get(k, v) if rng.random() < 0.5 else v) for k, v in first.items()}
        else:
            values = first
        for _ in range(self._max_collisions + 1):
            candidate = self._mutate(values, rng)
            if not self._duplicate(candidate):
                return candidate
            values = candidate
        return None

    def _mutate(self, values: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        out = dict(values)
        space = [hp for hp in self.hyperparameters.space if not isinstance(hp, hp_module.Fixed)]
        if not space:
            return out
        changed = False
        for hp in space:
            if rng.random() < self.mutation_rate:
                out[hp.name] = self._mutate_one(hp, out.get(hp.name, hp.default), rng)
                changed = True
        if not changed:  # always change something, or the child repeats its parent
            hp = space[int(rng.integers(len(space)))]
            out[hp.name] = self._mutate_one(hp, out.get(hp.name, hp.default), rng)
        return out

    def _mutate_one(self, hp: Any, value: Any, rng: np.random.Generator) -> Any:
        if isinstance(hp, (hp_module.Choice, hp_module.Boolean)):
            others = [v for v in hp.values if v != value] or list(hp.values)
            return others[int(rng.integers(len(others)))]
        prob = float(hp.value_to_prob(value)) + float(rng.normal(0.0, self.mutation_scale))
        return hp.prob_to_value(min(max(prob, 0.0), 1.0 - 1e-9))

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Base oracle state plus the evolutionary settings and the generations."""
        state: dict[str, Any] = super().get_state()
        state.update({
            "population_size": self.population_size, "tournament_size": self.tournament_size,
            "mutation_rate": self.mutation_rate, "mutation_scale": self.mutation_scale,
            "crossover_rate": self.crossover_rate, "elitism": self.elitism,
            "generations": [list(g) for g in self.generations],
        })
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` saved."""
        super().set_state(state)
        for key in ("population_size", "tournament_size", "mutation_rate", "mutation_scale",
                    "crossover_rate", "elitism"):
            setattr(self, key, state[key])
        self.generations = [list(g) for g in state["generations"]]
