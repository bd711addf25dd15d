"""Static checks over mlwf_nb/: every output is written through a temporary name and a rename,
and nothing is read with an unsafe loader (no pickle, no yaml.load without a SafeLoader, no eval/exec).

A new direct write fails here until it goes through :mod:`mlwf_nb._io` or joins ALLOWED with a reason.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "mlwf_nb"
FILES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)

WRITE = re.compile(r"open\([^)]*[\"'](w|wb|a|ab|x|xb|w\+|r\+b|rb\+)[\"']|np\.save\(|\.save\(|(?<!_io)\.write_text\(|"
                   r"(?<!_io)\.write_bytes\(|savefig\(|imsave\(|\.write\(str\(|os\.open\([^)]*O_(WRONLY|RDWR)")
# (file relative to mlwf_nb, text on the line): why a direct write is right there
ALLOWED = {
    ("backends/_executor.py", '"executor.log", "a"'): "append-only log, also the liveness lock",
    ("backends/_spawn.py", 'open(stderr, "ab")'): "adds why a job could not start to its stderr stream",
    ("backends/local.py", '"executor.log", "ab"'): "append-only log (the executor's own output)",
    ("backends/_leftovers.py", '"executor.log", "a"'): "append-only log; its lock makes cancel_lost the writer",
    ("backends/pegasus_relay.py", 'open(self.run / _RELAY_LOCK, "a")'): "an empty lock file (flock), never written",
    ("rundir/jobstate.py", 'open(self.path, "a"'): "jobstate.log is append-only (Pegasus's format)",
    ("ml/tensorboard.py", 'open(p, "ab")'): "TensorBoard event files are append-only records; start() "
                                             "writes the head through a temporary name",
    ("backends/_warm.py", 'open("/proc/self/comm", "w")'): "names a forked job's process for ps/top, not a file",
    ("rundir/events.py", "O_APPEND"): "events are appended whole lines (one writer per file)",
    ("rundir/events.py", 'open(self.path, "ab"'): "the relay appends to events.jsonl",
    ("rundir/events.py", 'open(path, "rb+")'): "cuts a torn last line off an append-only file",
    ("kernel.py", '(src / "kernel.json").write_text'): "written into a TemporaryDirectory, then installed",
    ("views/figures.py", "savefig(buf"): "into an in-memory buffer",
    ("cli.py", "os.open(os.devnull"): "redirects stdout to /dev/null, writes no file",
    ("workflow.py", "spec.save("): "RunSpec.save goes through _io.write_text",
    ("ml/train.py", "self.save(done)"): "calls save_checkpoint (atomic)",
    ("backends/pegasus_plan.py", 'open(run / LOG_FILE, "a'): "pegasus-plan.log is append-only (the planner's output)",
    ("backends/sandbox.py", 'open(stderr, "a"'): "adds the sandbox's verdict to the job's stderr stream",
}


def _write_sites() -> list[tuple[str, int, str]]:
    out = []
    for path in FILES:
        rel = path.relative_to(PKG).as_posix()
        if rel == "_io.py":
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if WRITE.search(code):
                out.append((rel, no, line.strip()))
    return out


def test_every_write_goes_through_a_temporary_name():
    bad = []
    for rel, no, line in _write_sites():
        if any(rel == f and text in line for f, text in ALLOWED):
            continue
        src = (PKG / rel).read_text()
        # a write to the temporary path of `with atomic_path(...) as tmp` (or an in-memory buffer)
        if re.search(r"\b(tmp|img_tmp|lab_tmp|buf)\b", line) and "atomic_path" in src:
            continue
        bad.append(f"{rel}:{no}: {line}")
    assert not bad, "direct writes to final names (use mlwf_nb._io.atomic_path / write_json / write_text, " \
                    "or add to ALLOWED with a reason):\n" + "\n".join(bad)


def test_allowed_exceptions_still_exist():
    sites = _write_sites()
    stale = [k for k in ALLOWED if not any(rel == k[0] and k[1] in line for rel, _, line in sites)]
    assert not stale, f"ALLOWED entries that match nothing any more (remove them): {stale}"


def _names(path: Path) -> set[str]:
    """Every name in the file; ``eval``/``exec`` only where they are not an attribute (``ev.eval`` of
    pycocotools' COCOeval is a dict, not the builtin)."""
    toks = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    return {t.string for prev, t in zip([None, *toks], toks, strict=False) if t.type == tokenize.NAME
            and not (t.string in ("eval", "exec") and prev is not None and prev.string == ".")}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PKG).as_posix())
def test_safe_loaders_only(path):
    names = _names(path)
    forbidden = names & {"pickle", "cPickle", "dill", "marshal", "shelve", "eval", "exec", "unsafe_load",
                         "full_load", "UnsafeLoader", "FullLoader"}
    assert not forbidden, f"{path}: uses {sorted(forbidden)}"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
        where = f"{path}:{node.lineno}: {ast.unparse(node)[:80]}"
        if owner == "yaml" and node.func.attr in ("load", "load_all"):
            assert "Safe" in kw.get("Loader", ""), f"{where}: yaml.load needs a SafeLoader"
        if owner in ("np", "numpy") and node.func.attr == "load":
            assert kw.get("allow_pickle", "False") == "False", f"{where}: allow_pickle must stay False"
        if node.func.attr in ("run", "Popen", "call", "check_output", "check_call"):
            assert kw.get("shell", "False") == "False", f"{where}: no shell=True"
        assert not (owner == "os" and node.func.attr == "system"), f"{where}: no os.system"


def test_custom_yaml_loaders_are_safe_loaders():
    import yaml

    from mlwf_nb import _yaml, schemas

    loaders = [v for mod in (schemas, _yaml) for k, v in vars(mod).items()
               if isinstance(v, type) and k.endswith("Loader")]
    assert len(loaders) >= 2 and all(issubclass(cls, yaml.SafeLoader) for cls in loaders)
