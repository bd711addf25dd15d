"""The run directory's formats, at the bottom of the house: written by backends, read by ``runs``.

* :mod:`~mlwf_nb.rundir.states`: the one vocabulary of job and run states (``JOB_STATES``,
  ``FINAL_STATES``, the map from ``jobstate.log`` words) and the one count of jobs by state;
* :mod:`~mlwf_nb.rundir.events`: ``events.jsonl`` (one JSON event a line, contiguous ``seq``),
  its writers and its incremental readers;
* :mod:`~mlwf_nb.rundir.jobstate`: Pegasus's ``jobstate.log``, parsed, followed, written
  and summarised.

It also names the one job-metadata key of ``workflow.yml`` that the workflow builder writes
and the backends read: :data:`WARM_METADATA`.

Nothing here knows a backend, a step or a widget.
"""

from __future__ import annotations

__all__ = ["events", "jobstate", "states", "WARM_METADATA"]

WARM_METADATA = "mlwf.warm"
"""Job metadata in ``workflow.yml``: ``"true"`` when the job's step may be forked from a warm worker
(it imports Keras; :mod:`mlwf_nb.backends._warm`). Written by :mod:`mlwf_nb.workflow`, read by
:mod:`mlwf_nb.backends.plan`."""
