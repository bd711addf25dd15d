"""HPO unrolled into workflow rounds: plan, propose, select.

``propose[r] -> trial[r, 1..K] -> propose[r+1] -> ... -> select``. The plan
(:func:`plan_rounds`) is fixed from the spec alone, so the workflow builder knows
every round's job count when it writes the DAG. Each ``propose`` loads the
oracle state of the previous round (one JSON file), feeds in that round's
``result.json`` files, asks the oracle for this round's trials, writes one
``hp.json`` per trial and saves the new state under a round-specific name::

    hp.json = {"round": r, "trial": i (1-based), "trial_id": "03", "skip": false,
               "values": {"train.learning_rate": 0.003, ...},
               "epochs": 4 | null,          # Hyperband budget (null: the spec's train.epochs)
               "initial_epoch": 0,          # Hyperband: epochs already trained by the parent
               "resume_from": path | null,  # Hyperband promotion: the parent's checkpoint
               "parent_trial_id": "01" | null}

When the oracle has nothing left (grid exhausted, a Hyperband rung that cannot
be filled) the trial's ``hp.json`` is ``{"skip": true, ...}``. A failed trial is
recorded as failed and the search goes on; only more than
``hpo.max_consecutive_failures`` failures in a row stop it (:class:`HPOError`).

``propose`` is idempotent: when the state file of round r already exists and was
made from the same inputs, the same proposals are written again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from mlwf_nb._io import read_json, write_json
from mlwf_nb.errors import HPOError
from mlwf_nb.hpo.leaderboard import best_result, load_results, rank_results
from mlwf_nb.hpo.strategies import NO_SEARCH, RoundPlan, Strategy, get_strategy, initial_points
from mlwf_nb.rundir.events import emit
from mlwf_nb.spec import HPOSpec, RunSpec

__all__ = ["RoundPlan", "round_plans", "plan_rounds", "propose", "select", "state_path",
           "initial_points", "STATE_FORMAT"]

STATE_FORMAT = "mlwf-hpo-state"
_STATE_VERSION = 1


def round_plans(hpo: HPOSpec | RunSpec, *, max_epochs: int | None = None, **options: Any) -> list[RoundPlan]:
    """Every round of the search, from the spec alone (deterministic): the strategy's plan.

    Args:
        hpo: The HPO section, or a whole spec (then ``max_epochs`` defaults to ``train.epochs``).
        max_epochs: The most epochs one model trains (Hyperband's largest budget).
        **options: Strategy options over ``hpo.options`` (see :mod:`mlwf_nb.hpo.strategies`).

    Raises:
        HPOError: An unknown strategy or option; Hyperband without ``max_epochs``; an invalid space.
    """
    if isinstance(hpo, RunSpec):
        max_epochs = max_epochs if max_epochs is not None else hpo.train.epochs
        hpo = hpo.hpo
    if hpo.strategy == NO_SEARCH:
        return []
    return get_strategy(hpo, max_epochs=max_epochs, **options).rounds()


def plan_rounds(hpo: HPOSpec | RunSpec, *, max_epochs: int | None = None, **options: Any) -> list[int]:
    """Number of trials in each round (see :func:`round_plans`)."""
    return [p.size for p in round_plans(hpo, max_epochs=max_epochs, **options)]


def state_path(state_dir: Path, round_index: int) -> Path:
    """The oracle state file written by ``propose`` of a round: ``state-r{r}.json``."""
    return Path(state_dir) / f"state-r{round_index}.json"


# -- propose ------------------------------------------------------------------------------

def propose(state_dir: Path, round_index: int, results: list[Path], hpo: HPOSpec,
            out_hp: list[Path], *, state_in: Path | None = None, state_out: Path | None = None,
            max_epochs: int | None = None, **options: Any) -> Path:
    """Feed the previous round's results to the oracle and propose this round's trials.

    Args:
        state_dir: Folder of the state files (used for the default names).
        round_index: r, from 0.
        results: ``result.json`` files of round r-1 (completed, failed or skipped).
        hpo: The HPO section of the spec.
        out_hp: One ``hp.json`` path per trial of this round.
        state_in: State of round r-1 (default ``state_dir/state-r{r-1}.json``; none for r=0).
        state_out: State to write (default ``state_dir/state-r{r}.json``).
        max_epochs: The most epochs one model trains (the spec's ``train.epochs``).
        **options: Strategy options over ``hpo.options`` (see :mod:`mlwf_nb.hpo.strategies`).

    Returns:
        The state file written.

    Raises:
        HPOError: Missing previous state, invalid space, or more than
            ``hpo.max_consecutive_failures`` failed trials in a row.
    """
    state_dir = Path(state_dir)
    if state_in is None and round_index > 0:
        state_in = state_path(state_dir, round_index - 1)
    state_out = Path(state_out) if state_out is not None else state_path(state_dir, round_index)
    digest = _digest(state_in, results, hpo, round_index, len(out_hp), max_epochs, options)
    if state_out.exists():
        done = read_json(state_out)
        if done.get("round") == round_index and done.get("inputs_digest") == digest:
            _write_proposals(done["proposals"], out_hp)
            return state_out
    doc = _read_state(state_in, hpo) if state_in is not None else None
    strategy = get_strategy(hpo, max_epochs=max_epochs, **options)
    proposals, state = _run_round(doc, round_index, results, strategy, len(out_hp))
    _write_proposals(proposals, out_hp)
    write_json(state_out, {"format": STATE_FORMAT, "version": _STATE_VERSION,
                           "strategy": hpo.strategy, "round": round_index,
                           "inputs_digest": digest, "proposals": proposals, **state})
    return state_out


def _digest(state_in: Path | None, results: list[Path], hpo: HPOSpec, round_index: int,
            count: int, max_epochs: int | None, options: dict[str, Any]) -> str:
    h = hashlib.sha256()
    head = [dataclasses.asdict(hpo), round_index, count, max_epochs, options]
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for path in ([state_in] if state_in is not None else []) + list(results):
        h.update(str(path).encode())
        h.update(Path(path).read_bytes() if Path(path).exists() else b"<missing>")
    return h.hexdigest()


def _read_state(path: Path, hpo: HPOSpec) -> dict[str, Any]:
    if not Path(path).exists():
        raise HPOError(f"oracle state {str(path)!r} is missing; run hpo-propose for the previous "
                       "round first (or resume the run so it does)")
    doc = read_json(path)
    if doc.get("format") != STATE_FORMAT or doc.get("strategy") != hpo.strategy:
        raise HPOError(f"{str(path)!r} is not an oracle state of strategy {hpo.strategy!r} "
                       f"(found format={doc.get('format')!r}, strategy={doc.get('strategy')!r}); "
                       "start the search again in a fresh run directory")
    return doc


def _run_round(doc: dict[str, Any] | None, r: int, results: list[Path], strategy: Strategy,
               count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    from mlwf_nb.hpo.oracles import oracle_from_json, oracle_to_json, scratch_project
    from mlwf_nb.hpo.space import build_hyperparameters

    hpo = strategy.hpo
    plans = strategy.rounds()
    oracle = strategy.make_oracle(build_hyperparameters(hpo.space))
    book: dict[str, Any] = {"checkpoints": {}, "history": []}
    # One BLAS thread: the Gaussian process matrices are tiny, and on a busy node
    # threaded BLAS made a Bayesian proposal 4-10x slower (measured, 2 shared cores).
    with scratch_project(oracle), threadpool_limits(limits=1):
        if doc is not None:
            oracle_from_json(oracle, doc["oracle"])
            book = doc["book"]
            _feed(oracle, doc.get("proposals", []), load_results(results), book)
        _check_failures(oracle, hpo)
        strategy.before_round(oracle, plans[r] if r < len(plans) else None)
        proposals = [_propose_one(oracle, r, i, book) for i in range(1, count + 1)]
        return proposals, {"oracle": oracle_to_json(oracle), "book": book}


def _feed(oracle: Any, previous: list[dict[str, Any]], results: list[dict[str, Any]],
          book: dict[str, Any]) -> None:
    """End the previous round's trials, in trial order, with their results."""
    from mlwf_nb.hpo.oracles import finish_trial

    by_id = {d["trial_id"]: d for d in results if d.get("trial_id") is not None}
    running = {t.trial_id for t in oracle.ongoing_trials.values()}
    order = [p["trial_id"] for p in previous if not p.get("skip")]
    order += sorted(running - set(order))
    for trial_id in order:
        if trial_id not in running:
            continue
        doc = by_id.get(trial_id, {"status": "failed", "error": "no result.json was reported"})
        if doc.get("status") == "ok" and doc.get("objective") is not None:
            metrics = {**(doc.get("metrics") or {}), oracle.objective.name: doc["objective"]}
            status = finish_trial(oracle, trial_id, "COMPLETED", metrics)
        else:
            status = finish_trial(oracle, trial_id, "FAILED", message=str(doc.get("error")))
        if doc.get("checkpoint"):
            book["checkpoints"][trial_id] = doc["checkpoint"]
        book["history"].append({"round": doc.get("round"), "trial": doc.get("trial"),
                                "trial_id": trial_id, "status": status,
                                "objective": doc.get("objective"), "error": doc.get("error")})


def _check_failures(oracle: Any, hpo: HPOSpec) -> None:
    run, worst, last = 0, 0, ""
    for trial_id in oracle.end_order:
        trial = oracle.get_trial(trial_id)
        run = run + 1 if trial.status == "FAILED" else 0
        if run > worst:
            worst, last = run, trial.message or ""
    if worst > hpo.max_consecutive_failures:
        raise HPOError(
            f"{worst} trials failed in a row, more than hpo.max_consecutive_failures="
            f"{hpo.max_consecutive_failures}; last error: {last}. Fix the cause (see the "
            "trials' result.json) or raise hpo.max_consecutive_failures")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _propose_one(oracle: Any, r: int, i: int, book: dict[str, Any]) -> dict[str, Any]:
    from mlwf_nb.hpo.space import spec_values

    trial = oracle.create_trial(f"round{r}-trial{i}")
    proposal: dict[str, Any]
    if trial.status != "RUNNING":
        proposal = {"round": r, "trial": i, "trial_id": None, "skip": True, "values": {},
                    "reason": f"oracle status {trial.status}: nothing left to try"}
    else:
        values = {k: _plain(v) for k, v in trial.hyperparameters.values.items()}
        parent = values.get("tuner/trial_id")
        proposal = {"round": r, "trial": i, "trial_id": trial.trial_id, "skip": False,
                    "values": spec_values(values), "epochs": values.get("tuner/epochs"),
                    "initial_epoch": values.get("tuner/initial_epoch", 0),
                    "resume_from": book["checkpoints"].get(parent) if parent else None,
                    "parent_trial_id": parent}
    return proposal


def _write_proposals(proposals: list[dict[str, Any]], out_hp: list[Path]) -> None:
    for proposal, path in zip(proposals, out_hp, strict=True):
        write_json(path, proposal)
        emit("trial_proposed", round=proposal["round"], trial=proposal["trial"],
             hp=proposal["values"], trial_id=proposal["trial_id"], skip=proposal["skip"],
             epochs=proposal.get("epochs"))


# -- select -------------------------------------------------------------------------------

def select(results: list[Path], hpo: HPOSpec, out_best: Path, out_leaderboard: Path) -> dict[str, Any]:
    """Rank all trials; write ``best.json`` and ``leaderboard.json``.

    Args:
        results: Every trial's ``result.json`` (all rounds).
        hpo: The HPO section (objective name and direction).
        out_best: ``best.json``: values, objective, trial, round, trial_id, metrics, epochs.
        out_leaderboard: ``leaderboard.json``: all trials sorted, failed ones with their error.

    Returns:
        The best trial's document.

    Raises:
        HPOError: If no trial completed.
    """
    rows = rank_results(load_results(results), hpo.direction)
    board = {"objective": hpo.objective, "direction": hpo.direction, "strategy": hpo.strategy,
             "trials": rows}
    write_json(out_leaderboard, board)
    emit("artifact", kind="leaderboard", path=str(out_leaderboard))
    best = best_result(rows)
    if best is None:
        raise HPOError(f"none of the {len(rows)} trials completed, so there is no best "
                       f"{hpo.objective}; see the errors in {str(out_leaderboard)!r}")
    doc = {"objective_name": hpo.objective, "direction": hpo.direction,
           **{k: best[k] for k in ("values", "objective", "trial", "round", "trial_id",
                                   "metrics", "epochs")}}
    write_json(out_best, doc)
    return doc
