"""Studio: tabs composing the widgets around one SpecModel, with a backend choice and a Run button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import traitlets

from mlwf_nb.errors import BackendError, MlwfError
from mlwf_nb.spec import RunSpec
from mlwf_nb.views import render
from mlwf_nb.widgets._util import StaticForm
from mlwf_nb.widgets.augment import AugmentationPreview
from mlwf_nb.widgets.dataset import DatasetPicker
from mlwf_nb.widgets.hpo import HPOConfigurator
from mlwf_nb.widgets.model import SpecModel
from mlwf_nb.widgets.monitor import RunMonitor
from mlwf_nb.widgets.patches import PatchExplorer

__all__ = ["Studio"]


def _backends() -> tuple[list[str], dict[str, str]]:
    """The backends that can run here, and why the others cannot."""
    from mlwf_nb.params import backend_choices

    return backend_choices()


class Studio(StaticForm, W.VBox):
    """Data, patches, augmentation, HPO and run tabs over one shared spec.

    Args:
        spec: A RunSpec or a preset (default ``tiny``; a pipeline's own as ``"galaxy:tiny"``).
        submit: The function the Run button calls, ``submit(spec, backend=..., run_dir=...)``
            (default :func:`mlwf_nb.runs.submit`); tests pass a fake.
        run_dir: Where the next run goes (default: a fresh folder under ./runs).
    """

    run = traitlets.Any(None)
    error = traitlets.Unicode("")

    def __init__(self, spec: RunSpec | str | None = None, *, submit: Callable[..., Any] | None = None,
                 run_dir: str | None = None, **kwargs) -> None:
        self.model = SpecModel(spec)
        self._submit = submit
        self.run_dir = run_dir
        self.picker = DatasetPicker(self.model)
        self.patches = PatchExplorer(self.model)
        self.augment = AugmentationPreview(self.model)
        self.hpo = HPOConfigurator(self.model)
        self.monitor: RunMonitor | None = None
        traitlets.dlink((self.picker, "dataset"), (self.patches, "dataset"))
        traitlets.dlink((self.picker, "samples"), (self.patches, "samples"))
        traitlets.dlink((self.patches, "rgb_bands"), (self.augment, "rgb_bands"))
        traitlets.dlink((self.patches, "patch"), (self.augment, "patch"))
        self._spec_view = W.HTML()
        usable, self._why_not = _backends()
        wanted = self.model.spec.execution.backend
        self._backend = W.Dropdown(description="backend", options=usable,
                                   value=wanted if wanted in usable else None)
        self._run_btn = W.Button(description="Run", icon="play", button_style="success")
        self._error = W.HTML()
        self._monitor_box = W.VBox()
        run_tab = W.VBox([W.HBox([self._backend, self._run_btn]), self._error, self._monitor_box])
        self.tabs = W.Tab(children=[self.picker, self.patches, self.augment, self.hpo, self._spec_view, run_tab])
        for i, title in enumerate(["Data", "Patches", "Augment", "HPO", "Spec", "Run"]):
            self.tabs.set_title(i, title)
        super().__init__(children=[self.tabs], **kwargs)
        self._run_btn.on_click(self._on_run_click)
        self._backend.observe(self._on_backend, names="value")
        self.model.observe(self._show_spec, names="spec")
        self._show_spec({"new": self.model.spec})
        if wanted not in usable:
            self.error = (f"backend {wanted!r} cannot run here: "
                          f"{self._why_not.get(wanted) or 'it is not registered'}; choose one of {usable}")

    def _on_backend(self, change) -> None:
        if change["new"]:
            self.model.set("execution.backend", change["new"])
            self.error = ""

    def static_parts(self) -> list[W.Widget | str]:
        """The Data tab, the spec (folded) and the backend; patches, augmentations and the run have their own cells."""
        spec = (f"<details><summary>spec <code>{render._e(self.spec.name)}</code></summary>"
                f"{self._spec_view.value}</details>")
        return ["<b>Data</b>", self.picker, spec, self._backend, self._error]

    @property
    def spec(self) -> RunSpec:
        """The shared spec."""
        return self.model.spec

    def _show_spec(self, change) -> None:
        self._spec_view.value = f"<pre>{render._e(change['new'].to_yaml())}</pre>"

    @traitlets.observe("error")
    def _on_error(self, change) -> None:
        self._error.value = render.error_html(change["new"])

    def _on_run_click(self, _button: Any) -> None:
        try:
            self.start_run()
        except MlwfError:
            pass  # start_run shows it in the Run tab (self.error); a button has no cell to raise into

    def start_run(self, *, in_tab: bool = True) -> RunMonitor:
        """Submit the spec (through ``mlwf_nb.runs``) and attach a RunMonitor to the new run.

        Args:
            in_tab: show the monitor in the Run tab (the Run button does); a notebook cell that
                displays the returned monitor itself passes False, so the monitor is on the page once.

        Raises:
            MlwfError: the run could not start (no usable backend, a dataset that is not there, a bad
                spec); the message is also shown in the Run tab. From a notebook cell the typed error
                stops the cell, instead of a monitor of nothing failing in the cells after it.
        """
        from mlwf_nb.runs import submit as default_submit

        submit = self._submit if self._submit is not None else default_submit
        if not self._backend.value:
            self.error = f"choose a backend first: {list(self._backend.options)}"
            raise BackendError(self.error)
        self._run_btn.disabled = True
        try:
            self.run = submit(self.model.spec, backend=self._backend.value, run_dir=self.run_dir)
        except MlwfError as err:
            self.error = str(err)
            raise
        finally:
            self._run_btn.disabled = False
        self.error = ""
        self.monitor = RunMonitor(self.run)
        if in_tab:
            self._monitor_box.children = [self.monitor]
            self.monitor.shown = self.shown  # on the page inside the studio
            self.tabs.selected_index = 5
        else:
            self._monitor_box.children = [W.HTML(f"<i>run <code>{render._e(self.monitor.run_dir)}</code> started; "
                                                 "its monitor is shown by the cell that started it</i>")]
        return self.monitor
