"""HPOConfigurator: strategy, search-space rows, trials and parallelism for ``spec.hpo``."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import traitlets
import yaml

from mlwf_nb.errors import HPOError, SpecError
from mlwf_nb.hpo.strategies import get_strategy, strategy_names
from mlwf_nb.views import render
from mlwf_nb.widgets._util import StaticForm, wrap_row
from mlwf_nb.widgets.model import SpecModel

__all__ = ["HPOConfigurator", "space_problems"]
_TYPES = ["float", "int", "choice"]


def space_problems(rows: list[dict[str, Any]]) -> list[str]:
    """Problems of search-space rows (plain dicts of HPOParam fields); empty when valid."""
    out = []
    names = [r.get("name", "") for r in rows]
    for i, r in enumerate(rows):
        where = f"row {i + 1} ({r.get('name') or 'unnamed'})"
        if not r.get("name"):
            out.append(f"{where}: give a spec key path, e.g. train.learning_rate")
        elif names.count(r["name"]) > 1:
            out.append(f"{where}: {r['name']!r} appears more than once")
        if r.get("type") == "choice":
            if not r.get("choices"):
                out.append(f"{where}: list at least one choice (comma separated)")
            continue
        lo, hi = r.get("min"), r.get("max")
        if lo is None or hi is None:
            out.append(f"{where}: numeric parameters need min and max")
        elif lo > hi:
            out.append(f"{where}: min {lo:g} > max {hi:g}; swap them")
        elif r.get("log") and lo <= 0:
            out.append(f"{where}: log scale needs min > 0, got {lo:g}")
    return out


def _parse_choices(text: str) -> list[Any]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    return [yaml.safe_load(t) for t in items]


class _Row(W.HBox):
    """One search-space row: name, type, min, max, log, choices, remove."""

    def __init__(self, values: dict[str, Any], on_change, on_remove) -> None:
        self.c_name = W.Text(value=str(values.get("name", "")), placeholder="train.learning_rate",
                           layout=W.Layout(width="210px"))
        self.c_type = W.Dropdown(options=_TYPES, value=values.get("type", "float"), layout=W.Layout(width="90px"))
        self.c_min = W.FloatText(value=values.get("min") or 0.0, description="min", layout=W.Layout(width="150px"))
        self.c_max = W.FloatText(value=values.get("max") or 0.0, description="max", layout=W.Layout(width="150px"))
        self.c_log = W.Checkbox(value=bool(values.get("log")), description="log", indent=False,
                              layout=W.Layout(width="60px"))
        self.c_choices = W.Text(value=", ".join(map(str, values.get("choices") or [])), placeholder="a, b, c",
                              layout=W.Layout(width="160px"))
        self.c_remove = W.Button(icon="trash", layout=W.Layout(width="36px"))
        super().__init__([self.c_name, self.c_type, self.c_min, self.c_max, self.c_log, self.c_choices, self.c_remove])
        for ctl in (self.c_name, self.c_type, self.c_min, self.c_max, self.c_log, self.c_choices):
            ctl.observe(lambda _: on_change(), names="value")
        self.c_remove.on_click(lambda _: on_remove(self))

    def to_dict(self) -> dict[str, Any]:
        if self.c_type.value == "choice":
            return {"name": self.c_name.value.strip(), "type": "choice",
                    "choices": _parse_choices(self.c_choices.value)}
        return {"name": self.c_name.value.strip(), "type": self.c_type.value, "min": float(self.c_min.value),
                "max": float(self.c_max.value), "log": bool(self.c_log.value), "choices": []}


class HPOConfigurator(StaticForm, W.VBox):
    """Edit ``hpo.*``; invalid rows put the widget in an error state and leave the spec as it was.

    Traits: ``strategy``, ``trials``, ``parallel``, ``space`` (list of row dicts),
    ``problems`` (messages), ``valid``.
    """

    strategy = traitlets.Unicode("none")
    trials = traitlets.Int(8)
    parallel = traitlets.Int(2)
    space = traitlets.List()
    problems = traitlets.List()
    valid = traitlets.Bool(True)

    @traitlets.validate("strategy")
    def _registered(self, proposal):
        names = strategy_names()
        if proposal["value"] not in names:
            raise traitlets.TraitError(f"strategy must be one of {', '.join(names)}, got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("trials", "parallel")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise traitlets.TraitError(f"{proposal['trait'].name} must be >= 1, got {proposal['value']}")
        return proposal["value"]

    def __init__(self, model: SpecModel | None = None, **kwargs) -> None:
        self.model = model or SpecModel()
        h = self.model.spec.hpo
        self._strategy = W.Dropdown(description="strategy", options=strategy_names(), value=h.strategy)
        self._trials = W.BoundedIntText(description="trials", min=1, max=100_000, value=h.trials)
        self._parallel = W.BoundedIntText(description="parallel", min=1, max=10_000, value=h.parallel)
        self._rows = W.VBox()
        self._add = W.Button(description="Add parameter", icon="plus")
        self._error = W.HTML()
        super().__init__(children=[wrap_row([self._strategy, self._trials, self._parallel]), self._rows, self._add,
                                   self._error], **kwargs)
        for ctl, name in ((self._strategy, "strategy"), (self._trials, "trials"), (self._parallel, "parallel")):
            traitlets.link((ctl, "value"), (self, name))
        self._add.on_click(lambda _: self.add_row())
        for p in h.space:
            self.add_row(p.__dict__, apply=False)
        self.strategy, self.trials, self.parallel = h.strategy, h.trials, h.parallel
        self.observe(lambda _: self.apply(), names=["strategy", "trials", "parallel"])

    def add_row(self, values: dict[str, Any] | None = None, *, apply: bool = True) -> None:
        """Add a search-space row (default: a log-scaled learning rate)."""
        values = values or {"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2,
                            "log": True}
        self._rows.children = [*self._rows.children, _Row(values, self.apply, self._remove)]
        if apply:
            self.apply()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        """Replace all rows (tests and notebooks)."""
        self._rows.children = [_Row(r, self.apply, self._remove) for r in rows]
        self.apply()

    def _remove(self, row: _Row) -> None:
        self._rows.children = [r for r in self._rows.children if r is not row]
        self.apply()

    def apply(self) -> bool:
        """Validate the rows and, when valid, write ``hpo.*`` into the spec; returns validity."""
        self.space = [r.to_dict() for r in self._rows.children]
        problems = space_problems(self.space)
        if not problems and self.strategy != "none" and not self.space:
            problems = [f"strategy {self.strategy!r} needs at least one parameter: press 'Add parameter'"]
        settings = {"hpo.strategy": self.strategy, "hpo.trials": self.trials, "hpo.parallel": self.parallel,
                    "hpo.space": self.space}
        if not problems:
            problems = self._strategy_problems(settings)
        if not problems and not self.model.update(settings):
            problems = [self.model.error]
        self.problems = problems
        self.valid = not problems
        return self.valid

    def _strategy_problems(self, settings: dict[str, Any]) -> list[str]:
        """What the chosen strategy refuses in this space or its options (e.g. gradient: no numeric parameter)."""
        if self.strategy == "none":
            return []
        try:
            spec = self.model.spec.with_overrides(settings)
        except SpecError:
            return []  # SpecModel.update reports it
        try:
            get_strategy(spec.hpo, max_epochs=spec.train.epochs)
        except HPOError as err:
            return [str(err)]
        return []

    def static_parts(self) -> list[W.Widget | str]:
        """Strategy, trials and parallelism, the search space as a table, and any problem."""
        rows = [(r["name"], r["type"], *((", ".join(map(str, r["choices"])), "", "") if r["type"] == "choice"
                                          else (f"{r['min']:g} .. {r['max']:g}", "log" if r.get("log") else "", "")))
                for r in self.space]
        table = render.table_html(["parameter", "type", "values", "scale", ""], rows) if rows else ""
        return [self.children[0], table, self._error]

    @traitlets.observe("problems")
    def _on_problems(self, change) -> None:
        self._error.value = render.error_html("; ".join(change["new"]))
        for row in self._rows.children:
            bad = any(f"({row.c_name.value.strip() or 'unnamed'})" in p for p in change["new"])
            row.layout.border = "1px solid #e57373" if bad else ""
