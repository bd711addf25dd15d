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
    "figure_png", "trials_figure", "map_figure", "map_png",
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
        fig.tight_layout(rect=(0, 0, 1, 0.92))  # room for the title above the panel titles
    return fig




def trials_figure(rows: Sequence[Mapping[str, object]], objective: str = "objective",
                  max_params: int = 4) -> Figure | None:
    """HPO trials: the objective against each hyper-parameter (log axis where the values span decades).

    ``rows`` are leaderboard rows (``hp``: values by key path, ``objective``). Choices are
    drawn at their position in the sorted list of values seen. None when there is nothing to draw.
    """
    # monitor rows carry ``hp`` (from trial events); leaderboard.json rows carry ``values``
    done = [{**r, "hp": r.get("hp") or r.get("values")} for r in rows
            if isinstance(r.get("objective"), (int, float)) and isinstance(r.get("hp") or r.get("values"), Mapping)]
    names = sorted({str(k) for r in done for k in r["hp"] if not str(k).startswith("tuner/")})[:max_params]  # type: ignore[attr-defined]
    if not done or not names:
        return None
    fig = Figure(figsize=(3.2 * len(names), 2.8))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    ys = np.array([float(r["objective"]) for r in done])  # type: ignore[arg-type]
    best = int(np.argmax(ys))
    for ax, name in zip(axes, names, strict=True):
        raw = [r["hp"].get(name) for r in done]  # type: ignore[attr-defined]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            xs = np.array(raw, dtype=float)
            if xs.min() > 0 and xs.max() / xs.min() > 100:
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in raw})
            xs = np.array([labels.index(str(v)) for v in raw], dtype=float)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.scatter(xs, ys, s=18, c="tab:blue", alpha=0.8)
        ax.scatter(xs[best], ys[best], s=60, facecolors="none", edgecolors="tab:red", label="best")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel(objective, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{len(done)} trials", fontsize=9)
    fig.tight_layout()
    return fig


def map_figure(png: str, class_names: Sequence[str] = (), class_colors: Sequence[Sequence[int]] = (),
               max_px: int = 480, min_px: int = 240) -> Figure:
    """A classification map at a readable size: title, class legend and a scale bar.

    ``png`` is the map image a run wrote (``outputs/maps/<scene>.png``); a GeoTIFF beside
    it (same stem, ``.tif``) gives the pixel size for the scale bar in metres, else the bar
    counts pixels. Small maps are enlarged with nearest-neighbour (crisp class edges, never
    blurred), to ``min_px`` on the longer side; big ones are shown at most ``max_px``.
    """
    from pathlib import Path

    import matplotlib.image as mpimg
    from matplotlib.patches import Patch

    rgb = mpimg.imread(png)
    h, w = rgb.shape[:2]
    side = min(max_px, max(min_px, max(h, w)))
    dpi = 100
    fig = Figure(figsize=(side * w / max(h, w) / dpi + 1.9, side * h / max(h, w) / dpi + 0.5), dpi=dpi,
                 layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"classification map {Path(png).stem}", fontsize=9)
    res, unit = _pixel_size(Path(png).with_suffix(".tif"))
    bar = _nice(w / 4)
    ax.plot([w * 0.05, w * 0.05 + bar], [h * 0.95, h * 0.95], color="white", linewidth=4, solid_capstyle="butt")
    ax.plot([w * 0.05, w * 0.05 + bar], [h * 0.95, h * 0.95], color="black", linewidth=2, solid_capstyle="butt")
    label = f"{_nice(bar * res):g} {unit}" if res else f"{bar:g} px"
    ax.text(w * 0.05, h * 0.91, label, fontsize=8, color="black",
            bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "linewidth": 0})
    if class_names and class_colors:
        handles = [Patch(facecolor=(col[0] / 255, col[1] / 255, col[2] / 255), edgecolor="black", label=str(n))
                   for n, col in zip(class_names, class_colors, strict=False)]
        fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def map_png(path: str, class_names: Sequence[str] = (), class_colors: Sequence[Sequence[int]] = ()) -> bytes:
    """PNG bytes of a run's ``map`` artifact, as every view shows it.

    A classification map with a GeoTIFF beside it (land cover) is drawn by :func:`map_figure`
    (title, class legend, scale bar); any other map image (a template's predictions, a sweep's
    plot) is shown as the run wrote it. ``b""`` while the file cannot be read (not written yet).
    """
    from pathlib import Path

    if Path(path).with_suffix(".tif").is_file():
        return figure_png(map_figure(path, class_names, class_colors), dpi=100)
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _nice(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``value`` (scale-bar lengths)."""
    if value <= 0:
        return 0.0
    exp = 10 ** np.floor(np.log10(value))
    return float(max(m * exp for m in (1, 2, 5) if m * exp <= value))


def _pixel_size(tif: object) -> tuple[float, str]:
    """Pixel size and unit of a GeoTIFF (0 when there is none or it has no CRS)."""
    from pathlib import Path

    if not Path(str(tif)).is_file():
        return 0.0, ""
    try:
        import rasterio

        with rasterio.open(str(tif)) as src:
            if src.crs is None:
                return 0.0, ""
            unit = "m" if src.crs.is_projected else "deg"
            return float(abs(src.transform.a)), unit
    except Exception:
        return 0.0, ""
