"""Plots return Figures with the expected axes; class maps colour by dataset index."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from mlwf_nb.errors import EvaluationError
from mlwf_nb.ml.plots import class_map_rgb, plot_confusion_matrix, plot_history, save_figure

NAMES = ["built-up", "farmland", "water"]
COLORS = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_confusion_matrix_figure(tmp_path):
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    fig = plot_confusion_matrix(cm, NAMES, COLORS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # heat map + colour bar
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "8\n80%" and texts[1] == "2\n20%" and texts[-1] == "0\n0%"
    np.testing.assert_allclose(ax.images[0].get_array()[0], [0.8, 0.2, 0.0])
    swatches = [tuple(p.get_facecolor()[:3]) for p in ax.patches]
    assert swatches.count((0.0, 0.0, 1.0)) == 2  # water on both axes
    raw = plot_confusion_matrix(cm, NAMES, normalize=False)
    assert raw.axes[0].texts[0].get_text() == "8" and not raw.axes[0].patches
    out = save_figure(fig, tmp_path / "figs" / "cm.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["cm.png"]
    with pytest.raises(EvaluationError, match="3 class names"):
        plot_confusion_matrix(np.zeros((2, 2)), NAMES)


def test_history_figure():
    hist = {"loss": [1.0, 0.5, 0.3], "accuracy": [0.4, 0.7, 0.9], "val_loss": [1.1, 0.6, 0.5],
            "val_accuracy": [0.3, 0.6, 0.8]}
    fig = plot_history(hist)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    loss_ax = fig.axes[0]
    assert [ln.get_label() for ln in loss_ax.lines] == ["train", "validation"]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [1.1, 0.6, 0.5])
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])


def test_class_map_rgb():
    dataset_colors = [[0, 0, 0], *COLORS]  # index 0 = unlabeled
    cmap = np.array([[0, 1], [2, 3]])
    rgb = class_map_rgb(cmap, dataset_colors)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[1, 1], [0, 0, 255])
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 0])
    with pytest.raises(EvaluationError, match="4 colours"):
        class_map_rgb(np.array([[4]]), dataset_colors)


def test_history_epoch_ticks_are_whole_numbers():
    from mlwf_nb.ml.plots import plot_history

    fig = plot_history({"loss": [1.2, 0.6], "val_loss": [1.4, 1.3]})
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks == [1.0, 2.0]
    one = plot_history({"loss": [0.9]})
    one.canvas.draw()
    lo, hi = one.axes[0].get_xlim()
    assert [t for t in one.axes[0].get_xticks() if lo <= t <= hi] == [1.0]


def test_confusion_title_is_over_the_figure_not_the_colour_bar():
    from mlwf_nb.ml.plots import plot_confusion_matrix

    fig = plot_confusion_matrix([[5, 1], [2, 4]], ["background", "lung"], [(0, 0, 0), (255, 0, 0)])
    fig.canvas.draw()
    assert fig.get_suptitle() == "confusion matrix" and fig.axes[0].get_title() == ""
    title = fig._suptitle.get_window_extent()
    for ax in fig.axes:  # heat map and colour bar lie below the title
        assert ax.get_window_extent().y1 <= title.y0 + 1


def test_one_epoch_reads_as_numbers_on_axes_from_zero():
    """A first run of one epoch is two dots per panel: each labelled with its value, the axes start at 0."""
    fig = plot_history({"loss": [1.235], "val_loss": [1.47], "accuracy": [0.527], "val_accuracy": [0.407]})
    loss, acc = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss after 1 epoch", "accuracy after 1 epoch"]
    assert [t.get_text() for t in loss.texts] == ["1.24", "1.47"]
    assert [t.get_text() for t in acc.texts] == ["0.527", "0.407"]
    assert loss.get_ylim()[0] == 0 and acc.get_ylim() == (0, 1.05)  # accuracy on its whole 0-1 scale
    sides = [t.get_horizontalalignment() for t in acc.texts]
    assert sides == ["right", "left"]  # train left of its dot, validation right: never on top of each other
    many = plot_history({"loss": list(np.linspace(2, 1, 8)), "val_loss": list(np.linspace(2.2, 1.2, 8))})
    assert not many.axes[0].texts and many.axes[0].get_title() == "loss"  # a real curve speaks for itself
