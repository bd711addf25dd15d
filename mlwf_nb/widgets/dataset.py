"""DatasetPicker: choose (or generate) a dataset folder; see its scenes (or samples), integrity and split."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as W
import traitlets

from mlwf_nb.data.dataset import Dataset, is_dataset, not_a_dataset
from mlwf_nb.data.samples import SampleDataset, is_sample_dataset
from mlwf_nb.errors import MlwfError
from mlwf_nb.views import figures, render, scenes
from mlwf_nb.widgets._util import StaticForm, image_widget, set_image, wrap_row
from mlwf_nb.widgets.model import SpecModel

__all__ = ["DatasetPicker"]


class DatasetPicker(StaticForm, W.VBox):
    """Dataset folder, synthetic generation, scene table, integrity status and split preview.

    Edits ``dataset.path`` of the shared :class:`SpecModel`; ``dataset`` holds the
    opened :class:`~mlwf_nb.data.dataset.Dataset` (None while there is none). A folder
    whose ``dataset.yaml`` says ``layout: samples`` (galaxy, lung) opens as a
    :class:`~mlwf_nb.data.samples.SampleDataset` in ``samples`` instead, shown as a
    summary and a grid of samples (class names, or masks blended in) — the layout
    and task decide, not the pipeline.
    """

    path = traitlets.Unicode("")
    dataset = traitlets.Instance(Dataset, allow_none=True)
    samples = traitlets.Instance(SampleDataset, allow_none=True)
    split = traitlets.Dict()
    integrity = traitlets.Unicode("not checked")
    error = traitlets.Unicode("")

    def __init__(self, model: SpecModel | None = None, **kwargs) -> None:
        self.model = model or SpecModel()
        self._path = W.Text(description="dataset", layout=W.Layout(width="60%"))
        auto = W.Layout(width="auto")  # buttons as wide as their label ("Generate synthetic", not "Generate sy...")
        self._open = W.Button(description="Open", icon="folder-open", layout=auto)
        self._gen = W.Button(description="Generate synthetic", icon="magic", layout=auto)
        self._verify = W.Button(description="Verify integrity", icon="check", layout=auto)
        self._error = W.HTML()
        self._table = W.HTML()
        self._integrity = W.HTML()
        self._split = W.HTML()
        self._grid = image_widget()
        super().__init__(children=[wrap_row([self._path, self._open, self._gen, self._verify], gap="4px"), self._error,
                                   self._table, self._grid, self._integrity, self._split], **kwargs)
        self._open.on_click(lambda _: self.load())
        self._gen.on_click(lambda _: self.generate())
        self._verify.on_click(lambda _: self.check_integrity())
        self._path.observe(self._on_text, names="value")
        self.model.observe(self._on_spec, names="spec")
        self.path = str(self.model.spec.dataset.path)

    # -- trait wiring ---------------------------------------------------------------
    def _on_text(self, change) -> None:
        self.path = change["new"]

    @traitlets.observe("path")
    def _on_path(self, change) -> None:
        self._path.value = change["new"]
        if self.model.spec.dataset.path != change["new"]:
            self.model.set("dataset.path", change["new"])
        self.load()

    @traitlets.observe("error")
    def _on_error(self, change) -> None:
        self._error.value = render.error_html(change["new"])

    @traitlets.observe("integrity")
    def _on_integrity(self, change) -> None:
        self._integrity.value = f"<b>integrity:</b> {render._e(change['new'])}"

    def _on_spec(self, change) -> None:
        old, new = change["old"], change["new"]
        if new.dataset.path != self.path:
            self.path = new.dataset.path
        elif old is None or old.split != new.split:
            self._update_split()

    # -- actions (all file work goes through mlwf_nb.data) ------------------------------
    def load(self) -> None:
        """Open the dataset at ``path`` (an error state, not an exception, when there is none)."""
        self.samples = None
        set_image(self._grid, None)
        if not is_dataset(self.path):
            self.dataset = None
            self.error = f"{not_a_dataset(self.path)} (here: press 'Generate synthetic')"
            self._table.value = ""
            return
        if is_sample_dataset(self.path):
            self._load_samples()
            return
        try:
            self.dataset = Dataset.open(self.path)
        except MlwfError as err:
            self.dataset, self.error = None, str(err)
            return
        self.error = ""
        self.integrity = "manifest.json present: press 'Verify integrity'" if (
            Path(self.path) / "manifest.json").exists() else "no manifest.json (written by `mlwf data manifest`)"
        self._update_split()

    def _load_samples(self) -> None:
        """Open a sample dataset: summary, a grid of samples; its split is made by the workflow."""
        self.dataset = None
        try:
            ds = SampleDataset.open(self.path)
            images, titles = scenes.sample_grid(ds, n=12)
        except (MlwfError, OSError) as err:
            self.error = str(err)
            self._table.value = ""
            return
        self.error = ""
        self.samples = ds
        self._table.value = render.samples_html(ds.name, ds.task, ds.count, ds.shape, ds.class_names,
                                                ds.class_colors)
        set_image(self._grid, figures.images_figure(images, titles, cols=6, size=1.6))
        self.integrity = "manifest.json present: press 'Verify integrity'" if (
            Path(self.path) / "manifest.json").exists() else "no manifest.json (written by `mlwf data manifest`)"
        self.split = {}
        self._split.value = ("<i>the samples are split by the workflow's split-samples job "
                             + ("(stratified by class)" if ds.task == "classification" else "") + "</i>")

    def generate(self) -> None:
        """Generate a synthetic dataset at ``path`` from the spec's ``dataset`` section."""
        from mlwf_nb.data.synth import generate_dataset

        d = self.model.spec.dataset
        try:
            generate_dataset(self.path, scenes=d.scenes, height=d.height, width=d.width,
                             sources=list(d.sources), seed=d.seed)
        except MlwfError as err:
            self.error = str(err)
            return
        self.load()

    def check_integrity(self) -> None:
        """Verify every file against manifest.json."""
        from mlwf_nb.data.integrity import verify

        try:
            report = verify(self.path, raise_on_error=False)
        except (MlwfError, OSError) as err:
            self.integrity = f"cannot verify: {err}"
            return
        self.integrity = ("all files match the manifest" if report.ok else
                          f"PROBLEMS: missing {report.missing[:5]}, unexpected {report.unexpected[:5]}, "
                          f"mismatched {[m[0] for m in report.mismatched[:5]]}")

    def _update_split(self) -> None:
        from mlwf_nb.data.split import split_scenes

        ds = self.dataset
        if ds is None:
            return
        s = self.model.spec.split
        try:
            self.split = split_scenes([(sc.id, sc.source) for sc in ds.scenes], s.train, s.val, s.test,
                                      seed=s.seed, stratify=s.stratify)
        except MlwfError as err:
            self.split = {}
            self._split.value = render.error_html(str(err))
        else:
            self._split.value = "<b>split preview</b>" + render.split_html(self.split)
        try:
            rows = scenes.scene_rows(ds, self.split)
        except MlwfError as err:
            self.error = str(err)
            return
        self._table.value = render.scenes_html(rows, ds.class_names, ds.class_colors)
