"""The step registry: declarations, CLI parsing, refusal of __main__ steps."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from mlwf_nb.errors import StepError
from mlwf_nb.steps import get_step, run_step, step
from mlwf_nb.steps.registry import FILE, FILES, _describe, available_steps, build_parser
from tests.steps import custom_steps


def test_declaration_classifies_parameters():
    sdef = get_step("sum-numbers")
    assert sdef is custom_steps.sum_numbers
    assert sdef.files == {"parts": FILES, "total": FILE}
    assert sdef.outputs == ("total",)
    assert sdef.inputs() == ["parts"]
    assert sdef.values == {"scale": float}
    assert sdef.spec_param == "spec"
    assert sdef.transformation == "sum_numbers"
    assert sdef.command_name == "tests.steps.custom_steps:sum_numbers"


def test_builtin_steps_are_listed():
    names = available_steps()
    for name in ("integrity", "split", "histogram", "fit-stretch", "preprocess", "train", "evaluate"):
        assert name in names


def test_step_by_reference():
    assert get_step("tests.steps.custom_steps:make_numbers").name == "make-numbers"


def test_run_step_parses_the_command_line(tmp_path):
    out = tmp_path / "deep" / "n.json"
    run_step("make-numbers", ["--numbers", str(out), "--count", "3", "--start", "4"])
    assert json.loads(out.read_text()) == [4, 5, 6]


def test_bad_arguments_exit_like_argparse(tmp_path):
    with pytest.raises(SystemExit):
        run_step("make-numbers", ["--numbers", str(tmp_path / "x"), "--count", "many"])


def test_steps_in_main_are_refused():
    def fn(out: Path) -> None:
        pass

    fake = types.FunctionType(fn.__code__, {"Path": Path}, "fn")
    fake.__module__ = "__main__"
    fake.__annotations__ = {"out": Path, "return": None}
    with pytest.raises(StepError, match="move it into a module"):
        step("from-a-cell", outputs=("out",))(fake)


def _int_param(count: int) -> None:
    pass


def _dict_param(items: dict) -> None:
    pass


def test_output_must_be_a_file_parameter():
    with pytest.raises(StepError, match="must be a Path"):
        _describe("broken", _int_param, ("count",), (), {})


def test_unsupported_parameter_type():
    with pytest.raises(StepError, match="has type"):
        _describe("broken-type", _dict_param, (), (), {})


def test_nested_functions_are_refused_too():
    with pytest.raises(StepError, match="move it into a module"):
        @step("nested")
        def nested(x: int) -> None:
            pass


def test_unknown_step_lists_available():
    with pytest.raises(StepError, match=r"available steps: .*integrity"):
        get_step("no-such-step")


def test_unimportable_reference():
    with pytest.raises(StepError, match="cannot import module"):
        get_step("no_such_module_xyz:thing")


def test_parser_marks_required_files():
    parser = build_parser(get_step("sum-numbers"))
    args = parser.parse_args(["--spec", "s.yaml", "--parts", "a", "b", "--total", "t"])
    assert args.parts == [Path("a"), Path("b")]
    assert args.scale == 1.0
