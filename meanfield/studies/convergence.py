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
  abscissa of the last resolved point fitted (where a predicted-slope line should be anchored).

``meanfield.studies.plot(ds)`` (or ``ds.study.plot()``) draws the errors on log–log axes.
Points (one γ, one grid, one step) are independent: ``client=`` runs them on Dask, ``directory=``
writes each as it finishes and reuses finished ones (:mod:`meanfield.studies.sweep`).

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

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.studies.fitting import exclude_unresolved, fit_slope, resolution_flags, slope_anchor
from meanfield.studies.sweep import run_points

NATIVE_METHODS = ("stationary", "sg", "fipy")


GAMMA_LABELS = {"mean": "|mean − predicted mean|", "balance_point": "|mean − v| (to balance point)",
                "var": "|var / predicted var − 1|", "m": "|m − predicted m|",
                "balance_residual": "∫|h_p| ρ_p (to balance manifold)"}
REFERENCE_LABELS = {"L1": "‖ρ − ρ_ref‖₁", "mean": "|mean − mean_ref|", "var": "|var − var_ref|",
                    "m": "|m − m_ref|"}


def is_concentrating(model: Model) -> bool:
    """Whether some coupling factor ``Φ_pq`` depends on ``x`` (the densities then concentrate)."""
    from meanfield.expressions import x

    return any(e.has(x) for row in model.phi for e in row)


def gamma_slopes(order: int = 1, *, concentrating: bool = True) -> dict[str, float]:
    """Predicted slopes in γ of the errors of :func:`gamma_convergence` (expansion ``order``).

    The distance to the balance manifold ``∫|h_p|ρ_p`` decays like the width ``γ^{-1/2}`` when
    the densities concentrate, and like ``1/γ`` in the non-concentrating balanced case, where
    ``γ h_p`` tends to a finite multiplier ``λ_p`` (docs/mathematics.md §4).
    """
    return {"mean": -(order + 1.0), "balance_point": -1.0, "var": -float(order),
            "m": -(order + 1.0), "balance_residual": -0.5 if concentrating else -1.0}


# ----------------------------------------------------------------------------- helpers
def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def _check_method(method: Any, t_final: Any) -> float | None:
    if method not in NATIVE_METHODS:
        bad_value("method", method, f"one of {', '.join(NATIVE_METHODS)}")
    if method == "stationary":
        if t_final is not None:
            bad_value("t_final", t_final, "None with method='stationary' (exact stationary states)")
        return None
    if t_final is None:
        bad_value("t_final", t_final, f"a final time > 0 with the time-dependent method {method!r}")
    return check_finite_number("t_final", t_final, positive=True)


def _increasing(name: str, values: Any, *, integer: bool = False, minimum: int = 2) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        bad_type(name, values, "a list of numbers")
    checked = [check_int(name, v, minimum=3) if integer else
               check_finite_number(name, v, positive=True) for v in values]
    arr = np.asarray(checked, dtype=int if integer else float)
    if arr.size < minimum or np.any(np.diff(arr) <= 0):
        bad_value(name, list(values), f"at least {minimum} strictly increasing values")
    return arr


def select_state(states: Sequence[Any], target: np.ndarray | None = None) -> Any:
    """The stable stationary state nearest ``target`` (means), or the only stable one."""
    if not states:
        raise RuntimeError("no stationary state found")
    stable = [s for s in states if s.stable is not False] or list(states)
    if target is not None:
        return min(stable, key=lambda s: float(np.max(np.abs(s.mean - target))))
    return stable[0]


def _native(model: Model, gamma: float, cells: int, method: str, t_final: float | None,
            options: Mapping[str, Any], target: np.ndarray | None = None) -> dict[str, Any]:
    """Final (or stationary) densities and observables of the native solver, with ``resolved``.

    ``resolved``/``cells_needed`` come from the resolution report of the state used (for the
    time-dependent methods: of the final frame); the solvers' own ``ResolutionWarning`` is
    replaced by the study's single warning listing the excluded points.
    """
    import warnings

    import solvers
    from meanfield.errors import ResolutionWarning
    from meanfield.numeric import numeric
    from solvers.observables import observe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResolutionWarning)
        if method == "stationary":
            # with a target the nearest state is taken and stability (a costly spectrum) is skipped
            options = {"stability": target is None, **options}
            states = solvers.stationary_states(model, gamma=gamma, cells=cells, **options)
            state = select_state(states, target)
            obs = observe(numeric(model), state.grid, state.rho[None], np.zeros(1))
            report = state.resolution
            return {"edges": state.edges, "rho": state.rho, "mean": state.mean,
                    "var": state.var, "m": state.m, "balance_residual": obs.balance_residual[0],
                    "resolved": report is None or report.ok,
                    "cells_needed": 0 if report is None else report.cells_needed}
        sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells, method=method,
                            save_at=[0.0, t_final], **options)
    from solvers.resolution import assess_frames

    final = assess_frames(numeric(model), sol.grid, gamma, sol.rho[-1:], sol.t[-1:])
    return {"edges": sol.edges, "rho": sol.rho[-1], "mean": sol.mean[-1], "var": sol.var[-1],
            "m": sol.m[-1], "balance_residual": sol.balance_residual[-1],
            "resolved": final.ok, "cells_needed": final.cells_needed}


def project(edges: np.ndarray, rho: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Cell averages on ``new_edges`` of the piecewise-constant densities ``rho`` (P, M) on ``edges``.

    Exact for piecewise-constant input (the cumulative distribution is interpolated linearly).
    """
    out = []
    for row in np.atleast_2d(rho):
        cumulative = np.concatenate([[0.0], np.cumsum(row * np.diff(edges))])
        out.append(np.diff(np.interp(new_edges, edges, cumulative)) / np.diff(new_edges))
    return np.array(out)


def _fit_all(abscissa: np.ndarray, errors: np.ndarray, fit_mask: np.ndarray) -> np.ndarray:
    """Slopes (quantity, population) of errors (quantity, n, population) over ``fit_mask``."""
    Q, _, P = errors.shape
    slopes = np.full((Q, P), np.nan)
    for q in range(Q):
        for p in range(P):
            e = errors[q, fit_mask, p]
            good = np.isfinite(e) & (e > 0)
            if np.count_nonzero(good) >= 2:
                slopes[q, p] = fit_slope(abscissa[fit_mask], e).slope
    return slopes


def _dataset(study: str, abscissa: str, values: np.ndarray, model: Model,
             quantities: Sequence[str], errors: np.ndarray, predicted: Sequence[float],
             slopes: np.ndarray, observables: Mapping[str, tuple], parameters: Mapping[str, Any],
             extra_attrs: Mapping[str, Any] | None = None) -> Any:
    import xarray as xr

    from meanfield import __version__

    pops = list(model.names)
    fitted = {q: {p: (None if not np.isfinite(slopes[i, j]) else float(slopes[i, j]))
                  for j, p in enumerate(pops)} for i, q in enumerate(quantities)}
    data = {"errors": (("quantity", abscissa, "population"), errors),
            "fitted_slope": (("quantity", "population"), slopes),
            "predicted_slope": (("quantity",), np.asarray(predicted, dtype=float)),
            **observables}
    base = GAMMA_LABELS if study == "gamma_convergence" else REFERENCE_LABELS
    labels = {q: ("rescaled solver: " if q.startswith("rescaled_") else "")
              + base.get(q.removeprefix("rescaled_"), q) for q in quantities}
    attrs = {"study": study, "abscissa": abscissa, "model": model.to_json(),
             "quantity_labels": json.dumps(labels),
             "parameters": json.dumps(parameters), "meanfield_version": __version__,
             "fitted_slopes": json.dumps(fitted), **(extra_attrs or {})}
    return xr.Dataset(data, coords={"quantity": list(quantities), abscissa: values,
                                    "population": pops}, attrs=attrs)


def _points_dataset(result: Any, key: str) -> np.ndarray:
    return np.array([ds[key].values for ds in result.datasets])


# ----------------------------------------------------------------------------- predictions
def stationary_predictions(model: Model, order: int = 1) -> dict[str, Any]:
    """Balance voltages ``v``, ``mu``, ``A``, ``D`` and the predictors of mean, var and m.

    From ``asymptotics.stationary_expansion(model, order=order)``. When the model does not
    concentrate the result is ``{"reason": ...}`` and the studies report only what needs no
    prediction.
    """
    from asymptotics import stationary_expansion

    try:
        expansion = stationary_expansion(model, order=order)
    except ValueError as err:
        return {"reason": str(err)}
    P = model.P
    return {"v": np.asarray(expansion.v, dtype=float).reshape(P),
            "mu": np.asarray(expansion.mu, dtype=float).reshape(P),
            "A": np.asarray(expansion.A, dtype=float).reshape(P),
            "D": np.asarray(model.diffusion, dtype=float),
            "predict_mean": expansion.predict_mean, "predict_var": expansion.predict_var,
            "predict_m": expansion.predict_m}


def _gamma_point(model_json: str, gamma: float, cells: int, method: str, t_final: float | None,
                 options: Mapping[str, Any], target: Sequence[float] | None,
                 rescaled_cells: int | None, rescaled_t_final: float | None) -> Any:
    import xarray as xr

    model = Model.from_json(model_json)
    tgt = None if target is None else np.asarray(target, dtype=float)
    native = _native(model, gamma, cells, method, t_final, options, tgt)
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
    _check_model(model)
    gam = _increasing("gammas", gammas)
    cells = check_int("cells", cells, minimum=3)
    t_final = _check_method(method, t_final)
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
    obs = {p + k: _points_dataset(result, p + k) for p in prefixes for k in names}
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
                    "var": np.abs(obs[prefix + "var"] / predicted_var - 1),
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
    slopes = _fit_all(gam, err, fit_mask)
    reason = (f"asymptotics.stationary_expansion(model, order={order})" if have else
              f"unavailable ({pred['reason']}); only balance_residual is reported")
    params = {"gammas": gam.tolist(), "cells": cells, "method": method, "t_final": t_final,
              "order": order, "rescaled": rescaled, "fit_from": fit_from, "options": opts}
    extra = {"predictions": reason, **exclude_unresolved("gamma_convergence", "gamma", gam, resolved,
                                                 needed)}
    anchor = slope_anchor(gam, fit_mask)
    if anchor is not None:
        extra["slope_anchor"] = anchor
    return _dataset("gamma_convergence", "gamma", gam, model, quantities, err, predicted, slopes,
                    observables, params, extra)


def _grid_point(model_json: str, cells: int, gamma: float, method: str, t_final: float | None,
                options: Mapping[str, Any], target: Sequence[float] | None) -> Any:
    import xarray as xr

    model = Model.from_json(model_json)
    tgt = None if target is None else np.asarray(target, dtype=float)
    native = _native(model, gamma, cells, method, t_final, options, tgt)
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
    _check_model(model)
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    sizes = _increasing("cells", cells, integer=True, minimum=2)
    t_final = _check_method(method, t_final)
    ref_cells = 8 * int(sizes[-1]) if reference_cells is None else check_int(
        "reference_cells", reference_cells, minimum=int(sizes[-1]) + 1)
    expected_order = check_finite_number("expected_order", expected_order)
    opts = dict(options or {})
    target = None
    if method == "stationary":  # choose the state once (stable, on the coarsest grid)
        target = _native(model, gamma, int(sizes[0]), method, None, opts)["mean"].tolist()
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
    slopes = _fit_all(h, err, resolved)
    observables = {q: (("h", "population"), _points_dataset(result, q)[:-1])
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
    return _dataset("grid_convergence", "h", h, model, list(rows), err,
                    [expected_order] * len(rows), slopes, observables, params, extra)


def _time_point(model_json: str, dt: float, gamma: float, cells: int, method: str, t_final: float,
                options: Mapping[str, Any]) -> Any:
    import xarray as xr

    import solvers

    model = Model.from_json(model_json)
    sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells, method=method, dt=dt,
                        save_at=[0.0, t_final], **options)
    data = {k: (("population",), np.asarray(getattr(sol, k))[-1]) for k in ("mean", "var", "m")}
    data["rho"] = (("population", "cell"), sol.rho[-1])
    data["h"] = (("cell",), np.diff(sol.edges))
    return xr.Dataset(data, coords={"population": list(model.names)})


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
    _check_model(model)
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    steps = _increasing("dts", dts, minimum=2)
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
    slopes = _fit_all(steps, err, np.ones(steps.size, dtype=bool))
    observables = {q: (("dt", "population"), _points_dataset(result, q)[1:])
                   for q in ("mean", "var", "m")}
    observables.update({f"reference_{q}": (("population",), ref[q].values)
                        for q in ("mean", "var", "m")})
    params = {"gamma": gamma, "dts": steps.tolist(), "reference_dt": ref_dt, "t_final": t_final,
              "cells": cells, "method": method, "options": opts}
    return _dataset("time_convergence", "dt", steps, model, list(rows), err,
                    [expected_order] * len(rows), slopes, observables, params)


# ----------------------------------------------------------------------------- truncation
def truncation_slopes(order: int) -> tuple[float, float]:
    r"""Predicted slopes in γ of the mean and relative variance errors after truncating at ``ε^order``.

    Dropping ``V_{K+1}`` (even in ``y`` when ``K`` is even) shifts ``E[y]`` by ``O(ε^{K+3})`` and
    the mean in ``x`` by ``O(ε^{K+4})``; odd terms act on ``E[y]`` only at second order, and the
    other way round for ``E[y²]``. Hence ``mean: −⌈(K+4)/2⌉``, ``var: −⌊(K+4)/2⌋`` (when the
    dropped coefficients do not vanish; if the truncated drift is exact the errors sit at
    round-off).
    """
    return -float(np.ceil((order + 4) / 2)), -float(np.floor((order + 4) / 2))


def _truncation_point(model_json: str, gamma: float, orders: Sequence[int], cells: int,
                      points: int, window: float, target: Sequence[float]) -> Any:
    import xarray as xr

    import asymptotics as asy
    from meanfield.studies.truncated import truncated_stationary

    model = Model.from_json(model_json)
    native = _native(model, gamma, cells, "stationary", None, {}, np.asarray(target, float))
    equation = asy.rescaled_equation(model, order=max(0, *orders))
    states = [truncated_stationary(model, gamma, k, points=points, window=window,
                                   equation=equation) for k in orders]
    per = ("order", "population")
    data = {"truncated_mean": (per, np.array([s.mean for s in states])),
            "truncated_var": (per, np.array([s.var for s in states])),
            "truncated_m": (per, np.array([s.m for s in states])),
            **{k: (("population",), native[k]) for k in ("mean", "var", "m")}}
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
    """
    _check_model(model)
    gam = _increasing("gammas", gammas)
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
    native = {k: _points_dataset(result, k) for k in ("mean", "var", "m")}
    trunc = {k: _points_dataset(result, f"truncated_{k}") for k in ("mean", "var", "m")}
    quantities, errors, predicted = [], [], []
    for i, k in enumerate(ks):
        slope_mean, slope_var = truncation_slopes(k)
        quantities += [f"mean_K{k}", f"var_K{k}"]
        errors += [np.abs(trunc["mean"][:, i] - native["mean"]),
                   np.abs(trunc["var"][:, i] / native["var"] - 1)]
        predicted += [slope_mean, slope_var]
    err = np.array(errors)
    slopes = _fit_all(gam, err, gam >= fit_from)
    observables = {k: (("gamma", "population"), v) for k, v in native.items()}
    observables.update({f"truncated_{k}": (("gamma", "order", "population"), v)
                        for k, v in trunc.items()})
    params = {"gammas": gam.tolist(), "orders": ks, "cells": cells, "points": points,
              "window": window, "fit_from": fit_from}
    ds = _dataset("truncation_study", "gamma", gam, model, quantities, err, predicted, slopes,
                  observables, params)
    labels = {f"mean_K{k}": f"|mean − exact|, drift to ε^{k}" for k in ks}
    labels.update({f"var_K{k}": f"|var/exact − 1|, drift to ε^{k}" for k in ks})
    ds.attrs["quantity_labels"] = json.dumps(labels)
    return ds.assign_coords(order=ks)
