r"""Truncated rescaled equations against the exact stationary state as γ grows (docs/mathematics.md §6).

:func:`truncation_study` solves the stationary truncated equation of each order
(:mod:`meanfield.studies.truncated`) and fits the slopes of its errors against
:func:`~meanfield.studies.predictions.truncation_slopes`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.studies.fitting import exclude_unresolved, resolution_flags, slope_anchor
from meanfield.studies.native import check_model, increasing, native_point
from meanfield.studies.predictions import stationary_predictions, truncation_slopes
from meanfield.studies.study_dataset import fit_all, point_values, study_dataset
from meanfield.studies.sweep import run_points


def _truncation_point(model_json: str, gamma: float, orders: Sequence[int], cells: int,
                      points: int, window: float, target: Sequence[float]) -> Any:
    import xarray as xr

    import asymptotics as asy
    from meanfield.studies.truncated import truncated_stationary

    model = Model.from_json(model_json)
    native = native_point(model, gamma, cells, "stationary", None, {}, np.asarray(target, float))
    equation = asy.rescaled_equation(model, order=max(0, *orders))
    states = [truncated_stationary(model, gamma, k, points=points, window=window,
                                   equation=equation) for k in orders]
    per = ("order", "population")
    data = {"truncated_mean": (per, np.array([s.mean for s in states])),
            "truncated_var": (per, np.array([s.var for s in states])),
            "truncated_m": (per, np.array([s.m for s in states])),
            **{k: (("population",), native[k]) for k in ("mean", "var", "m")},
            "resolved": ((), bool(native["resolved"])),
            "cells_needed": ((), int(native["cells_needed"]))}
    return xr.Dataset(data, coords={"order": list(orders), "population": list(model.names)})


def truncation_study(model: Model, gammas: Sequence[float], orders: Sequence[int] = (-2, -1, 0, 1),
                     *, cells: int = 4000, points: int = 801, window: float = 10.0,
                     fit_from: float = 10.0, client: Any = None,
                     directory: str | os.PathLike[str] | None = None,
                     progress: bool = False) -> Any:
    r"""Truncated rescaled equations against the exact stationary state, as γ grows.

    For each truncation order ``K`` in ``orders`` (``−2``: the Ornstein–Uhlenbeck leading
    operator) the stationary truncated equation is solved (:mod:`meanfield.studies.truncated`)
    and compared with the exact stationary state of the finite-volume scheme (``cells`` cells,
    the state nearest the balance voltages). Quantities ``mean_K<K>`` (``|mean − mean_exact|``)
    and ``var_K<K>`` (``|var/var_exact − 1|``); predicted slopes from :func:`truncation_slopes`.
    A γ whose exact state the grid does not resolve is flagged (``resolved``), left out of the
    fits and named in ``attrs["excluded_points"]`` with one ``ResolutionWarning``.
    """
    check_model(model)
    gam = increasing("gammas", gammas)
    if isinstance(orders, (str, bytes)) or not isinstance(orders, Sequence) or not orders:
        bad_type("orders", orders, "a non-empty list of truncation orders >= -2")
    ks = [check_int("orders", k, minimum=-2) for k in orders]
    if len(set(ks)) != len(ks):
        bad_value("orders", list(orders), "distinct truncation orders")
    cells = check_int("cells", cells, minimum=3)
    fit_from = check_finite_number("fit_from", fit_from, nonnegative=True)
    if np.count_nonzero(gam >= fit_from) < 2:
        bad_value("fit_from", fit_from, f"a value leaving at least two gammas to fit (gammas "
                  f"{gam.tolist()})")
    pred = stationary_predictions(model)
    if "v" not in pred:
        bad_value("model", model, f"a model with a stationary expansion ({pred['reason']})")
    from functools import partial

    bound = {"orders": ks, "cells": cells, "points": points, "window": window,
             "target": pred["v"].tolist()}
    result = run_points(partial(_truncation_point, model.to_json(), **bound),
                        [{"gamma": float(g)} for g in gam], client=client, directory=directory,
                        progress=progress, description="truncation",
                        context={"study": "truncation_study", "model": model.to_json(), **bound})
    native = {k: point_values(result, k) for k in ("mean", "var", "m")}
    trunc = {k: point_values(result, f"truncated_{k}") for k in ("mean", "var", "m")}
    quantities, errors, predicted = [], [], []
    for i, k in enumerate(ks):
        slope_mean, slope_var = truncation_slopes(k)
        quantities += [f"mean_K{k}", f"var_K{k}"]
        errors += [np.abs(trunc["mean"][:, i] - native["mean"]),
                   np.abs(trunc["var"][:, i] / native["var"] - 1)]
        predicted += [slope_mean, slope_var]
    err = np.array(errors)
    resolved, needed = resolution_flags(result)
    fit_mask = (gam >= fit_from) & resolved
    slopes = fit_all(gam, err, fit_mask)
    observables = {k: (("gamma", "population"), v) for k, v in native.items()}
    observables["resolved"] = (("gamma",), resolved)
    observables.update({f"truncated_{k}": (("gamma", "order", "population"), v)
                        for k, v in trunc.items()})
    params = {"gammas": gam.tolist(), "orders": ks, "cells": cells, "points": points,
              "window": window, "fit_from": fit_from}
    extra = exclude_unresolved("truncation_study", "gamma", gam, resolved, needed)
    anchor = slope_anchor(gam, fit_mask)
    if anchor is not None:
        extra["slope_anchor"] = anchor
    ds = study_dataset("truncation_study", "gamma", gam, model, quantities, err, predicted, slopes,
                       observables, params, extra)
    labels = {f"mean_K{k}": f"|mean − exact|, drift to ε^{k}" for k in ks}
    labels.update({f"var_K{k}": f"|var/exact − 1|, drift to ε^{k}" for k in ks})
    ds.attrs["quantity_labels"] = json.dumps(labels)
    return ds.assign_coords(order=ks)
