"""HPO strategies: one class each, owning its round plan, its options and its oracle; one registry.

A search is unrolled into rounds of the static workflow (:mod:`mlwf_nb.hpo.rounds`).
What differs between strategies is said in one place, a :class:`Strategy` subclass:

* :attr:`Strategy.options`: the options ``hpo.options`` may set, with their defaults
  (an option the strategy does not take is an :class:`~mlwf_nb.errors.HPOError`);
* :meth:`Strategy.rounds`: how many trials each round has (fixed from the spec alone,
  so the workflow builder knows the DAG), by default rounds of ``hpo.parallel`` (K)
  until ``hpo.trials``;
* :meth:`Strategy.make_oracle`: the keras-tuner oracle that proposes the trials (driven
  from outside a tuner, state saved as JSON; :attr:`Strategy.oracle` names its class and
  :meth:`Strategy.oracle_options` what it is given besides keras-tuner's common arguments);
* :meth:`Strategy.before_round`: anything the oracle needs to know about the round
  it is about to fill (Hyperband's rung), by default nothing.

Adding a strategy touches one file plus its test::

    # my_search/annealing.py
    from mlwf_nb.hpo.strategies import Strategy, register_strategy

    @register_strategy
    class AnnealingStrategy(Strategy):
        name = "annealing"
        description = "simulated annealing, one chain per trial slot"
        options = {"temperature": 1.0}
        oracle = "my_search.annealing:AnnealingOracle"   # a keras_tuner.Oracle subclass

        def oracle_options(self):
            return {"temperature": float(self.opts["temperature"])}

and ``hpo.strategy=annealing`` works everywhere a strategy is chosen (spec, CLI, the
HPOConfigurator widget); an installed package lists it in the ``mlwf_nb.hpo_strategies``
entry-point group (``annealing = my_search.annealing:AnnealingStrategy``) instead of
importing it first. Nothing here imports Keras or keras-tuner until an oracle is made.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mlwf_nb.errors import HPOError
from mlwf_nb.registry import Registry, load_target
from mlwf_nb.spec import HPOSpec

if TYPE_CHECKING:
    import keras_tuner

__all__ = ["RoundPlan", "Strategy", "STRATEGIES", "register_strategy", "get_strategy", "strategy_names",
           "GridStrategy", "RandomStrategy", "BayesianStrategy", "HyperbandStrategy", "EvolutionaryStrategy"]

NO_SEARCH = "none"
_NEVER = 10**9  # keras-tuner's own failure limit is switched off: the workflow counts


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """One round of a search: how many trials, and (Hyperband) their epoch budget."""

    index: int
    size: int
    epochs: int | None = None
    initial_epoch: int = 0
    bracket: int | None = None
    rung: int | None = None
    iteration: int = 0


class Strategy:
    """How a search is laid out in rounds, and the oracle that fills them (see the module docstring).

    Args:
        hpo: the spec's ``hpo`` section (``strategy``, ``trials``, ``parallel``, ``options``, ...).
        max_epochs: the most epochs one model trains (the spec's ``train.epochs``).
        **options: options given in code; they override ``hpo.options``.

    Raises:
        HPOError: an option the strategy does not take.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Any]] = {}
    oracle: ClassVar[str] = ""
    """``"module:Class"`` of the keras-tuner oracle (imported when the first oracle is made)."""

    def __init__(self, hpo: HPOSpec, *, max_epochs: int | None = None, **options: Any) -> None:
        self.hpo = hpo
        self.max_epochs = max_epochs
        given = {**(getattr(hpo, "options", None) or {}), **options}
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            takes = ", ".join(f"{k} (default {v!r})" for k, v in self.options.items()) or "no options"
            raise HPOError(f"hpo.options: strategy {self.name!r} does not take {', '.join(unknown)}; "
                           f"it takes {takes}")
        self.opts: dict[str, Any] = {**self.options, **given}

    # -- the plan -----------------------------------------------------------------------------
    def trial_budget(self) -> int:
        """How many trials the search runs (``hpo.trials``)."""
        return int(self.hpo.trials)

    def rounds(self) -> list[RoundPlan]:
        """Every round, from the spec alone: rounds of K trials until the budget."""
        total, k = self.trial_budget(), int(self.hpo.parallel)
        return [RoundPlan(i, min(k, total - i * k)) for i in range(math.ceil(total / k))]

    # -- the oracle ---------------------------------------------------------------------------
    def oracle_options(self) -> dict[str, Any]:
        """Keyword arguments of the oracle besides keras-tuner's common ones (default: the options)."""
        return dict(self.opts)

    def takes_max_trials(self) -> bool:
        """Whether the oracle takes keras-tuner's ``max_trials`` (Hyperband has its own budget)."""
        return True

    def make_oracle(self, hps: keras_tuner.HyperParameters) -> keras_tuner.Oracle:
        """A quiet oracle over ``hps`` with keras-tuner's failure limit off.

        Raises:
            HPOError: the oracle refuses the options or the space.
        """
        import keras_tuner

        from mlwf_nb.hpo.oracles import kt_seed

        common: dict[str, Any] = {
            "objective": keras_tuner.Objective(self.hpo.objective, self.hpo.direction), "hyperparameters": hps,
            "seed": kt_seed(self.hpo.seed), "tune_new_entries": False, "allow_new_entries": False,
            "max_consecutive_failed_trials": _NEVER}
        if self.takes_max_trials():
            common["max_trials"] = self.hpo.trials
        cls = load_target(self.oracle, error=HPOError, what=f"strategy {self.name!r} oracle")
        kw = self.oracle_options()
        try:
            oracle = cls(**common, **kw)
        except (TypeError, ValueError) as err:
            raise HPOError(f"hpo.strategy {self.name!r} does not take these options {sorted(kw)}: {err}") from err
        oracle.verbose = 0
        return oracle

    def before_round(self, oracle: keras_tuner.Oracle, plan: RoundPlan | None) -> None:
        """Tell the oracle about the round it fills next (``None``: past the planned rounds)."""
        return None


def _check(name: str, obj: Any) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise HPOError(f"HPO strategy {name!r}: {obj!r} is not a subclass of mlwf_nb.hpo.strategies.Strategy")
    return obj


STRATEGIES: Registry[type[Strategy]] = Registry(
    "HPO strategy", "mlwf_nb.hpo_strategies", error=HPOError, check=_check, plural="HPO strategies",
    hint="set hpo.strategy to one of them or to none; add one with mlwf_nb.hpo.strategies.register_strategy "
         "or the mlwf_nb.hpo_strategies entry-point group")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Register a Strategy subclass under its ``name`` (usable as a class decorator)."""
    if not cls.name:
        raise HPOError(f"{cls.__qualname__} has no name; set the class attribute name = '...'")
    STRATEGIES.register(cls.name, _check(cls.name, cls))
    return cls


def strategy_names() -> list[str]:
    """``none`` and every registered strategy (what ``hpo.strategy`` may be)."""
    return [NO_SEARCH, *STRATEGIES.names()]


def get_strategy(hpo: HPOSpec, *, max_epochs: int | None = None, **options: Any) -> Strategy:
    """The strategy object of ``hpo.strategy``.

    Raises:
        HPOError: ``none`` (no search), an unknown name (the message lists them) or bad options.
    """
    if hpo.strategy == NO_SEARCH:
        raise HPOError("hpo.strategy is none: there is no search to plan")
    return STRATEGIES.get(hpo.strategy)(hpo, max_epochs=max_epochs, **options)


# -- the built-in strategies ------------------------------------------------------------------

class GridStrategy(Strategy):
    """Every combination (floats without a step count 10 values), in rounds of K, at most ``hpo.trials``."""

    name = "grid"
    description = "every grid point, K at a time"
    oracle = "mlwf_nb.hpo.oracles:RoundGridOracle"

    def trial_budget(self) -> int:
        """At most ``hpo.trials``, and no more than the grid has points."""
        from mlwf_nb.hpo.oracles import grid_size
        from mlwf_nb.hpo.space import build_hyperparameters

        return min(int(self.hpo.trials), grid_size(build_hyperparameters(self.hpo.space)))


class RandomStrategy(Strategy):
    """Independent random draws, K per round."""

    name = "random"
    description = "random search, K trials a round"
    oracle = "keras_tuner.oracles:RandomSearchOracle"


class BayesianStrategy(Strategy):
    """Gaussian-process Bayesian optimisation, batches of K with the running trials counted pessimistically."""

    name = "bayesian"
    description = "Gaussian-process Bayesian optimisation in batches of K"
    options = {"num_initial_points": None, "alpha": 1e-4, "beta": 2.6}
    oracle = "keras_tuner.oracles:BayesianOptimizationOracle"

    def oracle_options(self) -> dict[str, Any]:
        """``num_initial_points`` defaults to whole rounds of K (:func:`initial_points`)."""
        kw = dict(self.opts)
        if kw["num_initial_points"] is None:
            kw["num_initial_points"] = initial_points(self.hpo)
        return kw


def initial_points(hpo: HPOSpec) -> int:
    """Random trials before the Gaussian process takes over, in whole rounds.

    keras-tuner's default is ``max(3 * dimensions, 3)`` *completed* trials. In
    rounds a partial last random round would make the whole next round random
    too, so the default is rounded down to whole rounds of K (at least one).
    (Measured on the analytic objective, 3 dimensions, 12 trials, K=4, 3 seeds:
    8 random + 4 GP reached 0.952 mean best, 4 random + 8 GP only 0.865, and
    keras-tuner's sequential search 0.936.)
    """
    k = hpo.parallel
    n = max(3 * len(hpo.space), 3)
    return max(k, (n // k) * k)


class HyperbandStrategy(Strategy):
    """Hyperband's brackets and rungs as rounds, each with its epoch budget.

    Whole brackets are taken in Hyperband's order (repeating iterations) while they fit
    in ``hpo.trials``; if none fits, the one-rung bracket is cut to size.
    """

    name = "hyperband"
    description = "Hyperband: every rung of every bracket is a round with its epoch budget"
    options = {"factor": 3}
    oracle = "mlwf_nb.hpo.oracles:RoundHyperbandOracle"

    def _max_epochs(self) -> int:
        if self.max_epochs is None:
            raise HPOError("hyperband needs max_epochs (the spec's train.epochs): pass round_plans(spec) or "
                           "round_plans(spec.hpo, max_epochs=spec.train.epochs)")
        return int(self.max_epochs)

    def takes_max_trials(self) -> bool:
        """Hyperband has its own budget (the brackets)."""
        return False

    def oracle_options(self) -> dict[str, Any]:
        """``max_epochs`` and ``factor``."""
        return {"max_epochs": self._max_epochs(), "factor": int(self.opts["factor"])}

    def rounds(self) -> list[RoundPlan]:
        """Every rung of the brackets that fit in ``hpo.trials``, each with its epoch budget."""
        from mlwf_nb.hpo.oracles import hyperband_plan

        brackets = hyperband_plan(self._max_epochs(), int(self.opts["factor"]))
        budget = self.trial_budget()
        chosen: list[tuple[int, list[dict[str, int]]]] = []
        used, iteration = 0, 0
        while True:
            added = False
            for rungs in brackets:
                cost = sum(r["size"] for r in rungs)
                if used + cost <= budget:
                    chosen.append((iteration, rungs))
                    used += cost
                    added = True
            if not added:
                break
            iteration += 1
        if not chosen:
            chosen = [(0, [dict(brackets[-1][0], size=min(brackets[-1][0]["size"], budget))])]
        plans: list[RoundPlan] = []
        for it, rungs in chosen:
            for r in rungs:
                plans.append(RoundPlan(len(plans), r["size"], r["epochs"], r["initial_epoch"],
                                       r["bracket"], r["rung"], it))
        return plans

    def before_round(self, oracle: keras_tuner.Oracle, plan: RoundPlan | None) -> None:
        """Set the oracle's rung plan for the round (a round past the plan gets none)."""
        oracle.rung = dataclasses.asdict(plan) if plan is not None else {"size": 0}


class EvolutionaryStrategy(Strategy):
    """Generations of K: tournament selection, crossover and mutation in keras-tuner's unit cube."""

    name = "evolutionary"
    description = "an evolutionary search, one generation of K a round"
    options = {"population_size": None, "tournament_size": 2, "mutation_rate": 0.5, "mutation_scale": 0.15,
               "crossover_rate": 0.5, "elitism": 1}
    oracle = "mlwf_nb.hpo.evolutionary:EvolutionaryOracle"

    def oracle_options(self) -> dict[str, Any]:
        """``population_size`` defaults to K (one generation a round)."""
        kw = dict(self.opts)
        if kw["population_size"] is None:
            kw["population_size"] = self.hpo.parallel
        return kw


for _cls in (GridStrategy, RandomStrategy, BayesianStrategy, HyperbandStrategy, EvolutionaryStrategy):
    register_strategy(_cls)
# The gradient search's class lives beside its arithmetic (it imports this module): registered by path.
STRATEGIES.register("gradient", "mlwf_nb.hpo.gradient:GradientStrategy")
