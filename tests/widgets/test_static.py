"""Static forms: what a widget shows where no widget front end is attached (papermill, nbconvert, MLWF_STATIC=1)."""

from __future__ import annotations

import json
import re
import time

import ipywidgets as W
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

from mlwf_nb.rundir.events import job_state_event
from mlwf_nb.views import figures, render
from mlwf_nb.widgets import RunMonitor
from mlwf_nb.widgets._util import StaticForm, image_widget, set_image, static_html, widgets_attached


def _png(width: int) -> bytes:
    """A PNG about ``width`` px wide."""
    return figures.figure_png(figures.images_figure([np.zeros((8, 8, 3), np.uint8)], size=width / 80), dpi=80)


@pytest.fixture
def shell():
    """An IPython shell for display() to publish through (cleared again: other tests print instead)."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_static_html_shows_what_the_widgets_show_once_and_hides_what_is_empty():
    png = _png(160)
    shown, hidden = image_widget(), image_widget()
    set_image(shown, png)
    progress = W.FloatProgress(value=37.0, min=0, max=100, description="progress")
    tabs = W.Tab(children=[W.HTML("<table><tr><td>job</td></tr></table>"), W.VBox([shown, hidden])])
    tabs.set_title(0, "jobs")
    tabs.set_title(1, "training")
    page = static_html(W.VBox([W.HTML("<i>no checkpoints yet</i>"), progress, tabs,
                               W.Dropdown(description="backend", options=["local"], value="local"),
                               W.Button(description="Run")]))
    assert page.count("<img ") == 1  # the empty image is left out: no broken-image icon
    width = render.png_size(png)[0]
    assert f"width='{min(width, render.MAX_IMAGE_WIDTH)}'" in page and "max-width:100%" in page
    assert "37% done" in page and "backend: <b>local</b>" in page
    assert "<b>jobs</b>" in page and "<b>training</b>" in page  # every tab, titled
    assert "no checkpoints yet" not in page and "Run" not in page  # placeholders and buttons are not content


def test_a_row_wraps_and_never_shrinks_its_figures():
    a, b = image_widget(), image_widget()
    set_image(a, _png(400))
    set_image(b, _png(400))
    page = static_html(W.HBox([a, b]))
    # flex-wrap, not the flex-flow shorthand: JupyterLab's HTML sanitizer drops flex-flow from a saved output's
    # style (the row then never wrapped: tests/notebooks/test_browser.py saw a map outside its cell)
    assert "flex-wrap:wrap" in page and "flex-flow" not in page
    assert page.count("flex:0 0 auto") == 2  # a shrunk confusion matrix was unreadable
    # and every property of a static form is one the sanitizer keeps (a papermill output is untrusted)
    kept = {"display", "flex", "flex-wrap", "gap", "align-items", "max-width", "height", "margin"}
    used = {decl.split(":")[0].strip() for style in re.findall(r"style='([^']*)'", page) for decl in style.split(";")
            if decl.strip()}
    assert used <= kept, used - kept


def test_images_are_shown_at_natural_width_capped_at_the_notebook_width():
    small, wide = _png(160), _png(2000)
    assert f"width='{render.png_size(small)[0]}'" in render.image_html(small)
    assert f"width='{render.MAX_IMAGE_WIDTH}'" in render.image_html(wide)
    assert render.png_size(b"not a png") == (0, 0)


@pytest.mark.parametrize(("flag", "attached"), [("1", False), ("0", True)])
def test_mlwf_static_forces_the_choice(monkeypatch, flag, attached):
    monkeypatch.setenv("MLWF_STATIC", flag)
    assert widgets_attached() is attached


class _Form(StaticForm, W.VBox):
    pass


def test_a_static_form_is_one_html_output_that_updates_in_place(monkeypatch, shell):
    monkeypatch.setenv("MLWF_STATIC", "1")
    published: list[tuple[dict, dict]] = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, transient=None, update=False, **kw:
                        published.append((data, {"transient": transient or {}, "update": update})))
    label = W.HTML("<b>first</b>")
    form = _Form([label])
    assert not form.shown
    form._ipython_display_()
    assert form.shown
    label.value = "<b>second</b>"
    form.refresh_static()
    (first, meta1), (second, meta2) = published
    assert "first" in first["text/html"] and "second" in second["text/html"]
    assert "application/vnd.jupyter.widget-view+json" not in first
    assert meta2["update"] and meta1["transient"]["display_id"] == meta2["transient"]["display_id"]


def _events(tmp_path) -> None:
    evs = [{"type": "run_started", "total": 1},
           job_state_event(job="ID1", name="train_ID1", step="train", state="succeeded", try_=1, exit_code=0),
           {"type": "epoch", "job": "ID1", "epoch": 1, "metrics": {"loss": 1.0, "val_loss": 1.2}},
           {"type": "run_finished", "state": "Success"}]
    (tmp_path / "events.jsonl").write_text(
        "".join(json.dumps({"v": 1, "seq": i + 1, "ts": time.time(), **e}) + "\n" for i, e in enumerate(evs)))


def test_wait_shows_the_summary_only_for_a_monitor_nobody_saw(tmp_path, monkeypatch):
    """A displayed monitor already shows the run (its static form gets the final state): wait() adds nothing."""
    import mlwf_nb.widgets.monitor as monitor_module

    shown: list[str] = []
    monkeypatch.setattr(monitor_module, "show_state", lambda rs, **kw: shown.append(rs.state))
    _events(tmp_path)
    unseen = RunMonitor(tmp_path, poll_interval=0.02)
    assert unseen.wait(timeout=60) == "Success" and shown == ["Success"]
    seen = RunMonitor(tmp_path, poll_interval=0.02)
    seen.shown = True
    assert seen.wait(timeout=60) == "Success" and shown == ["Success"]


def test_the_static_monitor_keeps_each_table_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MLWF_STATIC", "1")
    _events(tmp_path)
    monitor = RunMonitor(tmp_path, poll_interval=0.02)
    assert monitor.wait(timeout=60, show=False) == "Success"
    page = static_html(*monitor.static_parts())
    assert len(re.findall(r"<b>jobs</b>", page)) == 1 and page.count("train_ID1") == 1
    assert page.count("mlwf-status") == 1
    assert page.count("<img ") == 1  # the curves (no confusion matrix, no map in these events)


def test_every_widget_has_a_live_form(tmp_path):
    """What a front end gets (the widget view and its text repr): a child named like an ipywidgets method broke it."""
    from mlwf_nb.widgets import Studio

    studio = Studio("tiny", run_dir=str(tmp_path / "run"))
    for widget in (studio, studio.picker, studio.patches, studio.augment, studio.hpo):
        bundle = widget._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/plain"]
    names = {n for cls in type(studio.augment).__mro__ if cls.__module__.startswith("ipywidgets") for n in vars(cls)}
    for widget in (studio, studio.picker, studio.patches, studio.augment, studio.hpo):
        assert not names & set(vars(widget)), f"{type(widget).__name__} hides ipywidgets' {names & set(vars(widget))}"
