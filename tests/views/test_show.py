"""Static views of a run: shown from its RunState, without ipywidgets."""

from __future__ import annotations

import subprocess
import sys

from matplotlib.figure import Figure

from mlwf_nb.rundir.events import job_state_event
from mlwf_nb.runs import RunState
from mlwf_nb.views import show_state


def test_views_import_no_ipywidgets():
    code = "import sys, mlwf_nb.views, mlwf_nb.views.scenes; print('ipywidgets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_show_state_of_a_failed_run(tmp_path, capsys):
    (tmp_path / "err").write_text("Traceback\nValueError: bad scene\n")
    rs = RunState(run_dir=tmp_path)
    events = [{"type": "run_started", "total": 2},
              {"type": "epoch", "job": "ID1", "epoch": 1, "metrics": {"loss": 1.0, "val_loss": 1.2}},
              job_state_event(job="ID1", name="train_ID1", step="train", state="succeeded", try_=1, exit_code=0),
              {**job_state_event(job="ID2", name="evaluate_ID2", step="evaluate", state="failed", try_=1,
                                 exit_code=1), "stderr": "err"},
              {"type": "artifact", "kind": "confusion_matrix", "matrix": [[2, 1], [0, 3]], "classes": ["a", "b"]},
              {"type": "trial_finished", "round": 0, "trial": 1, "objective": 0.5, "status": "COMPLETED"},
              {"type": "run_finished", "state": "Failure"}]
    rs.apply([{"seq": i, **e} for i, e in enumerate(events, 1)])
    shown = show_state(rs, title=str(tmp_path))
    assert shown["state"] == "Failure" and isinstance(shown["history"], Figure)
    assert isinstance(shown["confusion"], Figure) and [r["trial"] for r in shown["leaderboard"]] == [1]
    out = capsys.readouterr().out  # IPython.display outside a kernel prints what it shows
    assert "evaluate_ID2" in out or "HTML" in out


def _geo_map(folder, size=24, pixel_m=10.0):
    """A classification map as a land-cover run writes it: ``<scene>.png`` with its GeoTIFF beside it."""
    import matplotlib.image as mpimg
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[: size // 2] = (255, 0, 0)
    rgb[size // 2:] = (0, 0, 255)
    png = folder / "GF-2_000.png"
    mpimg.imsave(png, rgb)
    transform = from_origin(500000, 3000000, pixel_m, pixel_m)
    with rasterio.open(folder / "GF-2_000.tif", "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="uint8", crs="EPSG:32650", transform=transform) as dst:
        dst.write(np.zeros((1, size, size), np.uint8))
    return png


def test_a_land_cover_map_has_a_title_a_legend_and_a_scale_bar_in_metres(tmp_path):
    from mlwf_nb.views import figures, render

    png = _geo_map(tmp_path)
    fig = figures.map_figure(str(png), ["built-up", "water"], [[255, 0, 0], [0, 0, 255]])
    ax = fig.axes[0]
    assert ax.get_title() == "classification map GF-2_000"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["built-up", "water"]
    assert [t.get_text() for t in ax.texts] == ["50 m"]  # a quarter of 24 px of 10 m, rounded down to 1-2-5
    shown = figures.map_png(str(png), ["built-up", "water"], [[255, 0, 0], [0, 0, 255]])
    assert render.png_size(shown)[0] >= 240  # a 24 px map enlarged to be seen (nearest neighbour)


def test_other_map_images_are_shown_as_written_and_a_missing_one_is_not_shown(tmp_path):
    from mlwf_nb.views import figures

    other = tmp_path / "overlays.png"
    other.write_bytes(figures.figure_png(figures.images_figure([__import__("numpy").zeros((4, 4, 3), "uint8")])))
    assert figures.map_png(str(other)) == other.read_bytes()
    assert figures.map_png(str(tmp_path / "not-yet.png")) == b""


def test_show_state_shows_maps_as_the_monitor_does_and_scores_once(tmp_path, monkeypatch):
    import mlwf_nb.views.show as show_module
    from mlwf_nb.views import figures

    shown: list = []
    monkeypatch.setattr(show_module, "_show", lambda *objs: shown.extend(objs))
    png = _geo_map(tmp_path)
    classes = {"classes": ["built-up", "water"], "colors": [[255, 0, 0], [0, 0, 255]]}
    rs = RunState(run_dir=tmp_path)
    events = [{"type": "run_started", "total": 1},
              {"type": "artifact", "kind": "confusion_matrix", "matrix": [[2, 1], [0, 3]], **classes},
              {"type": "artifact", "kind": "detection", "map50": 0.5, "map": 0.3, "per_class": []},
              {"type": "artifact", "kind": "map", "path": str(png)},
              {"type": "run_finished", "state": "Success"}]
    rs.apply([{"seq": i, **e} for i, e in enumerate(events, 1)])
    out = show_state(rs)
    images = [o.data for o in shown if type(o).__name__ == "Image"]
    assert figures.map_png(str(png), classes["classes"], classes["colors"]) in images
    assert "detection" in out
    shown.clear()
    assert "detection" not in show_state(rs, scores=False)  # where the report, which has them, follows
    assert not any("<b>detection</b>" in str(o) for o in shown)


def test_show_report_puts_the_reports_headings_below_the_notebooks_sections(tmp_path, monkeypatch):
    from mlwf_nb.views import show

    report = tmp_path / "report.md"
    report.write_text("# Evaluation (global)\n\n- overall accuracy: 0.5\n\n## Per source\n\n| class | recall |\n")

    class _Run:  # what show_report reads of a run
        dir, state = tmp_path, "Success"

        def outputs(self):
            return {"report": report}

    shown = []
    monkeypatch.setattr(show, "_show", shown.append)
    assert show.show_report(_Run()) == report.read_text()  # the report's own text is returned
    assert shown[0].data.splitlines()[0] == "### Evaluation (global)" and "#### Per source" in shown[0].data
    assert "| class | recall |" in shown[0].data


def test_the_reports_map_links_work_from_the_report_and_from_the_notebook(tmp_path, monkeypatch):
    """report.md links its maps as maps/<scene>.png (beside it); in a notebook the links start at its folder."""
    from mlwf_nb.steps.landcover_eval import _report
    from mlwf_nb.views import show

    out = tmp_path / "runs" / "r1" / "outputs"
    maps = [out / "maps" / f"GF-2_003.{ext}" for ext in ("tif", "png")]
    metrics = {"overall_accuracy": 0.9, "kappa": 0.8, "miou": 0.7,
               "per_class": {"water": {"precision": 1, "recall": 1, "f1": 1, "iou": 1, "support": 3}}}
    text = _report("global", metrics, ["water"], maps)
    assert "[GF-2_003](maps/GF-2_003.png) ([GeoTIFF](maps/GF-2_003.tif))" in text
    assert "GF-2_003.png," not in text  # no bare file names
    (out / "maps").mkdir(parents=True)
    (out / "report.md").write_text(text)

    class _Run:
        dir, state = out.parent, "Success"

        def outputs(self):
            return {"report": out / "report.md"}

    shown = []
    monkeypatch.setattr(show, "_show", shown.append)
    monkeypatch.chdir(tmp_path)  # the notebook's folder
    show.show_report(_Run())
    assert "[GF-2_003](runs/r1/outputs/maps/GF-2_003.png)" in shown[0].data
    assert "(runs/r1/outputs/maps/GF-2_003.tif)" in shown[0].data
