"""PatchExplorer: a scene's decimated thumbnail, and one patch with its label overlay (scene datasets)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import traitlets

from mlwf_nb.data.dataset import Dataset
from mlwf_nb.data.samples import SampleDataset
from mlwf_nb.data.stretch import apply_stretch
from mlwf_nb.errors import MlwfError
from mlwf_nb.views import figures, render, scenes
from mlwf_nb.widgets._util import StaticForm, image_widget, set_image, wrap_row
from mlwf_nb.widgets.model import SpecModel

__all__ = ["PatchExplorer"]


class PatchExplorer(StaticForm, W.VBox):
    """Pick a scene, a location and a patch size (from ``patches.sizes``); see the patch.

    The thumbnail is a decimated read (``thumb_size`` pixels a side at most) and
    the patch a windowed read, so big scenes are never loaded whole. ``patch``
    holds the stretched (H, W, bands) uint8 patch for other widgets.

    A sample dataset (``samples``, ``layout: samples``) has no scenes to cut patches
    from: the explorer says so and offers its first image as ``patch`` (what training
    sees, so the augmentation preview still works).
    """

    dataset = traitlets.Instance(Dataset, allow_none=True)
    samples = traitlets.Instance(SampleDataset, allow_none=True)
    message = traitlets.Unicode("")
    scene = traitlets.Unicode("", allow_none=True)
    y = traitlets.Int(0)
    x = traitlets.Int(0)
    size = traitlets.Int(0, allow_none=True)
    patch = traitlets.Any(None)
    rgb_bands = traitlets.Tuple((2, 1, 0), help="indices of red, green, blue in ``patch`` (from the dataset)")
    error = traitlets.Unicode("")

    def __init__(self, model: SpecModel | None = None, dataset: Dataset | None = None, thumb_size: int = 256,
                 **kwargs) -> None:
        self.model = model or SpecModel()
        self.thumb_size = thumb_size
        self._thumb: scenes.Thumbnail | None = None
        self._stretch: Any = None
        self._scene = W.Dropdown(description="scene")
        # label and buttons on one line, buttons as narrow as the sizes they show
        self._size = W.ToggleButtons(description="patch px", style={"button_width": "52px"},
                                     layout=W.Layout(width="auto"))
        self._y = W.IntSlider(description="row", continuous_update=False)
        self._x = W.IntSlider(description="column", continuous_update=False)
        self._thumb_img = image_widget()
        self._patch_img = image_widget()
        self._error = W.HTML()
        self._message = W.HTML()
        super().__init__(children=[self._message, wrap_row([self._scene, self._size]), wrap_row([self._y, self._x]),
                                   self._error,
                                   self._thumb_img, self._patch_img], **kwargs)
        for ctl, name in ((self._scene, "scene"), (self._size, "size"), (self._y, "y"), (self._x, "x")):
            traitlets.link((ctl, "value"), (self, name))
        self.model.observe(self._on_spec, names="spec")
        self._sizes()
        self.dataset = dataset

    def _sizes(self) -> None:
        sizes = list(self.model.spec.patches.sizes)
        self._size.options = [(str(s), s) for s in sizes]
        if self.size not in sizes:
            self.size = sizes[len(sizes) // 2]

    def _on_spec(self, change) -> None:
        if change["old"] is None or change["old"].patches.sizes != change["new"].patches.sizes:
            self._sizes()

    @traitlets.validate("size")
    def _valid_size(self, proposal):
        if proposal["value"] is not None and proposal["value"] not in self.model.spec.patches.sizes:
            raise traitlets.TraitError(f"patch size {proposal['value']} is not one of patches.sizes "
                                       f"{self.model.spec.patches.sizes}")
        return proposal["value"]

    @traitlets.observe("error")
    def _on_error(self, change) -> None:
        self._error.value = render.error_html(change["new"])

    @traitlets.observe("message")
    def _on_message(self, change) -> None:
        self._message.value = f"<div class='mlwf-message'><i>{render._e(change['new'])}</i></div>" if change[
            "new"] else ""

    @traitlets.observe("samples")
    def _on_samples(self, change) -> None:
        ds = change["new"]
        if ds is None:
            self.message = ""
            return
        self._scene.options = []
        set_image(self._thumb_img, None)
        set_image(self._patch_img, None)
        self.message = (f"{ds.name!r} is a sample dataset ({ds.task}, {ds.count} images of "
                        f"{' x '.join(map(str, ds.shape))}): its images are the model inputs, there are no "
                        "scenes to cut patches from. The dataset tab shows a grid of samples; the first one "
                        "is handed to the augmentation preview.")
        try:
            self.patch = scenes.first_sample(ds)
        except (MlwfError, OSError, IndexError) as err:
            self.error = f"cannot read the first sample of {ds.name!r}: {err}"

    @traitlets.observe("dataset")
    def _on_dataset(self, change) -> None:
        ds = change["new"]
        if ds is not None:
            self.samples = None
        ids = [s.id for s in ds.scenes] if ds is not None else []
        self._scene.options = ids
        if ids:
            self.scene = ids[0] if self.scene not in ids else self.scene
            self._load_scene()

    @traitlets.observe("scene")
    def _on_scene(self, change) -> None:
        self._load_scene()

    @traitlets.observe("y", "x", "size")
    def _on_window(self, change) -> None:
        self.refresh()

    def _load_scene(self) -> None:
        ds = self.dataset
        if ds is None or not self.scene:
            return
        try:
            self._thumb = scenes.read_thumbnail(ds, self.scene, self.thumb_size)
            self._stretch = scenes.fit_view_stretch(self._thumb.image, ds.nodata,
                                                   self.model.spec.stretch.low, self.model.spec.stretch.high)
        except MlwfError as err:
            self.error = str(err)
            return
        self.error = ""
        t = self._thumb
        assert t is not None
        self._y.max = max(0, t.height - (self.size or 0))
        self._x.max = max(0, t.width - (self.size or 0))
        self.refresh()

    def refresh(self) -> None:
        """Redraw the thumbnail (with the patch outlined) and the patch."""
        ds, t = self.dataset, self._thumb
        if ds is None or t is None or self._stretch is None or not self.size or not self.scene:
            return
        try:
            image, label = scenes.read_patch(ds, self.scene, self.y, self.x, self.size)
        except MlwfError as err:
            self.error = str(err)
            return
        nodata, bands = ds.nodata, (ds.true_color_bands, ds.false_color_bands)
        true_c, false_c = scenes.rgb_views(t.image, self._stretch, nodata, *bands)
        box = (self.y // t.step, self.x // t.step, max(1, self.size // t.step))
        set_image(self._thumb_img, figures.images_figure(
            [_outline(true_c, box), _outline(false_c, box)],
            [f"{self.scene} true colour (1:{t.step})", "NIR false colour"], cols=2, size=3.2))
        p_true, p_false = scenes.rgb_views(image, self._stretch, nodata, *bands)
        colors = [c.color for c in sorted(ds.classes, key=lambda c: c.index)]  # the dataset's label colours
        label_rgb = figures.class_map_rgb(label, colors) if label is not None else None
        self.rgb_bands = ds.true_color_bands
        set_image(self._patch_img, figures.patch_figure(
            p_true, p_false, label_rgb, f"{self.scene} @ ({self.y}, {self.x}), {self.size} px"))
        self.patch = np.moveaxis(np.asarray(apply_stretch(image, self._stretch, axis=0, nodata=nodata)), 0, -1)


def _outline(rgb: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    out = rgb.copy()
    y, x, s = box
    h, w = out.shape[:2]
    y1, x1 = min(h - 1, y + s), min(w - 1, x + s)
    out[y:y1 + 1, [x, x1]] = (255, 255, 0)
    out[[y, y1], x:x1 + 1] = (255, 255, 0)
    return out
