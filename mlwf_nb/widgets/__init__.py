"""Notebook widgets (ipywidgets 8): views over one shared RunSpec and a live run monitor.

    >>> from mlwf_nb.widgets import Studio
    >>> Studio("tiny")                      # tabs: Data, Patches, Augment, HPO, Spec, Run

Each widget holds its state in traits and draws through pure render functions
(:mod:`~mlwf_nb.views.render`, :mod:`~mlwf_nb.views.figures`); file work goes
through ``mlwf_nb.data`` and ``mlwf_nb.runs``.
"""

from mlwf_nb.widgets.augment import AugmentationPreview
from mlwf_nb.widgets.dataset import DatasetPicker
from mlwf_nb.widgets.hpo import HPOConfigurator, space_problems
from mlwf_nb.widgets.model import SpecModel
from mlwf_nb.widgets.monitor import RunMonitor
from mlwf_nb.widgets.patches import PatchExplorer
from mlwf_nb.widgets.studio import Studio

__all__ = [
    "SpecModel", "DatasetPicker", "PatchExplorer", "AugmentationPreview", "HPOConfigurator",
    "RunMonitor", "Studio", "space_problems",
]
