r"""Convergence studies: errors against γ, the cell width and the time step, with fitted slopes.

Every study returns an ``xarray.Dataset`` with

- ``errors`` (quantity, <abscissa>, population): the errors, one row per quantity;
- ``fitted_slope`` (quantity, population): the least-squares slope of ``log error`` against
  ``log <abscissa>`` (:func:`meanfield.studies.fitting.fit_slope`), and ``predicted_slope``
  (quantity): what the theory says;
- the raw observables, and in the attributes the study name, the abscissa, the model (JSON), the
  parameters (JSON), the package version and the fitted slopes (JSON);
- for ``gamma_convergence`` and ``grid_convergence``: ``resolved`` (per point), whether the
  grid resolves the state used (:mod:`solvers.resolution`). Unresolved points are left out of
  the slope fits; ``attrs["excluded_points"]`` (JSON) lists them, ``attrs["resolution"]`` says
  so in words, one ``ResolutionWarning`` is emitted, and ``attrs["slope_anchor"]`` is the
  abscissa of the last resolved point fitted (where a predicted-slope line should be anchored);
- for ``time_convergence`` (one grid for every step): ``attrs["resolution"]`` says whether the
  grid resolves the runs (one ``ResolutionWarning`` if not; the orders in time are then those of
  the semi-discrete system).

``meanfield.studies.plot(ds)`` (or ``ds.study.plot()``) draws the errors on log–log axes.
Points (one γ, one grid, one step) are independent: ``client=`` runs them on Dask, ``directory=``
writes each as it finishes and reuses finished ones (:mod:`meanfield.studies.sweep`).

The parts live by job, their public names importable from here too:
:mod:`meanfield.studies.native` (the solver at one point and its resolution flag),
:mod:`meanfield.studies.predictions` (the expansion's predictions and the predicted slopes),
:mod:`meanfield.studies.study_dataset` (the fits and the dataset) and
:mod:`meanfield.studies.truncation` (:func:`~meanfield.studies.truncation.truncation_study`).

Predicted slopes in γ for the stationary reversal-potential case (docs/mathematics.md §4–7), with
``v`` the balance voltages, ``μ`` the 1/γ correction of the mean, ``A_p = Σ_q g_pq S_q(v_q)``:

=====================  =====================================  ==========
quantity               error                                  slope
=====================  =====================================  ==========
``mean``               ``|mean − (v + μ/γ)|``                 −2
``balance_point``      ``|mean − v|`` (distance to balance)   −1
``var``                ``|γ A var / D − 1|``                  −1
``m``                  ``|m_q − S_q(v_q)|``                   −1
``balance_residual``   ``∫|h_p| ρ_p`` (distance to manifold)  −1/2
=====================  =====================================  ==========

(with ``order=2`` predictions the slopes of ``mean``, ``var``, ``m`` are −3, −2, −3; for a
non-concentrating model only ``balance_residual`` is reported, with slope −1).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from meanfield.balance import is_concentrating
from meanfield.errors import ResolutionWarning, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.studies.fitting import exclude_unresolved, resolution_flags, slope_anchor
from meanfield.studies.native import (
    NATIVE_METHODS,
    check_method,
    check_model,
    increasing,
    native_point,
    project,
    select_state,
)
from meanfield.studies.predictions import (
    gamma_slopes,
    stationary_predictions,
    truncation_slopes,
)
from meanfield.studies.study_dataset import fit_all, point_values, study_dataset
from meanfield.studies.sweep import run_points
from meanfield.studies.truncation import truncation_study

__all__ = ["NATIVE_METHODS", "gamma_convergence", "gamma_slopes", "grid_convergence",
           "is_concentrating", "project", "select_state", "stationary_predictions",
           "time_convergence", "truncation_slopes", "truncation_study"]


def _gamma_point(model_json: str, gamma: float, cells: int, method: str, t_final: float | None,
                 options: Mapping[str, Any], target: Sequence[float] | None,
                 rescaled_cells: int | None, rescaled_t_final: float | None) -> Any:
    import xarray as xr

    model = Model.from_json(model_json)
    tgt = None if target is None else np.asarray(target, dtype=float)
    native = native_point(model, gamma, cells, method, t_final, options, tgt)
    per_pop = ("population",)
    data = {k: (per_pop, native[k]) for k in ("mean", "var", "m", "balance_residual")}
    data.update(resolved=((), bool(native["resolved"])),
                cells_needed=((), int(native["cells_needed"])))
    if rescaled_cells is not None:
        import solvers

        sol = solvers.solve_rescaled(model, gamma=gamma, t_final=rescaled_t_final,
                                     cells=rescaled_cells, save_at=[0.0, rescaled_t_final])
        for k in ("mean", "var", "m", "balance_residual"):
            data[f"rescaled_{k}"] = (per_pop, np.asarray(getattr(sol, k))[-1])
    return xr.Dataset(data, coords={"population": list(model.names)})


# ----------------------------------------------------------------------------- studies
def gamma_convergence(model: Model, gammas: Sequence[float], *, cells: int = 4000,
                      method: str = "stationary", t_final: float | None = None, order: int = 1,
                      rescaled: bool = False, rescaled_cells: int = 200,
                      rescaled_t_final: float = 10.0, fit_from: float = 10.0,
                      options: Mapping[str, Any] | None = None, client: Any = None,
                      directory: str | os.PathLike[str] | None = None,
                      progress: bool = False) -> Any:
    r"""The native solver against the asymptotic predictions (and the rescaled solver) as γ grows.

    ``method="stationary"`` (default) takes the exact stationary state of the finite-volume
    scheme (the one nearest the balance voltages); ``"sg"``/``"fipy"`` the final frame of
    ``solvers.solve`` at ``t_final``. Predictions come from
    ``asymptotics.stationary_expansion(model, order=order)``. With ``rescaled=True`` the
    rescaled solver (``solvers.solve_rescaled``, ``rescaled_cells`` cells, until
    ``rescaled_t_final``) runs at every γ too; its errors appear as quantities ``rescaled_<q>``.
    Slopes are fitted over ``γ ≥ fit_from``; :func:`gamma_slopes` gives the predicted ones.

    When no prediction is available (e.g. a non-concentrating model) only ``balance_residual``
    is reported and ``attrs["predictions"]`` says why.
    """
    check_model(model)
    gam = increasing("gammas", gammas)
    cells = check_int("cells", cells, minimum=3)
    t_final = check_method(method, t_final)
    order = check_int("order", order, minimum=1)
    fit_from = check_finite_number("fit_from", fit_from, nonnegative=True)
    if np.count_nonzero(gam >= fit_from) < 2:
        bad_value("fit_from", fit_from, f"a value leaving at least two gammas to fit (gammas "
                  f"{gam.tolist()})")
    if rescaled:
        rescaled_cells = check_int("rescaled_cells", rescaled_cells, minimum=8)
        rescaled_t_final = check_finite_number("rescaled_t_final", rescaled_t_final, positive=True)
        import solvers

        if not hasattr(solvers, "solve_rescaled"):
            bad_value("rescaled", rescaled, "False: this installation has no "
                      "solvers.solve_rescaled")
    pred = stationary_predictions(model, order)
    have = "v" in pred
    opts = dict(options or {})
    shared = {"model_json": model.to_json(), "cells": cells, "method": method,
              "t_final": t_final, "options": opts,
              "target": pred["v"].tolist() if have else None,
              "rescaled_cells": rescaled_cells if rescaled else None,
              "rescaled_t_final": rescaled_t_final if rescaled else None}
    from functools import partial

    result = run_points(partial(_gamma_point, **shared), [{"gamma": float(g)} for g in gam],
                        client=client, directory=directory, progress=progress,
                        description="gamma", context={"study": "gamma_convergence", **shared})
    names = ("mean", "var", "m", "balance_residual")
    prefixes = ("", "rescaled_") if rescaled else ("",)
    obs = {p + k: point_values(result, p + k) for p in prefixes for k in names}
    slopes_of = gamma_slopes(order, concentrating=is_concentrating(model))
    observables = {k: (("gamma", "population"), v) for k, v in obs.items()}
    if have:
        predicted_mean = np.asarray(pred["predict_mean"](gam), dtype=float)
        predicted_var = np.asarray(pred["predict_var"](gam), dtype=float)
        predicted_m = np.asarray(pred["predict_m"](gam), dtype=float)
        observables.update({"balance_voltage": (("population",), pred["v"]),
                            "mu": (("population",), pred["mu"]),
                            "A": (("population",), pred["A"]),
                            "predicted_mean": (("gamma", "population"), predicted_mean),
                            "predicted_var": (("gamma", "population"), predicted_var),
                            "predicted_m": (("gamma", "population"), predicted_m)})
    quantities, errors, predicted = [], [], []
    for prefix in prefixes:
        rows = {}
        if have:
            rows = {"mean": np.abs(obs[prefix + "mean"] - predicted_mean),
                    "balance_point": np.abs(obs[prefix + "mean"] - pred["v"]),
                    "var": np.where(predicted_var > 0,
                                    np.abs(obs[prefix + "var"] / predicted_var - 1), np.nan),
                    "m": np.abs(obs[prefix + "m"] - predicted_m)}
        rows["balance_residual"] = obs[prefix + "balance_residual"]
        for name, row in rows.items():
            quantities.append(prefix + name)
            errors.append(row)
            predicted.append(slopes_of[name])
    err = np.array(errors)
    resolved, needed = resolution_flags(result)
    observables["resolved"] = (("gamma",), resolved)
    fit_mask = (gam >= fit_from) & resolved
    slopes = fit_all(gam, err, fit_mask)
    reason = (f"asymptotics.stationary_expansion(model, order={order})" if have else
              f"unavailable ({pred['reason']}); only balance_residual is reported")
    if have and np.any(predicted_var <= 0):
        invalid = gam[np.any(predicted_var <= 0, axis=1)].tolist()
        reason += (f"; its variance is not positive at gamma={invalid} (the expansion is not "
                   "valid there): no var error there, and none in the fits")
    params = {"gammas": gam.tolist(), "cells": cells, "method": method, "t_final": t_final,
              "order": order, "rescaled": rescaled, "fit_from": fit_from, "options": opts}
    extra = {"predictions": reason, **exclude_unresolved("gamma_convergence", "gamma", gam, resolved,
                                                 needed)}
    anchor = slope_anchor(gam, fit_mask)
    if anchor is not None:
        extra["slope_anchor"] = anchor
    return study_dataset("gamma_convergence", "gamma", gam, model, quantities, err, predicted, slopes,
                    observables, params, extra)


def _grid_point(model_json: str, cells: int, gamma: float, method: str, t_final: float | None,
                options: Mapping[str, Any], target: Sequence[float] | None) -> Any:
    import xarray as xr

    model = Model.from_json(model_json)
    tgt = None if target is None else np.asarray(target, dtype=float)
    native = native_point(model, gamma, cells, method, t_final, options, tgt)
    data = {k: (("population",), native[k]) for k in ("mean", "var", "m")}
    data.update(resolved=((), bool(native["resolved"])),
                cells_needed=((), int(native["cells_needed"])))
    data["rho"] = (("population", "cell"), native["rho"])
    data["edges"] = (("edge",), native["edges"])
    return xr.Dataset(data, coords={"population": list(model.names)})


def grid_convergence(model: Model, gamma: float, *, cells: Sequence[int], method: str = "stationary",
                     t_final: float | None = None, reference_cells: int | None = None,
                     expected_order: float = 2.0,
                     options: Mapping[str, Any] | None = None, client: Any = None,
                     directory: str | os.PathLike[str] | None = None,
                     progress: bool = False) -> Any:
    r"""Observed order in space: errors against the finest grid, as functions of ``h = (b−a)/cells``.

    Quantities: ``L1`` (``Σ|ρ − Πρ_ref| h``, the reference projected conservatively onto each
    grid), ``mean``, ``var``, ``m``. The reference is a grid of ``reference_cells`` cells
    (default 8 × the finest), so its own error is negligible in the fit.
    ``method="stationary"`` uses the exact stationary state: the first stable one on the coarsest
    grid (states sorted by the first population's mean), then on every grid the state nearest it;
    ``"sg"``/``"fipy"`` the solution at ``t_final``.
    """
    check_model(model)
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    sizes = increasing("cells", cells, integer=True, minimum=2)
    t_final = check_method(method, t_final)
    ref_cells = 8 * int(sizes[-1]) if reference_cells is None else check_int(
        "reference_cells", reference_cells, minimum=int(sizes[-1]) + 1)
    expected_order = check_finite_number("expected_order", expected_order)
    opts = dict(options or {})
    target = None
    if method == "stationary":  # choose the state once (stable, on the coarsest grid)
        target = native_point(model, gamma, int(sizes[0]), method, None, opts)["mean"].tolist()
    from functools import partial

    bound = {"gamma": gamma, "method": method, "t_final": t_final, "options": opts,
             "target": target}
    result = run_points(partial(_grid_point, model.to_json(), **bound),
                        [{"cells": int(c)} for c in [*sizes, ref_cells]], client=client,
                        directory=directory, progress=progress, description="grid",
                        context={"study": "grid_convergence", "model": model.to_json(), **bound})
    a, b = model.domain
    h = (b - a) / sizes
    ref = result.datasets[-1]
    rows: dict[str, list[np.ndarray]] = {q: [] for q in ("L1", "mean", "var", "m")}
    for ds in result.datasets[:-1]:
        edges = ds["edges"].values
        reference = project(ref["edges"].values, ref["rho"].values, edges)
        rows["L1"].append(np.abs(ds["rho"].values - reference) @ np.diff(edges))
        for q in ("mean", "var", "m"):
            rows[q].append(np.abs(ds[q].values - ref[q].values))
    err = np.array([rows[q] for q in rows])
    flags, needed = resolution_flags(result)
    if not flags[-1]:  # an unresolved reference makes every error meaningless
        flags[:] = False
    resolved = flags[:-1]
    slopes = fit_all(h, err, resolved)
    observables = {q: (("h", "population"), point_values(result, q)[:-1])
                   for q in ("mean", "var", "m")}
    observables.update({f"reference_{q}": (("population",), ref[q].values)
                        for q in ("mean", "var", "m")})
    observables["cells"] = (("h",), sizes)
    observables["resolved"] = (("h",), resolved)
    params = {"gamma": gamma, "cells": sizes.tolist(), "reference_cells": ref_cells,
              "method": method, "t_final": t_final, "options": opts}
    extra = exclude_unresolved("grid_convergence", "cells", sizes, resolved, needed)
    anchor = slope_anchor(h, resolved)
    if anchor is not None:
        extra["slope_anchor"] = anchor
    return study_dataset("grid_convergence", "h", h, model, list(rows), err,
                    [expected_order] * len(rows), slopes, observables, params, extra)


def _time_point(model_json: str, dt: float, gamma: float, cells: int, method: str, t_final: float,
                options: Mapping[str, Any]) -> Any:
    import xarray as xr

    import solvers

    model = Model.from_json(model_json)
    with warnings.catch_warnings():  # replaced by the study's single note on the grid
        warnings.simplefilter("ignore", ResolutionWarning)
        sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells, method=method,
                            dt=dt, save_at=[0.0, t_final], **options)
    data = {k: (("population",), np.asarray(getattr(sol, k))[-1]) for k in ("mean", "var", "m")}
    data["rho"] = (("population", "cell"), sol.rho[-1])
    data["h"] = (("cell",), np.diff(sol.edges))
    report = sol.resolution
    data.update(resolved=((), report is None or report.ok),
                cells_needed=((), 0 if report is None else report.cells_needed))
    if report is not None:
        data["expected_error"] = ((), float(np.max(report.expected_error)))
    return xr.Dataset(data, coords={"population": list(model.names)})


def _grid_note(result: Any, cells: int) -> dict[str, Any]:
    """``attrs["resolution"]`` of a time study (one grid for every step) and one warning if unresolved.

    The steps share the grid, so the observed order in time is still that of the semi-discrete
    system; the note says that its solution is not resolved in space.
    """
    flags, needed = resolution_flags(result)
    if flags.all():
        return {"resolution": f"the grid of {cells} cells resolves every run"}
    note = (f"the grid of {cells} cells does not resolve the solution (solvers.resolution): the "
            "observed orders in time are those of the semi-discrete system, not of the PDE"
            + (f"; use about cells={int(needed.max())} or more" if needed.max() > 0 else ""))
    warnings.warn(f"time_convergence: {note}", ResolutionWarning, stacklevel=3)
    return {"resolution": note}


def time_convergence(model: Model, gamma: float, *, dts: Sequence[float], t_final: float,
                     cells: int = 400, method: str = "sg", reference_dt: float | None = None,
                     expected_order: float = 2.0,
                     options: Mapping[str, Any] | None = None, client: Any = None,
                     directory: str | os.PathLike[str] | None = None,
                     progress: bool = False) -> Any:
    r"""Observed order in time: fixed steps ``dts``, errors at ``t_final`` against the smallest step.

    Quantities ``L1`` (densities, same grid), ``mean``, ``var``, ``m`` against a reference run
    with step ``reference_dt`` (default: the smallest step / 8, so that its own error is
    negligible in the fit). ``options`` go to ``solvers.solve`` (e.g. ``scheme="be"``
    with ``expected_order=1``).
    """
    check_model(model)
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    steps = increasing("dts", dts, minimum=2)
    t_final = check_finite_number("t_final", t_final, positive=True)
    ref_dt = steps[0] / 8 if reference_dt is None else check_finite_number(
        "reference_dt", reference_dt, positive=True)
    if ref_dt >= steps[0]:
        bad_value("reference_dt", reference_dt, f"a step smaller than min(dts) = {steps[0]:g}")
    if steps[-1] > t_final:
        bad_value("dts", list(dts), f"steps <= t_final = {t_final:g}")
    if method not in ("sg", "fipy"):
        bad_value("method", method, "'sg' or 'fipy' (a time-dependent method)")
    cells = check_int("cells", cells, minimum=3)
    expected_order = check_finite_number("expected_order", expected_order)
    opts = dict(options or {})
    from functools import partial

    bound = {"gamma": gamma, "cells": cells, "method": method, "t_final": t_final,
             "options": opts}
    result = run_points(partial(_time_point, model.to_json(), **bound),
                        [{"dt": float(d)} for d in [ref_dt, *steps]], client=client,
                        directory=directory, progress=progress, description="dt",
                        context={"study": "time_convergence", "model": model.to_json(), **bound})
    ref = result.datasets[0]
    rows: dict[str, list[np.ndarray]] = {q: [] for q in ("L1", "mean", "var", "m")}
    for ds in result.datasets[1:]:
        rows["L1"].append(np.abs(ds["rho"].values - ref["rho"].values) @ ds["h"].values)
        for q in ("mean", "var", "m"):
            rows[q].append(np.abs(ds[q].values - ref[q].values))
    err = np.array([rows[q] for q in rows])
    slopes = fit_all(steps, err, np.ones(steps.size, dtype=bool))
    observables = {q: (("dt", "population"), point_values(result, q)[1:])
                   for q in ("mean", "var", "m")}
    observables.update({f"reference_{q}": (("population",), ref[q].values)
                        for q in ("mean", "var", "m")})
    params = {"gamma": gamma, "dts": steps.tolist(), "reference_dt": ref_dt, "t_final": t_final,
              "cells": cells, "method": method, "options": opts}
    return study_dataset("time_convergence", "dt", steps, model, list(rows), err,
                         [expected_order] * len(rows), slopes, observables, params,
                         _grid_note(result, cells))
