"""Gradient-based search across trials: one finite-difference gradient step per round.

The numeric parameters live in keras-tuner's unit cube, where a ``log: true``
parameter is already log-scaled, so a move of 0.1 is a tenth of the range
whatever the units. The search starts at the centre of the cube; each
*iteration* is one round of K trials around the current centre ``x``:

* ``spsa`` (simultaneous perturbation, the default): pair p probes
  ``x ± c_k Δ_p`` with random signs ``Δ_p ∈ {-1, +1}^d`` and estimates the whole
  gradient as ``(f+ - f-) / (2 c_k) Δ_p``; the pairs are averaged;
* ``central`` (central differences): pair p probes one coordinate,
  ``x ± c_k e_i``, the coordinates taken in turn across pairs and iterations,
  so a round of K trials measures K // 2 partial derivatives.

Measured (docs/hpo.md, ``make bench`` rows ``hpo gradient*``): central
differences win with a smooth, nearly noise-free objective and few pairs
(each pair measures one derivative exactly); SPSA wins once the objective is
noisy, the more so with more pairs (each pair measures every derivative, so
the noise averages out), and it needs one pair whatever the number of
parameters. On the analytic objective and the tiny real training the two are
within the seeds' spread. Trial objectives are noisy, so SPSA is the default.

An odd K spends its last trial on the centre itself; K = 1 spreads a pair over
two rounds. A direction that repeats within an iteration (one parameter, or more
pairs than directions) probes at half the width of its previous use, so no two
trials are the same point. When every trial of an iteration has ended, the
centre moves by ``a_k`` along the normalised gradient estimate and is projected
back onto the bounds, with Spall's decays
``a_k = step * (2 / (k + 2)) ** 0.602`` and ``c_k = perturbation / (k + 1) ** 0.101``.
Probes are centred on ``clip(x, c_k, 1 - c_k)``, so no trial is ever proposed
outside the space. Normalising the gradient makes the move independent of the
objective's scale (accuracy or loss, noisy or not).

Integers descend like floats, their values rounded by keras-tuner
(``integers="hold"`` treats them like choices instead). Choices are never
differentiated: in the first iteration each pair draws them at random (both
members of a pair share the draw, so the difference measures the numeric
parameters alone), and from then on they are held at the values of the best
completed trial.

A failed trial is recorded by the rounds driver like any failed trial (and
counts towards ``hpo.max_consecutive_failures``); a pair with a failed or
non-finite member is left out of the estimate, and an iteration with no
complete pair keeps the centre where it was.

``hpo.strategy: gradient`` is :class:`GradientStrategy` (its options come from
``hpo.options``; registered in :data:`mlwf_nb.hpo.strategies.STRATEGIES`). The
keras-tuner oracle that does the search is
:class:`mlwf_nb.hpo.gradient_oracle.GradientOracle`; this module holds the
strategy and the arithmetic and imports neither Keras nor keras-tuner. All state is in the
oracle's ``get_state()`` (JSON), including the path of
the centre (``path``: one entry per iteration with the centre's values, the
gradient estimate and the move). Random draws come from a numpy generator
seeded by ``(seed, seed_state)``, so a reloaded oracle proposes exactly what the
original would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.strategies import Strategy
from mlwf_nb.spec import HPOSpec

__all__ = ["GradientStrategy", "ESTIMATORS", "INTEGERS", "NO_NUMERIC", "option_problems", "step_length",
           "perturbation_size", "estimate_gradient", "project"]

ESTIMATORS = ("spsa", "central")
INTEGERS = ("descend", "hold")
_ALPHA, _GAMMA = 0.602, 0.101  # Spall (1998): decay exponents of the gain and of the perturbation
NO_NUMERIC = ("gradient search needs at least one numeric ({kinds}) parameter in hpo.space; choices are held, "
              "not differentiated: use bayesian or evolutionary for a space of choices")


def option_problems(estimator: object, step: object, perturbation: object, integers: object,
                    round_size: object = 1) -> list[str]:
    """What is wrong with the search's options (empty: nothing), one phrase each."""
    problems = []
    if estimator not in ESTIMATORS:
        problems.append(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if integers not in INTEGERS:
        problems.append(f"integers must be one of {', '.join(INTEGERS)}, got {integers!r}")
    for name, value, hi in (("step", step, 1.0), ("perturbation", perturbation, 0.5)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= hi:
            problems.append(f"{name} must be in (0, {hi:g}] (a fraction of each range), got {value!r}")
    if isinstance(round_size, bool) or not isinstance(round_size, int) or round_size < 1:
        problems.append(f"round_size must be an int >= 1, got {round_size!r}")
    return problems


def step_length(k: int, step: float) -> float:
    """Length of iteration k's move in the unit cube: ``step`` at k = 0, then decaying."""
    return step * (2.0 / (k + 2.0)) ** _ALPHA


def perturbation_size(k: int, perturbation: float) -> float:
    """Half-width ``c_k`` of iteration k's probes in the unit cube (at most 0.5)."""
    return min(0.5, perturbation / (k + 1.0) ** _GAMMA)


def project(x: Sequence[float], lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """Clip every coordinate into ``[lo, hi]``."""
    return [min(max(float(v), lo), hi) for v in x]


def estimate_gradient(pairs: Sequence[tuple[float, float, Sequence[float], float]],
                      dims: int) -> list[float] | None:
    """Average the finite-difference estimates of complete pairs.

    Args:
        pairs: ``(f_plus, f_minus, direction, c)`` per complete pair: ``direction``
            is SPSA's ±1 vector or central differences' unit vector ``e_i``, and
            ``c`` the probes' half-width.
        dims: Number of numeric parameters.

    Returns:
        The gradient estimate (a coordinate that no pair probed is 0), or None
        when ``pairs`` is empty.
    """
    if not pairs:
        return None
    total = np.zeros(dims)
    counts = np.zeros(dims)
    for f_plus, f_minus, direction, c in pairs:
        d = np.asarray(direction, dtype=float)
        total += (f_plus - f_minus) / (2.0 * c) * d  # 1 / d_i = d_i for the ±1 and the 1 of e_i
        counts += d != 0
    return [float(t / n) if n else 0.0 for t, n in zip(total, counts, strict=True)]


class GradientStrategy(Strategy):
    """``hpo.strategy: gradient``: one finite-difference gradient step per round of K (module docstring).

    Options (``hpo.options``): ``estimator`` (``spsa`` | ``central``), ``step`` (the first
    move, a fraction of each range), ``perturbation`` (the first probes' half-width),
    ``integers`` (``descend`` | ``hold``).

    Raises:
        HPOError: an option out of range, or a space with nothing to differentiate.
    """

    name = "gradient"
    description = "finite-difference gradient steps, one per round of K (SPSA or central differences)"
    options = {"estimator": "spsa", "step": 0.2, "perturbation": 0.1, "integers": "descend"}
    oracle = "mlwf_nb.hpo.gradient_oracle:GradientOracle"

    def __init__(self, hpo: HPOSpec, *, max_epochs: int | None = None, **options: Any) -> None:
        super().__init__(hpo, max_epochs=max_epochs, **options)
        o = self.opts
        problems = option_problems(o["estimator"], o["step"], o["perturbation"], o["integers"])
        if problems:
            raise HPOError("hpo.options: strategy 'gradient': " + "; ".join(problems))
        numeric = ("float", "int") if o["integers"] == "descend" else ("float",)
        if hpo.space and not any(p.type in numeric for p in hpo.space):
            raise HPOError(NO_NUMERIC.format(kinds=" or ".join(numeric)))

    def oracle_options(self) -> dict[str, Any]:
        """The options, plus the round size K (``hpo.parallel``): one iteration per round."""
        return {**self.opts, "round_size": int(self.hpo.parallel)}
