"""Malformed specs: each fails with a typed error whose message names the problem.

Every case runs twice: through the Python API (``load_spec`` + ``check_spec``) and
through the CLI (``mlwf validate``: exit 2, one ``mlwf: error:`` line, no traceback).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlwf_nb.cli import main
from mlwf_nb.errors import BackendError, HPOError, MlwfError, SpecError
from mlwf_nb.runs import check_spec
from mlwf_nb.safety import UnsafeNameError
from mlwf_nb.spec import load_spec

# (case id, spec YAML text or None for the tiny preset, --set overrides, error type, message regex)
CASES = [
    ("unknown-top-key", "bogus: 1\n", [], SpecError, r"unknown key 'bogus'"),
    ("unknown-nested-key", "train: {epoch: 3}\n", [], SpecError, r"unknown key 'train.epoch'"),
    ("epochs-not-int", "train: {epochs: ten}\n", [], SpecError, r"train.epochs must be an integer"),
    ("epochs-negative", "train: {epochs: -3}\n", [], SpecError, r"train.epochs must be >= 1"),
    ("epochs-zero", None, ["train.epochs=0"], SpecError, r"train.epochs must be >= 1"),
    ("bool-for-int", "train: {batch_size: true}\n", [], SpecError, r"train.batch_size must be an integer"),
    ("float-as-text", "train: {learning_rate: fast}\n", [], SpecError, r"train.learning_rate must be a number"),
    ("lr-zero", "train: {learning_rate: 0}\n", [], SpecError, r"train.learning_rate must be > 0"),
    ("retries-negative", None, ["execution.retries=-1"], SpecError, r"execution.retries must be >= 0"),
    ("hpo-min-gt-max",
     "hpo: {strategy: random, space: [{name: train.learning_rate, type: float, min: 0.1, max: 0.01}]}\n",
     [], SpecError, r"min 0.1 > max 0.01"),
    ("hpo-log-min-zero",
     "hpo: {strategy: random, space: [{name: train.learning_rate, type: float, min: 0, max: 1, log: true}]}\n",
     [], SpecError, r"log scale needs min > 0"),
    ("hpo-empty-space", "hpo: {strategy: random}\n", [], SpecError, r"hpo.space is empty"),
    ("hpo-empty-choices", "hpo: {strategy: grid, space: [{name: model.width, type: choice}]}\n", [],
     SpecError, r"choices is empty"),
    ("unknown-strategy", "hpo: {strategy: genetic, space: [{name: model.width, type: int, min: 4, max: 8}]}\n", [],
     HPOError, r"unknown HPO strategy 'genetic'; available HPO strategies: .*bayesian.*set hpo.strategy"),
    ("unknown-optimizer", None, ["train.optimizer=adagrad"], SpecError, r"train.optimizer must be one of"),
    ("unknown-backend", None, ["execution.backend=slurm"], BackendError, r"unknown backend 'slurm'"),
    ("unknown-pipeline", "pipeline: galaxies\n", [], SpecError, r"unknown pipeline 'galaxies'"),
    ("unknown-model", "model: {name: vgg99}\n", [], SpecError, r"unknown model 'vgg99'.*small_cnn"),
    ("invalid-yaml", "train: {epochs: [1, 2\n", [], SpecError, r"not valid YAML \(line \d+"),
    ("python-object-tag", "name: !!python/object/apply:os.system ['touch /tmp/mlwf-pwned']\n", [],
     SpecError, r"not valid YAML.*python/object"),
    ("spec-is-a-list", "- train\n- epochs\n", [], SpecError, r"a spec is a mapping"),
    ("section-is-a-scalar", "train: 5\n", [], SpecError, r"train must be a mapping"),
    ("ratios-not-one", "split: {train: 0.5, val: 0.3, test: 0.3}\n", [], SpecError, r"must sum to 1"),
    ("ratio-out-of-range", None, ["split.val=1.5"], SpecError, r"split.val must be <= 1"),
    ("empty-patch-sizes", "patches: {sizes: []}\n", [], SpecError, r"patches.sizes must be a non-empty"),
    ("version-from-future", "version: 99\n", [], SpecError, r"version must be <= 1"),
    ("run-name-escapes", "name: ../../etc\n", [], UnsafeNameError, r"'../../etc' is not a safe name"),
    ("run-name-absolute", None, ["name=/tmp/evil"], UnsafeNameError, r"'/tmp/evil' is not a safe name"),
    ("override-without-equals", None, ["train.epochs"], SpecError, r"not of the form key.path=value"),
    ("override-unknown-key", None, ["train.epoks=3"], SpecError, r"unknown key 'train.epoks'"),
    ("override-into-value", None, ["train.epochs.x=3"], SpecError, r"is a value, not a section"),
    ("duplicate-key", "train:\n  epochs: 2\n  batch_size: 8\n  epochs: 3\n", [], SpecError,
     r"line 4.*key 'epochs' is given twice \(first on line 2\)"),
    ("duplicate-section", "train: {epochs: 2}\nsplit: {seed: 1}\ntrain: {epochs: 3}\n", [], SpecError,
     r"key 'train' is given twice"),
    ("hpo-unknown-key",
     "hpo: {strategy: random, space: [{name: train.learnin_rate, type: float, min: 0.001, max: 0.01}]}\n",
     [], SpecError, r"hpo.space\[0\].name: unknown key 'train.learnin_rate'.*learning_rate"),
    ("hpo-section-as-key", "hpo: {strategy: grid, space: [{name: train, type: choice, choices: [1]}]}\n", [],
     SpecError, r"'train' is a section, not a value"),
    ("hpo-float-on-int-key",
     "hpo: {strategy: random, space: [{name: train.epochs, type: float, min: 1, max: 4}]}\n", [],
     SpecError, r"train.epochs is an integer setting; use type: int"),
    ("hpo-range-outside-bounds",
     "hpo: {strategy: random, space: [{name: model.dropout, type: float, min: 0.1, max: 1.5}]}\n", [],
     SpecError, r"leaves the key's bounds: model.dropout must be <= 0.95"),
    ("hpo-bad-choice",
     "hpo: {strategy: grid, space: [{name: train.optimizer, type: choice, choices: [adam, lbfgs]}]}\n", [],
     SpecError, r"choice 'lbfgs' for 'train.optimizer' is not valid"),
    ("nodata-word", None, ["stretch.nodata=none"], SpecError, r"stretch.nodata must be a number or 'dataset' or null"),
    ("value-range-reversed", None, ["stretch.value_range=[1, 0]"], SpecError,
     r"stretch.value_range must be \[lo, hi\] with lo < hi"),
    ("monitor-empty", None, ["train.monitor=''"], SpecError, r"train.monitor is empty"),
    ("write-scenes-not-bool", None, ["stretch.write_scenes=maybe"], SpecError,
     r"stretch.write_scenes must be true or false, got 'maybe'"),
]


def _write(tmp_path: Path, text: str | None) -> str | None:
    if text is None:
        return None
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "overrides", "etype", "pattern"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_api_raises_typed_error(tmp_path, text, overrides, etype, pattern):
    path = _write(tmp_path, text)
    with pytest.raises(etype, match=pattern) as info:
        check_spec(load_spec(path, preset=None if path else "tiny", overrides=overrides))
    assert isinstance(info.value, MlwfError)


@pytest.mark.parametrize(("text", "overrides", "etype", "pattern"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_cli_validate_one_line_exit_2(tmp_path, capsys, text, overrides, etype, pattern):
    path = _write(tmp_path, text)
    argv = ["validate", *([path] if path else []), *(x for o in overrides for x in ("--set", o))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlwf: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    import re

    assert re.search(pattern, err), err


def test_python_tag_builds_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError):
        load_spec(path)
    assert not marker.exists()


def test_unknown_backend_writes_nothing(tmp_path):
    from mlwf_nb.runs import submit

    with pytest.raises(BackendError, match="unknown backend"):
        submit("tiny", backend="slurm", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_model_fails_at_plan(tmp_path, capsys):
    assert main(["plan", "--set", "model.name=vgg99", "--out", str(tmp_path / "run")]) == 2
    assert "unknown model 'vgg99'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_spec_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read spec file" in capsys.readouterr().err


def test_real_process_prints_no_traceback(tmp_path):
    """One true subprocess per command family: exit 2 and one line on stderr."""
    (tmp_path / "bad.yaml").write_text("train: {epochs: -1}\n")
    mlwf = str(Path(sys.executable).parent / "mlwf")
    for argv in (["validate", str(tmp_path / "bad.yaml")],
                 ["run", "--set", "execution.backend=slurm", "--run-dir", str(tmp_path / "r")],
                 ["data", "verify", str(tmp_path)]):
        proc = subprocess.run([mlwf, *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert proc.stderr.startswith("mlwf: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
