"""The ``meanfield`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from meanfield.demo import run

    run(out_dir=args.out)
    return 0


def _models(args: argparse.Namespace) -> int:
    import inspect

    from meanfield.models import CATALOGUE

    for name, fn in CATALOGUE.items():
        print(f"{name}{inspect.signature(fn)}")
        doc = (fn.__doc__ or "").strip().splitlines()
        if doc:
            print(f"    {doc[0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meanfield", description="Strong-coupling limit of "
                                     "mean-field neuron networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the main job on the default E/I model")
    demo.add_argument("--out", default="meanfield-out", help="output folder")
    demo.set_defaults(func=_demo)
    models = sub.add_parser("models", help="list the named models and their parameters")
    models.set_defaults(func=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
