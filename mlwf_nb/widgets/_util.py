"""Small helpers shared by the widgets."""

from __future__ import annotations

import ipywidgets as W
from matplotlib.figure import Figure

from mlwf_nb.widgets.figures import figure_png

__all__ = ["set_image", "image_widget", "quiet_set"]


def image_widget(width: str = "") -> W.Image:
    """An empty PNG image widget."""
    return W.Image(format="png", layout=W.Layout(width=width) if width else W.Layout())


def set_image(img: W.Image, fig: Figure | None, dpi: int = 80) -> None:
    """Show a figure in an Image widget (empty for None)."""
    img.value = figure_png(fig, dpi=dpi) if fig is not None else b""


def quiet_set(widget: W.DOMWidget, value: object, handler: object, name: str = "value") -> None:
    """Set a control's value without firing ``handler`` (used to sync controls from the spec)."""
    widget.unobserve(handler, names=name)
    try:
        setattr(widget, name, value)
    finally:
        widget.observe(handler, names=name)
