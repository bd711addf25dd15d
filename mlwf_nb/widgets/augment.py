"""AugmentationPreview: controls bound to ``spec.augment`` and a grid of augmented patches."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import traitlets

from mlwf_nb.spec import AugmentSpec
from mlwf_nb.views import figures, render, scenes
from mlwf_nb.widgets._util import StaticForm, image_widget, quiet_set, set_image, wrap_row
from mlwf_nb.widgets.model import SpecModel

__all__ = ["AugmentationPreview", "AUGMENT_KEYS"]

AUGMENT_KEYS = ("rotation", "flip", "zoom", "shift_height", "shift_width")
_FLIPS = ["none", "horizontal", "vertical", "horizontal_and_vertical"]


class AugmentationPreview(StaticForm, W.VBox):
    """Rotation, flips, zoom and shifts; every change edits ``augment.*`` of the shared spec.

    ``patch`` is the (H, W, bands) uint8 patch to augment (e.g. a PatchExplorer's);
    ``preview`` holds the last ``(n, H, W, bands)`` augmented batch, as training makes
    it (one affine warp per patch); ``reseed()`` draws a new one. With ``compare``
    on, ``reference`` holds the same draws through Keras's layers one after another,
    drawn in a second row beside the first.
    """

    patch = traitlets.Any(None)
    rgb_bands = traitlets.Tuple((2, 1, 0), help="indices of red, green, blue in ``patch`` (from the dataset)")
    preview = traitlets.Any(None)
    reference = traitlets.Any(None)
    compare = traitlets.Bool(False)
    seed = traitlets.Int(0)
    n = traitlets.Int(8)
    error = traitlets.Unicode("")

    @traitlets.validate("n")
    def _valid_n(self, proposal):
        if not 1 <= proposal["value"] <= 64:
            raise traitlets.TraitError(f"n must be between 1 and 64, got {proposal['value']}")
        return proposal["value"]

    def __init__(self, model: SpecModel | None = None, patch: np.ndarray | None = None, **kwargs) -> None:
        self.model = model or SpecModel()
        self._controls = {
            "rotation": W.FloatSlider(description="rotation", min=0.0, max=0.5, step=0.05,
                                      continuous_update=False),
            "flip": W.Dropdown(description="flip", options=_FLIPS),
            "zoom": W.FloatSlider(description="zoom", min=0.0, max=0.9, step=0.05, continuous_update=False),
            "shift_height": W.FloatSlider(description="shift y", min=0.0, max=0.9, step=0.05,
                                          continuous_update=False),
            "shift_width": W.FloatSlider(description="shift x", min=0.0, max=0.9, step=0.05,
                                         continuous_update=False),
        }
        self._reseed = W.Button(description="Reseed", icon="refresh")
        self._beside_keras = W.Checkbox(description="beside the Keras layers", indent=False)
        traitlets.link((self._beside_keras, "value"), (self, "compare"))
        self._error = W.HTML()
        self._grid = image_widget()
        super().__init__(children=[wrap_row(list(self._controls.values())[:3]),
                                   wrap_row([*list(self._controls.values())[3:], self._reseed, self._beside_keras]),
                                   self._error, self._grid], **kwargs)
        for ctl in self._controls.values():
            ctl.observe(self._on_control, names="value")
        self._reseed.on_click(lambda _: self.reseed())
        self.model.observe(self._on_spec, names="spec")
        self._sync(self.model.spec.augment)
        self.patch = patch

    def reseed(self) -> None:
        """Draw a new set of augmentations."""
        self.seed += 1

    def _on_control(self, change) -> None:
        key = next(k for k, c in self._controls.items() if c is change["owner"])
        ok = self.model.set(f"augment.{key}", change["new"])
        self.error = "" if ok else self.model.error

    def _sync(self, aug: AugmentSpec) -> None:
        for key, ctl in self._controls.items():
            quiet_set(ctl, getattr(aug, key), self._on_control)

    def _on_spec(self, change) -> None:
        old, new = change["old"], change["new"]
        if old is None or old.augment != new.augment:
            self._sync(new.augment)
            self.refresh()

    @traitlets.observe("error")
    def _on_error(self, change) -> None:
        self._error.value = render.error_html(change["new"])

    @traitlets.observe("patch", "seed", "n", "compare")
    def _on_patch(self, change) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute and redraw the augmented grid."""
        if self.patch is None:
            self.preview = self.reference = None
            set_image(self._grid, None)
            return
        patch = np.asarray(self.patch)
        aug = self.model.spec.augment
        self.preview = scenes.augment_preview(patch, aug, self.n, self.seed)
        self.reference = scenes.augment_reference(patch, aug, self.n, self.seed) if self.compare else None
        bands = list(self.rgb_bands)  # the dataset's red, green, blue (GID: NIR, R, G, B)
        images = [_rgb(patch, bands), *(_rgb(p, bands) for p in self.preview)]
        titles = ["original", *[f"#{i + 1}" for i in range(self.n)]]
        if self.reference is not None:  # one row each: training's warp above, the Keras layers below
            images += [_rgb(patch, bands), *(_rgb(r, bands) for r in self.reference)]
            titles = ["original", *[f"#{i + 1} one warp" for i in range(self.n)],
                      "original", *[f"#{i + 1} Keras layers" for i in range(self.n)]]
        cols = self.n + 1 if self.reference is not None else 5
        set_image(self._grid, figures.images_figure(images, titles, cols=cols, size=1.6))


def _rgb(img: np.ndarray, bands: list[int]) -> np.ndarray:
    """The dataset's red, green and blue bands as RGB; fewer than three bands as grey."""
    return img[..., bands] if img.shape[-1] >= 3 else np.repeat(img[..., :1], 3, -1)
