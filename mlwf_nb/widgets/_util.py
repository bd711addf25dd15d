"""Small helpers shared by the widgets: images that size themselves, quiet control updates, static forms.

Static form: a widget displayed where no widget front end is attached (papermill,
nbconvert, a plain ``jupyter console``), or anywhere with ``MLWF_STATIC=1``, shows
what its children show as one HTML output — the HTML children as they are, images
inline at their natural size, controls as ``name: value`` — instead of a widget
view that a saved notebook could only show as ``Studio(children=...)``. The output
has a display id, so a widget that changes later (a run monitor) updates it in
place and the saved notebook keeps the final state. ``MLWF_STATIC=0`` forces the
live widgets.
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as W
from matplotlib.figure import Figure

from mlwf_nb.views.figures import figure_png
from mlwf_nb.views.render import MAX_IMAGE_WIDTH, image_html, png_size, progress_html

__all__ = ["set_image", "image_widget", "quiet_set", "widgets_attached", "static_html", "StaticForm", "wrap_row"]


def image_widget() -> W.Image:
    """An empty PNG image widget, hidden until it has an image, shown at its natural size (never stretched)."""
    return W.Image(format="png", layout=W.Layout(display="none", align_self="flex-start", max_width="100%",
                                                 object_fit="contain"))


def set_image(img: W.Image, fig: Figure | bytes | None, dpi: int = 80) -> None:
    """Show a figure (or PNG bytes) in an Image widget at its natural width; None hides the widget."""
    png = figure_png(fig, dpi=dpi) if isinstance(fig, Figure) else (fig or b"")
    img.value = png
    img.layout.display = "" if png else "none"  # an empty image would show a broken-image icon
    img.layout.width = f"{min(png_size(png)[0], MAX_IMAGE_WIDTH)}px" if png else ""


def quiet_set(widget: W.DOMWidget, value: object, handler: object, name: str = "value") -> None:
    """Set a control's value without firing ``handler`` (used to sync controls from the spec)."""
    widget.unobserve(handler, names=name)
    try:
        setattr(widget, name, value)
    finally:
        widget.observe(handler, names=name)


def wrap_row(children: list[W.Widget], gap: str = "12px") -> W.Box:
    """A row that wraps onto the next line when the notebook is too narrow (nothing clipped)."""
    return W.Box(children, layout=W.Layout(display="flex", flex_flow="row wrap", align_items="flex-start",
                                          grid_gap=gap, width="100%"))


def widgets_attached() -> bool:
    """Whether a widget front end (JupyterLab, Notebook 7, VS Code) is attached to this kernel.

    ``MLWF_STATIC=1`` says no and ``MLWF_STATIC=0`` says yes. Otherwise yes when a front end has
    opened ipywidgets' control channel, or when the running cell came from a client that can answer
    ``input()`` (``allow_stdin``): JupyterLab, Notebook and VS Code can, while papermill and
    ``nbconvert --execute`` (nbclient) never do, and they are the clients whose saved output
    could only keep a widget's text repr.
    """
    forced = os.environ.get("MLWF_STATIC", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return False
    if forced in ("0", "false", "no", "off"):
        return True
    if getattr(W.Widget, "_control_comm", None) is not None:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return bool(getattr(getattr(shell, "kernel", None), "_allow_stdin", False))


def _walk(w: Any, out: list[str]) -> None:
    if isinstance(w, str):  # HTML a widget adds to its static form
        out.append(w)
        return
    if getattr(w.layout, "display", "") == "none":
        return
    if isinstance(w, W.Tab):
        for i, child in enumerate(w.children):
            sub: list[str] = []
            _walk(child, sub)
            if sub:
                title = w.get_title(i) or f"tab {i + 1}"
                out.append(f"<div class='mlwf-static-tab'><b>{html.escape(title)}</b>{''.join(sub)}</div>")
    elif isinstance(w, W.Box):
        sub = []
        for child in w.children:
            _walk(child, sub)
        if sub and isinstance(w, W.VBox):
            out.extend(sub)
        elif sub:
            # flex-wrap, not the flex-flow shorthand: JupyterLab's sanitizer drops flex-flow from an
            # untrusted notebook (a papermill output), and the row no longer wraps
            out.append("<div style='display:flex;flex-wrap:wrap;gap:4px 16px;align-items:flex-start'>"
                       + "".join(f"<div style='flex:0 0 auto;max-width:100%'>{s}</div>" for s in sub) + "</div>")
    elif isinstance(w, W.HTML):
        if w.value and not w.value.startswith("<i>no "):  # placeholders such as "no checkpoints yet"
            out.append(w.value)
    elif isinstance(w, W.Image):
        if w.value:
            out.append(image_html(bytes(w.value)))
    elif isinstance(w, (W.FloatProgress, W.IntProgress)):
        out.append(progress_html(100.0 * (w.value - w.min) / ((w.max - w.min) or 1)))
    elif isinstance(w, W.Button):
        return
    elif hasattr(w, "value") and getattr(w, "description", None):
        value = w.value if not isinstance(w.value, float) else f"{w.value:g}"
        out.append(f"<span>{html.escape(str(w.description))}: <b>{html.escape(str(value))}</b></span>")


def static_html(*widgets: W.Widget | str) -> str:
    """What ``widgets`` show, as one HTML string (see the module docstring)."""
    out: list[str] = []
    for w in widgets:
        _walk(w, out)
    return "<div class='mlwf-static'>" + "".join(f"<div style='margin:4px 0'>{s}</div>" for s in out) + "</div>"


class StaticForm:
    """Mixin for a widget with a static form: shown where no widget front end is attached.

    Subclasses may override :meth:`static_parts` (default: the widget itself) to leave out
    children that other cells show.
    """

    _static_handle: Any = None
    #: whether the widget was displayed (live or as its static form)
    shown: bool = False

    def static_parts(self) -> list[W.Widget | str]:
        """The widgets (and HTML strings) whose content the static form shows."""
        return [self]  # type: ignore[list-item]

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        self.shown = True
        if widgets_attached():
            display(self._repr_mimebundle_(), raw=True)  # type: ignore[attr-defined]
            return
        self._static_handle = display(HTML(static_html(*self.static_parts())), display_id=True)

    def refresh_static(self) -> None:
        """Redraw the static form where it was displayed (nothing when it was not)."""
        if self._static_handle is not None:
            from IPython.display import HTML

            self._static_handle.update(HTML(static_html(*self.static_parts())))
