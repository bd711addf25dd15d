"""The run directory's formats, at the bottom of the house: written by backends, read by ``runs``.

* :mod:`~mlwf_nb.rundir.states`: the one vocabulary of job and run states (``JOB_STATES``,
  ``FINAL_STATES``, the map from ``jobstate.log`` words) and the one count of jobs by state;
* :mod:`~mlwf_nb.rundir.events`: ``events.jsonl`` (one JSON event a line, contiguous ``seq``),
  its writers and its incremental readers;
* :mod:`~mlwf_nb.rundir.jobstate`: Pegasus's ``jobstate.log``, parsed, followed, written
  and summarised.

Nothing here knows a backend, a step or a widget.
"""

from __future__ import annotations

__all__ = ["events", "jobstate", "states"]
