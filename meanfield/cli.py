"""The ``meanfield`` command: ``demo``, ``solve``, ``sweep``, ``derive``, ``models``.

Each sub-command has ``--help``; configurations are TOML files (:mod:`meanfield.config`,
examples in ``examples/``). Errors in a configuration are printed as one line naming the key,
the value and what is allowed, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meanfield.errors import bad_value


def _demo(args: argparse.Namespace) -> int:
    from meanfield.demo import run

    run(out_dir=args.out, quick=args.quick, progress=not args.no_progress)
    return 0


def _models(args: argparse.Namespace) -> int:
    import inspect

    from meanfield.models import CATALOGUE

    for name, fn in CATALOGUE.items():
        print(name)
        doc = (fn.__doc__ or "").strip().splitlines()
        if doc:
            print(f"    {doc[0]}")
        for param in inspect.signature(fn).parameters.values():
            print(f"    {param.name} = {param.default!r}")
    return 0


def _print_table(ds: Any, label: str) -> None:
    """One line per (point/state, population) with mean, variance and m."""
    import numpy as np

    rows = ds.stack(row=[d for d in ds["mean"].dims if d != "population"]) if any(
        d != "population" for d in ds["mean"].dims) else ds.expand_dims(row=[0])
    print(f"{label:>12} {'population':>10} {'mean':>14} {'var':>12} {'m':>12}")
    for r in range(rows.sizes["row"]):
        row = rows.isel(row=r)
        tag = ",".join(f"{k}={np.asarray(row[k].values).item():g}" if np.asarray(
            row[k].values).dtype.kind in "fi" else f"{k}={row[k].values}"
            for k in ("gamma", "state") if k in row.coords)
        for p in row["population"].values:
            cell = row.sel(population=p)
            print(f"{tag:>12} {str(p):>10} {float(cell['mean']):14.8f} {float(cell['var']):12.4e} "
                  f"{float(cell['m']):12.6f}")


def _solve(args: argparse.Namespace) -> int:
    from meanfield import config
    from meanfield.studies import plotting, tasks

    cfg = config.load(args.config)
    if cfg.solve is None:
        bad_value("solve", None, f"a [solve] table in {cfg.source}")
    ds = tasks.run_task(cfg.model_table, cfg.solve)
    out = Path(args.out) if args.out else cfg.output.dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.output.name}.nc"
    ds.to_netcdf(path)
    summary = tasks.summary(ds)
    summary = summary.assign_coords(gamma=cfg.solve["gamma"])
    _print_table(summary, "gamma/state")
    print(f"results written to {path}")
    if cfg.output.figures:
        figure = plotting.densities_figure(ds, title=f"{cfg.source}: γ = {cfg.solve['gamma']:g}")
        fig_path = out / f"{cfg.output.name}-densities.png"
        figure.savefig(fig_path, dpi=110)
        plotting.close(figure)
        print(f"figure written to {fig_path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from meanfield import config
    from meanfield.studies import sweep, tasks

    cfg = config.load(args.config)
    if cfg.sweep is None:
        bad_value("sweep", None, f"a [sweep] table with vary = {{...}} in {cfg.source}")
    workers = args.workers if args.workers is not None else (
        None if args.scheduler else cfg.sweep.get("workers"))
    scheduler = args.scheduler if args.scheduler is not None else (
        None if args.workers else cfg.sweep.get("scheduler"))
    options = cfg.solve if cfg.solve is not None else {"method": "stationary", "cells": 1000}
    tasks.check_vary(cfg.model_table, options, cfg.sweep["vary"])  # before any point is sent
    points = sweep.grid_points(**cfg.sweep["vary"])
    out = Path(args.out) if args.out else cfg.output.dir
    source = Path(cfg.source).stem  # two configs in one folder never share files
    stem = cfg.output.name if source == cfg.output.name else f"{source}-{cfg.output.name}"
    directory = out / f"{stem}-points"
    fn = partial(tasks.run_task, cfg.model_table, options)
    result = sweep.run_sweep(fn, points, directory=directory, workers=workers,
                             scheduler=scheduler, processes=not args.threads,
                             progress=not args.no_progress, description=cfg.output.name,
                             context={"model": cfg.model_table, "solve": options})
    print(f"{len(points)} points: {result.computed} computed, {result.reused} reused from "
          f"{directory}")
    combined = sweep.combine(result.points, [tasks.summary(d) for d in result.datasets])
    path = out / f"{stem}.nc"  # dims: the varied parameters (model.sigma -> model_sigma)
    sweep.write_dataset(path, combined)
    names = list(cfg.sweep["vary"])
    print(" ".join(f"{n:>14}" for n in names) + "".join(
        f"{'mean ' + str(p):>14}{'var ' + str(p):>12}" for p in combined["population"].values))
    for point in result.points:
        row = sweep.select(combined, point)
        if "state" in row.dims:  # the first stationary state of the point
            row = row.isel(state=0)
        print(" ".join(f"{str(point[n]):>14}" for n in names) + "".join(
            f"{float(row['mean'].sel(population=p)):14.6f}{float(row['var'].sel(population=p)):12.4e}"
            for p in combined["population"].values))
    print(f"summary written to {path} (one file per point in {directory})")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from meanfield import config
    from meanfield.studies import derivations

    cfg = config.load(args.config)
    order = args.order if args.order is not None else cfg.derive["order"]
    print(derivations.report(cfg.model, order=order, latex=args.latex))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meanfield", description="Strong-coupling limit of "
                                     "mean-field neuron networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: γ from 1 to 1e4 on the default E/I model",
                          description="Solve the default excitatory/inhibitory model for γ from "
                          "1 to 1e4, compare with the symbolic predictions, print the errors with "
                          "fitted slopes, and write NetCDF results and PNG figures.")
    demo.add_argument("--out", default="meanfield-out", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="fewer γ values and cells (a smoke run)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)

    solve = sub.add_parser("solve", help="solve the model of a TOML configuration once",
                           description="Solve the [model] of CONFIG with the [solve] options "
                           "(exact stationary states, or a time-dependent solve) and write NetCDF "
                           "and a figure to the [output] folder.")
    solve.add_argument("config", metavar="CONFIG.toml", help="configuration file")
    solve.add_argument("--out", default=None, help="output folder (overrides [output] dir)")
    solve.set_defaults(func=_solve)

    swp = sub.add_parser("sweep", help="run a resumable sweep on Dask",
                         description="Run every combination of [sweep] vary on dask.distributed: "
                         "a local cluster of N workers, or an existing scheduler. Each finished "
                         "point is written at once; re-running skips finished points.")
    swp.add_argument("config", metavar="CONFIG.toml", help="configuration file")
    where = swp.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="workers of the local cluster (default: [sweep] workers or the CPUs)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler, e.g. tcp://host:8786")
    swp.add_argument("--threads", action="store_true",
                     help="local cluster with threads in this process instead of processes")
    swp.add_argument("--out", default=None, help="output folder (overrides [output] dir)")
    swp.add_argument("--no-progress", action="store_true", help="no progress bar")
    swp.set_defaults(func=_sweep)

    derive = sub.add_parser("derive", help="print the Hopf–Cole and rescaled equations",
                            description="Print the mean-field equations of the [model], their "
                            "Hopf–Cole transform and the rescaled (desingularized) equation.")
    derive.add_argument("config", metavar="CONFIG.toml", help="configuration file")
    derive.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    derive.add_argument("--order", type=int, default=None,
                        help="order of the rescaled expansion (default: [derive] order or 2)")
    derive.set_defaults(func=_derive)

    models = sub.add_parser("models", help="list the named models and their parameters",
                            description="List the named models (meanfield.models.CATALOGUE), "
                            "what they are, and their parameters with defaults.")
    models.set_defaults(func=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError) as err:
        print(f"meanfield {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
