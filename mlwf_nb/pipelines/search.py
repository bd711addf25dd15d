"""Hyper-parameter search as workflow rounds, for any pipeline that trains from shards.

``hpo-propose[r] -> trial[r, 1..K] -> hpo-propose[r+1] -> ... -> hpo-select``; the
pipeline's final ``train`` job takes ``best.json``. The number of rounds and of
trials per round comes from the spec alone (:func:`mlwf_nb.hpo.rounds.round_plans`),
so the workflow stays a static DAG while the oracle adapts between rounds.
"""

from __future__ import annotations

from mlwf_nb.pipelines.base import Graph
from mlwf_nb.spec import RunSpec

__all__ = ["add_search"]


def add_search(spec: RunSpec, g: Graph, *, train: list[str], val: list[str], dataset: str,
               work: str = "work/hpo", out: str = "outputs/hpo", tag: str = "") -> list[str]:
    """Add the search jobs for ``spec.hpo`` to ``g``.

    Args:
        spec: The run's spec (``hpo`` section; ``train.epochs`` is Hyperband's largest budget).
        g: The graph being built.
        train: Training shard files (LFNs) the trials train on (unused with the cheap objective).
        val: Validation shard files.
        dataset: The dataset description LFN (``dataset.yaml``): the trials read the class table.
        work: Folder for oracle states, hp.json, result.json and trial checkpoints.
        out: Folder for ``best.json`` and ``leaderboard.json``.
        tag: Prefix of the job labels (e.g. a sensor source for per-source searches).

    Returns:
        ``[best.json]`` for the final training, or ``[]`` when ``hpo.strategy`` is ``none``.
    """
    if spec.hpo.strategy == "none":
        return []
    from mlwf_nb.hpo.rounds import round_plans
    from mlwf_nb.ml.tensorboard import event_files

    cheap = spec.hpo.cheap_objective
    state: list[str] = []
    previous: list[str] = []
    checkpoints: list[str] = []
    every: list[str] = []
    for plan in round_plans(spec):
        r = plan.index
        folder = f"{work}/round-{r}"
        hps = [f"{folder}/trial-{i}/hp.json" for i in range(plan.size)]
        g.add("hpo-propose", f"hpo-propose[{tag}r{r}]", state=state, results=previous, hp=hps,
              state_out=f"{work}/state-r{r}.json", round=r)
        # A Hyperband promotion continues one of the previous round's checkpoints (which one is decided
        # at run time), so a promoted trial declares them all: Pegasus stages them where it runs.
        parents = checkpoints if plan.initial_epoch > 0 else []
        previous, checkpoints = [], []
        for i, hp in enumerate(hps):
            result, ckpt = f"{folder}/trial-{i}/result.json", f"{folder}/trial-{i}/checkpoint.keras"
            g.add("trial", f"trial[{tag}r{r},{i}]", hp=hp, result=result, checkpoint=ckpt, parents=parents,
                  train=[] if cheap else train, val=[] if cheap else val, dataset=[dataset], cheap=cheap,
                  tensorboard=[] if cheap else event_files(f"trial-{tag}r{r}-{i}"))
            previous.append(result)
            checkpoints.append(ckpt)
        state = [f"{work}/state-r{r}.json"]
        every += previous
    best = f"{out}/best.json"
    g.add("hpo-select", f"hpo-select{tag and '[' + tag.rstrip(':') + ']'}", results=every, best=best,
          leaderboard=f"{out}/leaderboard.json")
    return [best]
