"""The ``mlwf`` command line.

    mlwf run SPEC.yaml|--preset NAME [--set key.path=value ...] [--backend B] [--run-dir DIR] [--wait]
    mlwf status RUN_DIR [--json]      mlwf watch RUN_DIR      mlwf cancel RUN_DIR
    mlwf resume RUN_DIR [--wait]      mlwf plan ... --out DIR mlwf validate SPEC.yaml
    mlwf step NAME ...                mlwf data manifest|verify DIR
    mlwf synth OUT ...                mlwf sites              mlwf pipelines
    mlwf kernel install [--user|--sys-prefix|--prefix P]
    mlwf sweep NOTEBOOK --param name=v1,v2 ... [--backend B] [--run-dir DIR] [--wait]
    mlwf tensorboard RUN_DIR [--port N]

Errors of the toolkit (bad spec, bad data, missing run) print one clear line and
exit 2; no traceback. ``mlwf step`` (what a job runs) exits 65 (EX_DATAERR) on bad input,
which the local backend does not retry, and 75 after a checkpoint on SIGTERM. The
toolkit's notices print as ``mlwf: warning: ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from mlwf_nb.errors import BAD_INPUT_ERRORS, EXIT_BAD_INPUT, MlwfError, MlwfWarning

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # a step stopped to checkpoint (SIGTERM); the retry resumes


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help="a spec YAML file")
    p.add_argument("--preset", help="start from a preset: tiny, cpu, paper, or a pipeline's own (galaxy:tiny)")
    p.add_argument("--pipeline", help="a registered pipeline (default: the spec's, landcover)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a spec value (repeatable)")
    p.add_argument("--backend", help="local or pegasus (default: the spec's execution.backend)")


def _load(args: argparse.Namespace) -> Any:
    from mlwf_nb.spec import load_spec

    overrides = list(args.overrides)
    if getattr(args, "backend", None):
        overrides.append(f"execution.backend={args.backend}")
    if args.spec is not None:
        if args.preset:
            from mlwf_nb.errors import SpecError

            raise SpecError("give either a spec file or --preset, not both")
        if getattr(args, "pipeline", None):
            overrides.insert(0, f"pipeline={args.pipeline}")
        return load_spec(args.spec, overrides=overrides)
    from mlwf_nb.pipelines import preset_spec

    return preset_spec(args.preset or "tiny", getattr(args, "pipeline", None), overrides)


def cmd_run(args: argparse.Namespace) -> int:
    """Plan and start a run."""
    from mlwf_nb.runs import submit

    spec = _load(args)
    run = submit(spec, run_dir=args.run_dir, wait=False, jobs=args.jobs)
    print(run.dir)
    if not args.wait:
        return 0
    return _watch(run, quiet=args.quiet)


def cmd_plan(args: argparse.Namespace) -> int:
    """Write a run directory without running it."""
    from mlwf_nb.runs import plan

    print(plan(_load(args), args.out))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a spec: names, values, and what pegasus-plan would refuse (its files too, when the data exists)."""
    from mlwf_nb import planner_rules
    from mlwf_nb.errors import DatasetError
    from mlwf_nb.runs import check_spec
    from mlwf_nb.workflow import build_graph

    spec = check_spec(_load(args))
    where = f"site {spec.execution.site}, {planner_rules.data_configuration(spec.execution)}"
    try:
        graph = build_graph(spec, generate=False)
    except DatasetError as err:  # no data yet: the file rules wait for `mlwf plan`
        files = f"job files not checked ({' '.join(str(err).split())})"
    else:
        planner_rules.require(spec.execution, graph)
        files = f"the files of its {len(graph.nodes)} jobs pass the planner's rules"
    print(f"{args.spec or args.preset or 'tiny'}: valid ({spec.pipeline}, backend {spec.execution.backend}, "
          f"{where}); {files}")
    return 0


def _run(path: str) -> Any:
    from mlwf_nb.runs import Run

    return Run.attach(path)


def cmd_status(args: argparse.Namespace) -> int:
    """Print a run's status."""
    st = _run(args.run_dir).status()
    if args.json:
        print(json.dumps(st, indent=2, default=str))
    else:
        print(format_status(st))
    from mlwf_nb.rundir.states import FINAL_STATES

    state = st.get("mlwf", {}).get("state", st["dags"]["root"]["state"])
    return 1 if state in FINAL_STATES and state != "Success" else 0  # PlanFailed, Failure, Cancelled, Lost


def format_status(st: dict[str, Any]) -> str:
    """A human table: progress bar, job states, failures with stderr tails."""
    t = st["totals"]
    m = st.get("mlwf", {})
    state = m.get("state", st["dags"]["root"]["state"])
    width = 30
    done = int(width * t.get("percent_done", 0.0) / 100)
    lines = [f"[{'#' * done}{'.' * (width - done)}] {t.get('percent_done', 0.0):5.1f}%  {state}  "
             f"succeeded {t['succeeded']}  failed {t['failed']}  running {t['queued']}  "
             f"waiting {t['unready'] + t['ready']}  total {t['total']}"]
    jobs = m.get("jobs", {})
    if jobs:
        lines.append(f"{'job':40} {'state':12} {'exit':>5} {'tries':>5}")
        for name, j in jobs.items():
            exit_code = "" if j.get("exit_code") is None else j["exit_code"]
            lines.append(f"{name:40} {j.get('state', ''):12} {exit_code!s:>5} {j.get('tries', 0)!s:>5}")
    from mlwf_nb.rundir.states import exit_reason

    for name in m.get("failed_jobs", []):
        job = jobs.get(name, {})
        tail = job.get("stderr_tail") or ""
        reason = exit_reason(job.get("exit_code"), tail)
        lines.append(f"\nFAILED {name} (exit {job.get('exit_code')}): {reason}\n{tail}")
    if m.get("message"):  # e.g. PlanFailed: the planner's own words
        lines.append(f"\n{state}: {m['message']}")
    return "\n".join(lines)


def _watch(run: Any, quiet: bool = False, interval: float = 1.0) -> int:
    """Follow the run's events (the one follower) and print a progress line when it changes."""
    last, shown = "", 0.0
    follower = run.follower()
    for _ in follower.follow():
        now = time.monotonic()
        if quiet or now - shown < interval:
            continue
        line = format_status(follower.state.status()).split("\n")[0]
        if line != last:
            print(line, flush=True)
            last, shown = line, now
    state = follower.state.state
    if not quiet:
        print(format_status(run.status()), flush=True)
    elif state != "Success":  # --quiet drops the progress, never the reason of a failure
        print(format_status(run.status()), file=sys.stderr, flush=True)
    return 0 if state == "Success" else 1


def cmd_watch(args: argparse.Namespace) -> int:
    """Follow a run in the terminal until it ends."""
    return _watch(_run(args.run_dir))


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a run."""
    _run(args.run_dir).cancel()
    print(f"cancelled {args.run_dir}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a failed, cancelled or lost run."""
    run = _run(args.run_dir).resume()
    print(run.dir)
    return _watch(run, quiet=args.quiet) if args.wait else 0


def cmd_step(args: argparse.Namespace, rest: Sequence[str]) -> int:
    """Run one workflow step (what a Pegasus job runs)."""
    from mlwf_nb.steps.registry import run_step

    try:
        run_step(args.name, rest)
    except MlwfError as err:
        if getattr(err, "exit_code", None) == EXIT_TEMPFAIL:
            print(f"mlwf step {args.name}: {err}", file=sys.stderr)
            return EXIT_TEMPFAIL
        if isinstance(err, BAD_INPUT_ERRORS):  # the same input fails the same way: not worth a retry
            print(f"mlwf step {args.name}: error: {' '.join(str(err).split())}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Dataset manifests and verification."""
    from mlwf_nb.data.integrity import verify, write_manifest

    if args.action == "manifest":  # the dataset's owner publishes it (write_manifest refuses non-datasets)
        print(write_manifest(args.dir))
        return 0
    from mlwf_nb.data.dataset import Dataset

    report = verify(args.dir)
    ds = Dataset.open(args.dir)
    ds.check()
    print(f"{args.dir}: all {report.checked} files match the manifest; {len(ds.scenes)} scenes checked")
    return 0


def cmd_sites(args: argparse.Namespace) -> int:
    """List the site presets."""
    from mlwf_nb.sites import describe_sites

    print(describe_sites())
    return 0


def cmd_pipelines(args: argparse.Namespace) -> int:
    """List installed pipelines."""
    from mlwf_nb.pipelines import available_pipelines, get_pipeline

    for name in available_pipelines():
        p = get_pipeline(name)
        print(f"{name:12} {p.task:15} {p.description}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a notebook over every combination of parameter values, as one workflow."""
    from mlwf_nb.sweeps import format_results, parse_param, results, sweep

    params = dict(parse_param(p) for p in args.param)
    run = sweep(args.notebook, params, backend=args.backend, run_dir=args.run_dir, jobs=args.jobs,
                kernel=args.kernel or "", timeout=args.timeout, overrides=args.overrides)
    print(run.dir)
    if not args.wait:
        return 0
    code = _watch(run, quiet=args.quiet)
    print(format_results(results(run)))
    return code


def cmd_tensorboard(args: argparse.Namespace) -> int:
    """Serve a run's TensorBoard logs on 127.0.0.1 until interrupted."""
    from mlwf_nb.tensorboard_server import serve

    return serve(args.run_dir, port=args.port)


def cmd_kernel(args: argparse.Namespace) -> int:
    """Install the project's Jupyter kernel."""
    from mlwf_nb.kernel import install_kernel

    print(install_kernel(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix))
    return 0


def build_parser(synth: bool = True) -> argparse.ArgumentParser:
    """The argparse parser of ``mlwf``.

    Args:
        synth: Include the ``synth`` sub-command (its import loads rasterio, scipy
            and xarray: 1-2 s that ``mlwf status`` and friends need not pay).
    """
    parser = argparse.ArgumentParser(prog="mlwf", description="ML workflows on Pegasus, from the notebook")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="plan and start a run")
    _spec_args(p)
    p.add_argument("--run-dir", help="the new run directory (default: ./runs/<name>-<time>)")
    p.add_argument("--jobs", type=int, help="parallel jobs (local backend)")
    p.add_argument("--wait", action="store_true", help="wait for the run to end, showing progress")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("plan", help="write the workflow and catalogs, run nothing")
    _spec_args(p)
    p.add_argument("--out", required=True, help="the run directory to write")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("validate", help="validate a spec")
    _spec_args(p)
    p.set_defaults(func=cmd_validate)
    for name, func, helptext in (("status", cmd_status, "show a run's status"),
                                 ("watch", cmd_watch, "follow a run until it ends"),
                                 ("cancel", cmd_cancel, "cancel a run"),
                                 ("resume", cmd_resume, "resume a run (finished jobs are kept)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run_dir")
        if name == "status":
            p.add_argument("--json", action="store_true", help="the Pegasus-shaped status dictionary")
        if name == "resume":
            p.add_argument("--wait", action="store_true")
            p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=func)
    p = sub.add_parser("step", help="run one workflow step", add_help=False)
    p.add_argument("name")
    p.set_defaults(func=cmd_step, takes_rest=True)
    p = sub.add_parser("data", help="dataset manifest and verification")
    p.add_argument("action", choices=["manifest", "verify"])
    p.add_argument("dir")
    p.set_defaults(func=cmd_data)
    if synth:
        from mlwf_nb.data._synth_cli import add_synth_parser

        add_synth_parser(sub)
    p = sub.add_parser("sweep", help="run a notebook over a grid of parameter values (one workflow)")
    p.add_argument("notebook", help="a notebook with a cell tagged 'parameters'")
    p.add_argument("--param", action="append", default=[], required=True, metavar="NAME=V1,V2",
                   help="a parameter and its values (repeatable: every combination runs)")
    p.add_argument("--backend", help="local (default) or pegasus")
    p.add_argument("--run-dir", help="the new run directory (default: ./runs/sweep-<notebook>-<time>)")
    p.add_argument("--jobs", type=int, help="notebooks at once (local backend)")
    p.add_argument("--kernel", help="Jupyter kernel (default: the notebook's)")
    p.add_argument("--timeout", type=int, default=0, help="per-cell timeout in seconds (0: none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="another spec setting, e.g. execution.retries=0 (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait, then print the table of results")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("tensorboard", help="serve a run's TensorBoard logs on 127.0.0.1")
    p.add_argument("run_dir")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.set_defaults(func=cmd_tensorboard)
    sub.add_parser("sites", help="list site presets").set_defaults(func=cmd_sites)
    sub.add_parser("pipelines", help="list pipelines").set_defaults(func=cmd_pipelines)
    p = sub.add_parser("kernel", help="Jupyter kernel")
    p.add_argument("action", choices=["install"])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--user", action="store_true")
    g.add_argument("--sys-prefix", action="store_true")
    g.add_argument("--prefix")
    p.set_defaults(func=cmd_kernel)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """The toolkit's notices as one line (``mlwf: warning: ...``); other warnings as Python prints them."""
    if issubclass(category, MlwfWarning):
        print(f"mlwf: warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _python_warning(message, category, filename, lineno, file, line)


_python_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlwf`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    try:
        if argv[:1] == ["step"] and len(argv) >= 2 and not argv[1].startswith("-"):
            # every job runs this: skip building the full parser (its `synth` sub-command
            # imports rasterio, scipy and xarray, about 1-2 s a job)
            return cmd_step(argparse.Namespace(name=argv[1], func=cmd_step, takes_rest=True), argv[2:])
        wanted = next((a for a in argv if not a.startswith("-")), None)
        args = build_parser(synth=wanted in (None, "synth")).parse_args(argv)
        return int(args.func(args) or 0)
    except MlwfError as err:
        print(f"mlwf: error: {' '.join(str(err).split())}", file=sys.stderr)  # one line
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mlwf status RUN | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
