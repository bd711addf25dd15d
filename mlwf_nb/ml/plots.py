"""Figures for evaluation: confusion matrix, training curves, class maps.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, works
headless); a notebook displays a returned Figure as is. ``save_figure`` writes
PNGs atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mlwf_nb._io import atomic_path
from mlwf_nb.errors import EvaluationError

__all__ = ["plot_confusion_matrix", "plot_history", "class_map_rgb", "plot_samples", "plot_boxes", "plot_sweep",
           "save_figure"]

Color = Sequence[int]


def _swatch_color(color: Color) -> tuple[float, float, float]:
    r, g, b = (float(c) for c in list(color)[:3])
    return (r / 255.0, g / 255.0, b / 255.0)


def plot_confusion_matrix(cm: Any, class_names: Sequence[str], class_colors: Sequence[Color] | None = None,
                          normalize: bool = True) -> Figure:
    """Heat map of a confusion matrix with counts (and row percentages) in each cell.

    Args:
        cm: Square matrix, rows truth, columns prediction.
        class_names: One name per row.
        class_colors: Optional RGB (0-255) colour per class, drawn as swatches
            beside the tick labels.
        normalize: Colour by row-normalised recall and print percentages.

    Returns:
        The Figure (one heat-map axes plus a colour bar).

    Raises:
        EvaluationError: ``cm`` does not match ``class_names`` / ``class_colors``.
    """
    counts = np.asarray(cm, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n) or (class_colors is not None and len(class_colors) != n):
        raise EvaluationError(f"confusion matrix {counts.shape} does not match {n} class names"
                              f"{'' if class_colors is None else f' and {len(class_colors)} colours'}")
    rows = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0) if normalize else counts
    # at least 4.4 x 3.8 in: with two or three classes the title, colour bar and labels still fit
    fig = Figure(figsize=(max(4.4, 1.6 + 0.9 * n), max(3.8, 1.2 + 0.8 * n)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, int(counts.max())))
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    threshold = (1.0 if normalize else float(max(1, counts.max()))) / 2
    for i in range(n):
        for j in range(n):
            text = f"{counts[i, j]}\n{shown[i, j]:.0%}" if normalize else f"{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(n), [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.suptitle("confusion matrix", fontsize=11)  # over the whole figure, never over the colour bar
    if class_colors is not None:
        _add_swatches(ax, [_swatch_color(c) for c in class_colors])
        ax.tick_params(axis="both", pad=16, length=0)
    return fig


def _add_swatches(ax: Any, colors: list[tuple[float, float, float]]) -> None:
    """Small coloured squares just outside the left and bottom edges of the heat map."""
    from matplotlib.patches import Rectangle

    n = len(colors)
    side = max(0.09, 0.22 * min(1.0, n / 5))  # in cells: few classes make big cells, keep the squares small
    for k, color in enumerate(colors):
        for xy in ((-0.5 - side - 0.06, k - side / 2), (k - side / 2, n - 0.5 + 0.06)):
            ax.add_patch(Rectangle(xy, side, side, facecolor=color, edgecolor="black", linewidth=0.5,
                                   clip_on=False, transform=ax.transData))


def plot_history(history: Mapping[str, Sequence[float]]) -> Figure:
    """Loss and accuracy curves (train and ``val_``) over epochs.

    Args:
        history: Metric lists, as in ``fit(...)["history"]``.

    Returns:
        The Figure: one axes per base metric present (``loss`` then ``accuracy``,
        then any other), each with the train and validation curves.
    """
    bases = [k for k in history if not k.startswith("val_")]
    bases += [k[4:] for k in history if k.startswith("val_") and k[4:] not in bases]
    bases.sort(key=lambda k: (k != "loss", k != "accuracy", k))
    fig = Figure(figsize=(4.5 * max(1, len(bases)), 3.5), layout="constrained")
    for i, base in enumerate(bases or ["loss"]):
        ax = fig.add_subplot(1, max(1, len(bases)), i + 1)
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            values = list(history.get(key, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs 1, 2, never 1.2, 1.4
        epochs = max((len(history.get(k, [])) for k in (base, f"val_{base}")), default=0)
        if epochs:
            ax.set_xlim(0.5, epochs + 0.5)  # one epoch too: a tick at 1, not 0.945 ... 1.050
        ax.set_ylabel(base)
        ax.set_title(base if epochs != 1 else f"{base} after 1 epoch")
        if base == "learning_rate" and ax.lines:  # chosen by hypergradient descent: spans decades
            ax.set_yscale("log")
        elif 0 < epochs <= FEW_EPOCHS:
            _few_points(ax, fractions=base != "loss")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best")
    return fig


#: up to this many epochs the curves are a few dots: values are written beside them
FEW_EPOCHS = 3


def _few_points(ax: Any, fractions: bool) -> None:
    """A few epochs read as numbers: the last value written beside its point, the y axis from 0.

    At one epoch the train value stands left of its point and the validation value right of it;
    later the values of the last epoch stand right of it, moved apart when they are close.
    Scores in [0, 1] (accuracy, Dice, IoU, mAP) get the whole 0-1 axis.
    """
    ys = [float(y) for line in ax.lines for y in line.get_ydata()]
    if ys and min(ys) >= 0:
        ax.set_ylim(0, 1.05 if fractions and max(ys) <= 1 else max(ys) * 1.25)
    lo, hi = ax.get_ylim()
    last = [float(line.get_ydata()[-1]) for line in ax.lines]
    close = len(last) == 2 and abs(last[0] - last[1]) < 0.08 * (hi - lo)
    for k, line in enumerate(ax.lines):
        line.set_markersize(8)
        x, y = line.get_xdata()[-1], float(line.get_ydata()[-1])
        left = len(line.get_xdata()) == 1 and k == 0
        dy = 0 if not close else (7 if last[k] >= last[1 - k] else -7)
        ax.annotate(f"{y:.3f}" if fractions else f"{y:.3g}", (x, y), xytext=(-9 if left else 9, dy),
                    textcoords="offset points", ha="right" if left else "left", va="center", fontsize=9,
                    color=line.get_color())


def class_map_rgb(class_map: Any, colors: Sequence[Color]) -> np.ndarray:
    """Colour a class map: pixel value ``k`` (a dataset index) becomes ``colors[k]``.

    Args:
        class_map: ``(H, W)`` integer map of dataset class indices.
        colors: RGB (0-255) colour per dataset index.

    Returns:
        ``(H, W, 3)`` uint8 image.

    Raises:
        EvaluationError: A value has no colour.
    """
    cmap = np.asarray(class_map)
    lut = np.asarray([list(c)[:3] for c in colors], dtype=np.uint8).reshape(-1, 3)
    if cmap.size and (cmap.min() < 0 or cmap.max() >= len(lut)):
        raise EvaluationError(f"class map has values in [{cmap.min()}, {cmap.max()}] but only {len(lut)} "
                              "colours are given (one per dataset class index)")
    return lut[cmap.astype(np.intp)]


def plot_samples(images: Any, titles: Sequence[str] | None = None, masks: Any = None, pred_masks: Any = None,
                 columns: int = 8, mask_color: Color = (255, 60, 60)) -> Figure:
    """A grid of sample images, optionally titled and with mask overlays.

    Args:
        images: ``(N, H, W, B)`` uint8 images (B = 1 shown in grey, 3 as RGB).
        titles: One title per image (e.g. ``"spiral"`` or ``"true spiral / pred irregular"``).
        masks: ``(N, H, W)`` truth masks, drawn as a contour.
        pred_masks: ``(N, H, W)`` predicted masks, drawn as a translucent fill.
        columns: Images per row.
        mask_color: RGB (0-255) of the predicted-mask fill.

    Returns:
        The Figure.

    Raises:
        EvaluationError: Shapes or lengths disagree.
    """
    imgs = np.asarray(images)
    n = len(imgs)
    if imgs.ndim != 4 or n == 0 or (titles is not None and len(titles) != n):
        raise EvaluationError(f"plot_samples needs (N, H, W, B) images (N >= 1) and N titles; got {imgs.shape} "
                              f"and {None if titles is None else len(titles)} titles")
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(1.6 * cols, 1.7 * rows), layout="constrained")
    fill = np.array([*_swatch_color(mask_color), 0.45])
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = imgs[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img[..., :3], cmap="gray", vmin=0, vmax=255)
        if pred_masks is not None:
            overlay = np.zeros((*img.shape[:2], 4))
            overlay[np.asarray(pred_masks[i]) > 0] = fill
            ax.imshow(overlay)
        if masks is not None and np.asarray(masks[i]).any():
            ax.contour(np.asarray(masks[i]) > 0, levels=[0.5], colors=["yellow"], linewidths=0.8)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
        ax.set_axis_off()
    return fig


def plot_boxes(images: Any, boxes: Sequence[Any], class_names: Sequence[str], class_colors: Sequence[Color],
               truth: Any = None, columns: int = 8) -> Figure:
    """A grid of images with detected boxes (solid, labelled with class and score) and true boxes (dashed).

    Args:
        images: ``(N, H, W, 3)`` uint8 images.
        boxes: One ``(M, 6)`` array per image: ``[x0, y0, x1, y1, score, class]`` in pixels.
        class_names: Names by class index.
        class_colors: RGB (0-255) by class index.
        truth: ``(N, K, 5)`` true boxes ``[x0, y0, x1, y1, class]`` (padding rows -1), or None.
        columns: Images per row.

    Returns:
        The Figure (with a legend of the classes).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    imgs = np.asarray(images)
    fig = plot_samples(imgs, columns=columns)
    colors = [_swatch_color(c) for c in class_colors]
    for i, ax in enumerate(fig.axes):
        for x0, y0, x1, y1, cls in ([] if truth is None else np.asarray(truth[i]).reshape(-1, 5)):
            if cls >= 0:  # pixel i covers [i - 0.5, i + 0.5] in imshow's coordinates
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.9, ls=(0, (2, 2)),
                                       ec=colors[int(cls)]))
        for x0, y0, x1, y1, score, cls in np.asarray(boxes[i]).reshape(-1, 6):
            color = colors[int(cls)]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2, ec=color))
            ax.text(x0 - 0.5, y0 - 1.0, f"{score:.2f}", color=color, fontsize=5, va="bottom")
    handles = [Line2D([], [], color=c, lw=2, label=n) for n, c in zip(class_names, colors, strict=True)]
    if truth is not None:
        handles.append(Line2D([], [], color="grey", lw=1, ls=(0, (2, 2)), label="truth (dashed)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7, frameon=False)
    return fig


def plot_sweep(table: Mapping[str, Any], max_records: int = 3) -> Figure:
    """A sweep's numeric records against its first parameter, one line per value of the others.

    Args:
        table: ``outputs/sweep.json``: ``parameters``, ``records`` and ``rows`` (``parameters``,
            ``status``, ``records`` each).
        max_records: Most records shown (one panel each).

    Returns:
        The Figure (a note instead of panels when nothing numeric was recorded).
    """
    rows = [r for r in table.get("rows", []) if r.get("status") == "ok"]
    names = [k for k in table.get("records", []) if any(_number(r["records"].get(k)) for r in rows)][:max_records]
    fig = Figure(figsize=(4.2 * max(len(names), 1), 3.2), layout="constrained")
    if not names:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no numeric records (mlwf_nb.record(name, value) in the notebook)", ha="center",
                va="center", fontsize=8)
        ax.set_axis_off()
        return fig
    params = list(table.get("parameters", []))
    varied = [p for p in params if len({str(r["parameters"][p]) for r in rows}) > 1] or params[:1]
    x_name, others = varied[0], varied[1:]  # a parameter with one value names no line
    xs = [r["parameters"][x_name] for r in rows]
    numeric_x = all(_number(v) for v in xs)
    ticks = sorted(set(map(str, xs)), key=[str(v) for v in xs].index)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(", ".join(f"{p}={r['parameters'][p]}" for p in others), []).append(r)
    for k, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), k + 1)
        for label, members in groups.items():
            pts = [(r["parameters"][x_name] if numeric_x else ticks.index(str(r["parameters"][x_name])),
                    r["records"][name]) for r in members if _number(r["records"].get(name))]
            pts.sort(key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label or None)
        if not numeric_x:
            ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        elif len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
        ax.set_xlabel(x_name)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if others and k == 0:
            ax.legend(fontsize=7)
    return fig


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically and return the path."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
