"""Figure renderers: plain data in, ``matplotlib.figure.Figure`` out.

Figures are built with the object API (no pyplot state), so a monitor thread
can render them safely; :func:`figure_png` turns one into PNG bytes for an
``ipywidgets.Image``. The confusion matrix, history and class-map colours come
from ``mlwf_nb.ml.plots``, so the notebook and the run's own report look alike.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from mlwf_nb.ml.plots import class_map_rgb, plot_confusion_matrix, plot_history

__all__ = [
    "history_figure", "confusion_figure", "images_figure", "patch_figure", "class_map_rgb",
    "figure_png",
]


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def history_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """Loss and accuracy curves per epoch (train and ``val_`` series)."""
    return plot_history({k: list(v) for k, v in history.items()})


def confusion_figure(matrix: Sequence[Sequence[float]], class_names: Sequence[str],
                     class_colors: Sequence[Sequence[int]] | None = None) -> Figure:
    """Confusion-matrix heatmap (rows true, columns predicted) with class colour swatches."""
    colors = [tuple(int(c) for c in col) for col in (class_colors or [])]
    return plot_confusion_matrix(np.asarray(matrix), list(class_names), colors or None)


def images_figure(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, cols: int = 4,
                  size: float = 2.2) -> Figure:
    """A grid of RGB (H, W, 3) uint8 images with titles."""
    n = max(1, len(images))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(size * cols, size * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], interpolation="nearest")
            if titles and k < len(titles):
                ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig


def patch_figure(true_color: np.ndarray, false_color: np.ndarray, label_rgb: np.ndarray | None,
                 title: str = "", alpha: float = 0.45) -> Figure:
    """A patch: true colour, NIR false colour, and the label overlaid on true colour."""
    panels = [true_color, false_color]
    titles = ["true colour (R,G,B)", "false colour (NIR,R,G)"]
    if label_rgb is not None:
        blend = (true_color.astype(float) * (1 - alpha) + label_rgb.astype(float) * alpha).astype(np.uint8)
        panels.append(blend)
        titles.append("label overlay")
    fig = images_figure(panels, titles, cols=3, size=2.6)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


