"""``mlwf synth OUT``: write a synthetic GID-like dataset from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlwf_nb.errors import MlwfError

__all__ = ["add_synth_parser", "cmd_synth"]


def add_synth_parser(subparsers: Any) -> None:
    """Add the ``synth`` sub-command to an ``argparse`` sub-parser group.

    The parser sets ``func=cmd_synth``, so ``args.func(args)`` runs it.
    """
    from mlwf_nb.data.synth import SOURCES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "synth", help="write a synthetic GID-like dataset (4-band uint16 scenes + labels)",
        description="Write a synthetic GID-like dataset folder: dataset.yaml, images/, labels/ and its "
                    "manifest.json (the generator publishes the dataset).")
    p.add_argument("out", metavar="OUT", help="dataset folder to create")
    p.add_argument("--scenes", type=int, default=12, help="number of scenes (default 12)")
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"),
                   help="scene height and width in pixels (default 256 256)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--sources", nargs="+", default=["GF-2", "GF-1", "JL-1"], metavar="SOURCE",
                   help=f"sensor sources, from {', '.join(SOURCES)} (default GF-2 GF-1 JL-1)")
    p.add_argument("--tile", type=int, default=256, help="GeoTIFF tile size (default 256)")
    p.add_argument("--name", default=None, help="dataset name (default gid-synth-HxW)")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``mlwf synth``: generate the dataset and print its summary.

    Returns:
        0 on success, 2 when the arguments are invalid (the message goes to stderr).
    """
    from mlwf_nb.data.synth import generate_dataset, summarize

    try:
        out = generate_dataset(args.out, scenes=args.scenes, height=args.size[0], width=args.size[1],
                               sources=tuple(args.sources), seed=args.seed, tile=args.tile,
                               name=args.name)
    except MlwfError as err:
        print(f"mlwf synth: {err}", file=sys.stderr)
        return 2
    print(summarize(out))
    print(f"wrote {out}")
    return 0
