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

COMPILING = "compiling kernels, first run only (numba caches them for later runs)"


def _kernels_cached() -> bool:
    """Whether numba's on-disk cache holds every compiled time-stepping kernel.

    Looks for the cache index file of each ``cache=True`` dispatcher of
    :mod:`solvers.kernels_numba` that is compiled on its own (not inlined); any doubt (numba
    internals changed) counts as not cached.
    """
    try:
        import os

        from numba.core.registry import CPUDispatcher

        import solvers.kernels_numba as kernels

        # functions inlined into others (inline="always") are never cached on their own
        dispatchers = [v for v in vars(kernels).values() if isinstance(v, CPUDispatcher)
                       and v.targetoptions.get("inline") != "always"]
        return bool(dispatchers) and all(
            os.path.exists(d._cache._cache_file._index_path) for d in dispatchers)
    except Exception:  # private numba API: assume a compilation
        return False


def _announce_compilation(state: dict[str, bool]) -> None:
    """Print :data:`COMPILING` once per command when numba kernels are about to be compiled."""
    from solvers.kernels import numba_available

    if state.get("announced") or not numba_available() or _kernels_cached():
        return
    state["announced"] = True
    print(COMPILING, file=sys.stderr, flush=True)


def _figure_formats(args: argparse.Namespace) -> tuple[str, ...]:
    return ("png", "pdf") if getattr(args, "pdf", False) else ("png",)


def _demo(args: argparse.Namespace) -> int:
    from meanfield.demo import run

    _announce_compilation(args.state)
    run(out_dir=args.out, quick=args.quick, progress=args.progress, formats=_figure_formats(args))
    return 0


def _plain(text: str) -> str:
    """Docstring text without reST markup (````code````, ``:func:`name```, ``r"`` prefixes)."""
    import re

    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "").replace("`", "")


def _parameter_docs(doc: str) -> dict[str, str]:
    """``name : meaning`` lines of a docstring's ``Parameters`` section."""
    import re

    found = {}
    section = doc.split("Parameters\n", 1)[1] if "Parameters\n" in doc else ""
    for line in section.splitlines():
        match = re.match(r"\s*(\w+)\s*:\s*(.+)", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _models(args: argparse.Namespace) -> int:
    import inspect
    import textwrap

    from meanfield.models import CATALOGUE

    for name, fn in CATALOGUE.items():
        doc = inspect.getdoc(fn) or ""
        summary = _plain(doc.split("\n\n", 1)[0]).replace("\n", " ")
        meanings = _parameter_docs(doc)
        print(name)
        print(textwrap.fill(summary, 96, initial_indent="    ", subsequent_indent="    "))
        print("    parameters (default):")
        for param in inspect.signature(fn).parameters.values():
            default = param.default
            shown = str(default) if hasattr(default, "free_symbols") else repr(default)
            print(f"      {param.name} = {shown}")
            if param.name in meanings:
                print(f"          {_plain(meanings[param.name])}")
        print()
    return 0


def _stability(code: Any) -> str:
    value = int(code)
    return {1: "stable", 0: "unstable"}.get(value, "not computed")


def _print_table(ds: Any, label: str) -> None:
    """One line per (point/state, population) with mean, variance, m and stability."""
    import numpy as np

    rows = ds.stack(row=[d for d in ds["mean"].dims if d != "population"]) if any(
        d != "population" for d in ds["mean"].dims) else ds.expand_dims(row=[0])
    has_stability = "stable" in ds
    print(f"{label:>12} {'population':>10} {'mean':>14} {'var':>12} {'m':>12}"
          + (f" {'stability':>13}" if has_stability else ""))
    for r in range(rows.sizes["row"]):
        row = rows.isel(row=r)
        tag = ",".join(f"{k}={np.asarray(row[k].values).item():g}" if np.asarray(
            row[k].values).dtype.kind in "fi" else f"{k}={row[k].values}"
            for k in ("gamma", "state") if k in row.coords)
        for p in row["population"].values:
            cell = row.sel(population=p)
            print(f"{tag:>12} {p!s:>10} {float(cell['mean']):14.8f} {float(cell['var']):12.4e} "
                  f"{float(cell['m']):12.6f}"
                  + (f" {_stability(cell['stable'].values):>13}" if has_stability else ""))


def _model_name(cfg: Any) -> str:
    """The model's name for titles: the catalogue name, or the populations of an explicit model."""
    name = cfg.model_table.get("name")
    return str(name) if name else f"model ({', '.join(cfg.model.names)})"


def _balance(model: Any) -> Any:
    """The principal balance point of ``model`` (``None`` when it does not concentrate)."""
    from meanfield.balance import balance_points

    try:
        return balance_points(model).v
    except ValueError:  # non-concentrating, mixed, or no balance point in the domain
        return None


def _solve(args: argparse.Namespace) -> int:
    from meanfield import config
    from meanfield.studies import plotting, tasks
    from meanfield.studies.plotting_transient import log_times

    cfg = config.load(args.config)
    if cfg.solve is None:
        bad_value("solve", None, f"a [solve] table in {cfg.source}")
    options = dict(cfg.solve)
    if options["method"] != "stationary":
        if "save_at" not in options and options.get("dt") is None and "t_final" in options:
            options["save_at"] = log_times(options["gamma"], options["t_final"]).tolist()
            print("no save_at given: saving at t = 0 and 4 log-spaced times a decade from "
                  f"0.1/γ to {options['t_final']:g}")
        if options["method"] == "sg":
            _announce_compilation(args.state)
    ds = tasks.run_task(cfg.model_table, options, progress=args.progress)
    ds.attrs[plotting.MODEL_NAME_ATTR] = _model_name(cfg)  # titles of later ds.study.plot()
    out = Path(args.out) if args.out else cfg.output.dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.output.name}.nc"
    ds.to_netcdf(path)
    summary = tasks.summary(ds)
    summary = summary.assign_coords(gamma=cfg.solve["gamma"])
    _print_table(summary, "gamma/state")
    print(f"results written to {path}")
    if cfg.output.figures:
        figure = plotting.densities_figure(ds, name=_model_name(cfg), balance=_balance(cfg.model))
        written = plotting.save(figure, out / f"{cfg.output.name}-densities",
                                formats=_figure_formats(args))
        plotting.close(figure)
        print(f"figure written to {', '.join(str(p) for p in written)}")
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
                             progress=args.progress, description=cfg.output.name,
                             context={"model": cfg.model_table, "solve": options})
    print(f"{len(points)} points: {result.computed} computed, {result.reused} reused from "
          f"{directory}")
    combined = sweep.combine(result.points, [tasks.summary(d) for d in result.datasets])
    path = out / f"{stem}.nc"  # dims: the varied parameters (model.sigma -> model_sigma)
    sweep.write_dataset(path, combined)
    names = list(cfg.sweep["vary"])
    has_stability = "stable" in combined
    print(" ".join(f"{n:>14}" for n in names) + "".join(
        f"{'mean ' + str(p):>14}{'var ' + str(p):>12}" for p in combined["population"].values)
        + (f" {'state 0':>13}" if has_stability else ""))
    for point in result.points:
        row = sweep.select(combined, point)
        if "state" in row.dims:  # the first stationary state of the point
            row = row.isel(state=0)
        print(" ".join(f"{point[n]!s:>14}" for n in names) + "".join(
            f"{float(row['mean'].sel(population=p)):14.6f}{float(row['var'].sel(population=p)):12.4e}"
            for p in combined["population"].values)
            + (f" {_stability(row['stable'].values):>13}" if has_stability else ""))
    print(f"summary written to {path} (one file per point in {directory})")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from meanfield import config
    from meanfield.studies import derivations

    cfg = config.load(args.config)
    order = args.order if args.order is not None else cfg.derive["order"]
    text = derivations.report(cfg.model, order=order, latex=args.latex or args.out is not None)
    if args.out is None:
        print(text, end="")
        return 0
    path = Path(args.out)
    if path.suffix != ".tex":
        bad_value("--out", str(path), "a file name ending in .tex")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(derivations.document(text, title=f"Asymptotics of the {_model_name(cfg)} "
                                         "mean-field model"))
    print(f"LaTeX document written to {path}")
    return 0


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress bars on standard error (default: on)")


def _pdf_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pdf", action="store_true",
                        help="also write every figure as PDF (vector, for print)")


def build_parser() -> argparse.ArgumentParser:
    from meanfield import __version__

    parser = argparse.ArgumentParser(prog="meanfield", description="Strong-coupling limit of "
                                     "mean-field neuron networks.")
    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: γ from 1 to 1e4 on the default E/I model",
                          description="Solve the default excitatory/inhibitory model for γ from "
                          "1 to 1e4, compare with the symbolic predictions, print the errors with "
                          "fitted slopes, and write NetCDF results and PNG figures.")
    demo.add_argument("--out", default="meanfield-out", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="fewer γ values and cells (a smoke run)")
    _progress_option(demo)
    _pdf_option(demo)
    demo.set_defaults(func=_demo)

    solve = sub.add_parser("solve", help="solve the model of a TOML configuration once",
                           description="Solve the [model] of CONFIG with the [solve] options "
                           "(exact stationary states with their stability, or a time-dependent "
                           "solve) and write NetCDF and a figure to the [output] folder.")
    solve.add_argument("config", metavar="CONFIG.toml", help="configuration file")
    solve.add_argument("--out", default=None, help="output folder (overrides [output] dir)")
    _progress_option(solve)
    _pdf_option(solve)
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
    _progress_option(swp)
    swp.set_defaults(func=_sweep)

    derive = sub.add_parser("derive", help="print the Hopf–Cole and rescaled equations",
                            description="Print the mean-field equations of the [model], their "
                            "Hopf–Cole transform and the rescaled (desingularized) equation, "
                            "then the meaning of every symbol.")
    derive.add_argument("config", metavar="CONFIG.toml", help="configuration file")
    derive.add_argument("--latex", action="store_true",
                        help="LaTeX (labelled equation environments) instead of plain text")
    derive.add_argument("--out", default=None, metavar="FILE.tex",
                        help="write a standalone LaTeX document to FILE.tex")
    derive.add_argument("--order", type=int, default=None,
                        help="order of the rescaled expansion (default: [derive] order or 2)")
    derive.set_defaults(func=_derive)

    models = sub.add_parser("models", help="list the named models and their parameters",
                            description="List the named models (meanfield.models.CATALOGUE), "
                            "what they are, and their parameters with meanings and defaults.")
    models.set_defaults(func=_models)
    return parser


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """One line per warning, without source paths: ``warning: <Category>: <message>``."""
    text = " ".join(str(message).split())
    print(f"warning: {category.__name__}: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import os
    import warnings

    args = build_parser().parse_args(argv)
    args.state = {}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # restored when the block ends
            code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a closed pipe is handled below
        return code
    except (ValueError, TypeError) as err:
        print(f"meanfield {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (e.g. `meanfield models | head -1`): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
