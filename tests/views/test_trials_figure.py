"""The HPO trials plot: objective against each hyper-parameter, live in the monitor."""

from __future__ import annotations

from mlwf_nb.views.figures import trials_figure


def _rows():
    return [{"round": 0, "trial": i, "objective": o, "status": "ok",
             "hp": {"train.learning_rate": lr, "model.name": name}}
            for i, (lr, name, o) in enumerate([(1e-4, "small_cnn", 0.5), (1e-3, "resnet50", 0.7),
                                               (1e-2, "small_cnn", 0.9), (3e-2, "resnet50", 0.6)])]


def test_one_panel_per_hyper_parameter_with_log_axis_for_wide_ranges():
    fig = trials_figure(_rows())
    axes = fig.axes
    assert [ax.get_xlabel() for ax in axes] == ["model.name", "train.learning_rate"]
    assert axes[1].get_xscale() == "log" and axes[0].get_xscale() == "linear"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["resnet50", "small_cnn"]
    best = axes[1].collections[1].get_offsets()[0]
    assert tuple(best) == (1e-2, 0.9)


def test_nothing_to_draw_without_finished_trials():
    assert trials_figure([]) is None
    assert trials_figure([{"objective": None, "hp": {"a": 1}}]) is None


def test_leaderboard_json_rows_with_values_work_too():
    rows = [{**r, "values": r.pop("hp")} for r in _rows()]
    fig = trials_figure(rows)
    assert len(fig.axes) == 2
