"""Point tasks of the command line: one solve (or set of stationary states) as an ``xarray.Dataset``.

:func:`run_task` is what ``meanfield solve`` runs once and ``meanfield sweep`` runs per point; it
is a plain module-level function so Dask can ship it to workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meanfield.config import build_model, check_solve


def stationary_dataset(states: Any, model: Any) -> Any:
    """Stationary states stacked along a ``state`` dimension (dims state, population, x).

    With each state's resolution (:mod:`solvers.resolution`): ``resolved`` (1 resolved, 0 not),
    ``expected_error`` (the expected relative variance error per population), ``cells_needed``
    (0 when resolved) and ``attrs["resolution"]``, the words of the report of the worst state.
    """
    import numpy as np
    import xarray as xr

    pops = list(model.names)
    if not states:
        return xr.Dataset(attrs={"model": model.to_json(), "states": 0})
    per_state = ("state", "population")
    stable = np.array([{None: -1, False: 0, True: 1}[s.stable] for s in states], dtype=np.int8)
    data = {"rho": (("state", "population", "x"), np.array([s.rho for s in states])),
            "mean": (per_state, np.array([s.mean for s in states])),
            "var": (per_state, np.array([s.var for s in states])),
            "m": (per_state, np.array([s.m for s in states])),
            "residual": (("state",), np.array([s.residual for s in states])),
            "stable": (("state",), stable, {"meaning": "1 stable, 0 unstable, -1 not computed"})}
    attrs = {"model": model.to_json(), "gamma": states[0].gamma, "method": "stationary",
             "cells": int(states[0].x.size)}
    reports = [s.resolution for s in states]
    if all(r is not None for r in reports):
        data["resolved"] = (("state",), np.array([r.ok for r in reports], dtype=np.int8),
                            {"meaning": "1 resolved to the tolerance, 0 not (solvers.resolution)"})
        data["expected_error"] = (per_state, np.array([r.expected_error for r in reports]),
                                  {"meaning": "expected relative variance error"})
        data["cells_needed"] = (("state",), np.array([r.cells_needed for r in reports]))
        worst = max(reports, key=lambda r: float(np.max(r.expected_error)))
        attrs["resolution"] = worst.message()
    return xr.Dataset(data, coords={"state": np.arange(len(states)), "population": pops,
                                    "x": states[0].x}, attrs=attrs)


def check_vary(model_table: Mapping[str, Any], options: Mapping[str, Any],
               vary: Mapping[str, Any]) -> None:
    """Check every varied value of a sweep before any point runs (errors name the parameter).

    Each value of ``vary`` is checked on its own, with the other options as given:
    ``model.<p>`` values by building the model, solve options with :func:`check_solve`.
    """
    from meanfield.studies.sweep import check_points

    for name, values in vary.items():
        for value in values:
            if not name.startswith("model."):
                check_points([{name: value}])
                check_solve({**options, name: value}, key="sweep.vary", need_gamma=False)
                continue
            try:
                check_points([{name: value}])
                build_model(model_table, {name.removeprefix("model."): value})
            except (TypeError, ValueError) as err:
                raise type(err)(f"sweep.vary.{name}: {err}") from err


def run_task(model_table: Mapping[str, Any], options: Mapping[str, Any], *, progress: bool = False,
             **point: Any) -> Any:
    """Solve the model of ``model_table`` with ``options`` overridden by ``point``.

    Keys ``model.<p>`` of ``point`` are parameters of the named model, the others solve options.
    ``method = "stationary"`` returns every exact stationary state (:func:`stationary_dataset`);
    ``"sg"``/``"fipy"`` the time-dependent ``solvers.solve`` result (``Solution.to_xarray()``),
    with a progress bar over simulated time when ``progress`` is true.
    """
    import solvers
    from meanfield import __version__

    model_over = {k.removeprefix("model."): v for k, v in point.items() if k.startswith("model.")}
    solve_over = {k: v for k, v in point.items() if not k.startswith("model.")}
    opts = check_solve({**options, **solve_over})
    model = build_model(model_table, model_over)
    if opts["method"] == "stationary":
        extra = {k: opts[k] for k in ("starts", "stability") if k in opts}
        states = solvers.stationary_states(model, gamma=opts["gamma"], cells=opts["cells"], **extra)
        ds = stationary_dataset(states, model)
    else:
        kwargs = {k: opts[k] for k in ("t_final", "dt", "rtol", "atol", "save_at", "scheme")
                  if k in opts}
        ds = solvers.solve(model, gamma=opts["gamma"], cells=opts["cells"], method=opts["method"],
                           progress=progress, **kwargs).to_xarray()
    ds.attrs["meanfield_version"] = __version__
    return ds


def summary(ds: Any) -> Any:
    """The scalar observables of a task result: final time of a solve, every stationary state."""
    keep = [v for v in ("mean", "var", "m", "balance_residual", "mass", "residual", "stable",
                        "resolved")
            if v in ds.data_vars]
    out = ds[keep]
    if "t" in out.dims:
        out = out.isel(t=-1)
    return out
