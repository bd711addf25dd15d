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

    Every file a trial reads or writes carries its search, round and trial in its name
    (``work/hpo/r0-t1.result.json``, ``work/hpo/GF-2/GF-2.r1-t0.checkpoint.keras``): ``hpo-propose``
    reads all of a round's results in one job, and clustered trials (``execution.cluster_size``)
    of several searches share one sandbox.

    Args:
        spec: The run's spec (``hpo`` section; ``train.epochs`` is Hyperband's largest budget).
        g: The graph being built.
        train: Training shard files (LFNs) the trials train on (unused with the cheap objective).
        val: Validation shard files.
        dataset: The dataset description LFN (``dataset.yaml``): the trials read the class table.
        work: Folder for oracle states, hp.json, result.json and trial checkpoints.
        out: Folder for ``best.json`` and ``leaderboard.json``.
        tag: Names this search among several (e.g. a sensor source): prefixes its labels and files.

    Returns:
        ``[best.json]`` for the final training, or ``[]`` when ``hpo.strategy`` is ``none``.
    """
    if spec.hpo.strategy == "none":
        return []
    from mlwf_nb.hpo.rounds import round_plans
    from mlwf_nb.ml.tensorboard import event_files

    cheap = spec.hpo.cheap_objective
    prefix, label = (f"{tag}.", f"{tag}:") if tag else ("", "")
    state: list[str] = []
    previous: list[str] = []
    checkpoints: list[str] = []
    every: list[str] = []
    for plan in round_plans(spec):
        r = plan.index
        names = [f"{work}/{prefix}r{r}-t{i}" for i in range(plan.size)]
        state_out = f"{work}/{prefix}r{r}.state.json"
        g.add("hpo-propose", f"hpo-propose[{label}r{r}]", state=state, results=previous,
              hp=[f"{n}.hp.json" for n in names], state_out=state_out, round=r)
        # A Hyperband promotion continues one of the previous round's checkpoints (which one is decided
        # at run time), so a promoted trial declares them all: Pegasus stages them where it runs.
        parents = checkpoints if plan.initial_epoch > 0 else []
        previous, checkpoints = [], []
        for i, name in enumerate(names):
            ckpt = [f"{name}.checkpoint.keras", f"{name}.checkpoint.keras.json"]
            g.add("trial", f"trial[{label}r{r},{i}]", hp=f"{name}.hp.json", result=f"{name}.result.json",
                  checkpoint=ckpt, parents=parents, train=[] if cheap else train, val=[] if cheap else val,
                  dataset=[dataset], cheap=cheap,
                  tensorboard=[] if cheap else event_files(f"trial-{label}r{r}-{i}"))
            previous.append(f"{name}.result.json")
            checkpoints += ckpt
        state = [state_out]
        every += previous
    g.add("hpo-select", f"hpo-select{tag and '[' + tag + ']'}", results=every, best=f"{out}/{prefix}best.json",
          leaderboard=f"{out}/{prefix}leaderboard.json")
    return [f"{out}/{prefix}best.json"]
