"""Static views of datasets and runs: HTML tables, matplotlib figures, maps. No ipywidgets here.

The widgets put these into their children; a notebook run without a widget front
end (papermill, nbconvert) shows the same with ``IPython.display``::

    >>> from mlwf_nb import views
    >>> views.show_run(run)          # state, jobs, curves, confusion matrix, maps, report

* :mod:`~mlwf_nb.views.render`: plain data in, HTML strings out;
* :mod:`~mlwf_nb.views.figures`: plain data in, ``matplotlib.figure.Figure`` out;
* :mod:`~mlwf_nb.views.scenes`: small decimated reads of a dataset, as arrays to show;
* :mod:`~mlwf_nb.views.show`: the ``show_*`` functions.
"""

from __future__ import annotations

from mlwf_nb.views.show import (
    is_static,
    show_dataset,
    show_figure,
    show_leaderboard,
    show_report,
    show_run,
    show_spec,
    show_state,
)

__all__ = ["is_static", "show_figure", "show_dataset", "show_run", "show_report", "show_state", "show_spec",
           "show_leaderboard"]
