r"""Time-dependent truncated rescaled equations, solved numerically (docs/mathematics.md §6).

``asymptotics.rescaled_equation(model, order=K)`` gives the zoomed equation
``∂_t q = −∂_y(V q) + ε⁻² D ∂_yy q`` (``x = c + εy``, ``ε = γ^{-1/2}``) with the drift as a series
``V = −ε⁻¹c' + Σ_{j=−2}^{K} ε^j V_j(y; c, m, t)``. :func:`solve_truncated` passes the truncated
series and the balance equation ``h_p(c_p; m, t) = 0`` as callables to
:func:`solvers.rescaled.solve_zoomed` — the same moving-frame finite volumes, implicit moments
and windows as the exact solver :func:`solvers.solve_rescaled` — so the two differ only by the
truncation. :func:`transient_truncation` measures that difference against γ on a transient
(from a profile a few widths off the balance point, compared at the fast time ``τ = γt``) and
fits its slope for each order; call it as
``meanfield.studies.truncation_study(..., kind="transient")`` (the one front door, which also
runs the stationary comparison). ``truncation_study`` here is a deprecated alias.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from meanfield.balance import BalanceSystem, balance_points
from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model


def _equation(model: Model, order: int, equation: Any) -> Any:
    import asymptotics as asy

    if equation is None:
        return asy.rescaled_equation(model, order=order)
    if equation.order < order:
        bad_value("equation", equation.order, f"a rescaled equation of order >= {order}")
    return equation


def solve_truncated(model: Model, *, gamma: float, order: int, t_final: float,
                    cells: int = 200, initial: Any = None, equation: Any = None,
                    **options: Any) -> Any:
    r"""The rescaled equation truncated after ``ε^order``, solved in time (a ``RescaledSolution``).

    ``equation`` may be a precomputed ``asymptotics.rescaled_equation(model, order=K)`` with
    ``K >= order`` (its extra terms are dropped). Remaining ``options`` go to
    :func:`solvers.rescaled.solve_zoomed` (``scheme``, ``rtol``, ``window``, ``save_at``...).
    """
    from solvers.rescaled import solve_zoomed

    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    order = check_int("order", order, minimum=-2)
    gamma = check_finite_number("gamma", gamma, positive=True)
    eq = _equation(model, order, equation)
    drift = eq.drift_numeric
    eps = gamma ** -0.5
    P = model.P

    def velocity(p: int, y: np.ndarray, centre: np.ndarray, m: np.ndarray, time: float
                 ) -> np.ndarray:
        total = np.zeros_like(y, dtype=float)
        for k in range(-2, order + 1):
            total = total + eps**k * drift[p][k](y, c=centre, m=m, dc=0.0, t=time)
        return total

    system = BalanceSystem(model)

    def balance(m: np.ndarray, time: float, guess: np.ndarray) -> np.ndarray:
        m_all = np.concatenate([np.asarray(m, float), system.external_at(time)])
        try:
            return np.array([system.stable_zero(p, m_all, float(guess[p])) for p in range(P)])
        except ValueError as err:
            bad_value("model", model.names, f"a balance point with ∂_x h_p > 0 near the "
                      f"profile ({err})")

    if P != len(drift):
        bad_value("equation", equation, f"an equation of this model ({P} populations)")
    return solve_zoomed(model, gamma=gamma, t_final=t_final, velocity=velocity, balance=balance,
                        cells=cells, initial=initial, **options)


def _offset_initial(model: Model, gamma: float, offset: float) -> list:
    """Gaussians of twice the concentration width, ``offset`` widths above the balance point."""
    stable = balance_points(model).stable
    if not stable:
        bad_value("model", model.names, "a model with a stable balance point")
    point = stable[0]
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    return [lambda x, c=point.v[p] + offset * width[p], s=2 * width[p]:
            np.exp(-((x - c) ** 2) / (2 * s * s)) for p in range(model.P)]


def truncation_study(model: Model, gammas: Sequence[float], orders: Sequence[int] = (-2, -1, 0),
                     **options: Any) -> Any:
    """Deprecated alias of ``meanfield.studies.truncation_study(..., kind="transient")``."""
    warnings.warn("meanfield.studies.rescaled.truncation_study is deprecated: use "
                  "meanfield.studies.truncation_study(model, gammas, orders, kind='transient')",
                  DeprecationWarning, stacklevel=2)
    return transient_truncation(model, gammas, orders, **options)


def transient_truncation(model: Model, gammas: Sequence[float],
                         orders: Sequence[int] = (-2, -1, 0), *, tau: float = 2.0,
                         offset: float = 3.0, cells: int = 200, rtol: float = 1e-8) -> Any:
    r"""Error of the truncated rescaled equations against the exact one, on a transient, vs γ.

    At every γ both solvers start from Gaussians of twice the concentration width,
    ``offset`` widths above the stable balance point, and are compared at ``t = tau/γ``:
    ``mean_error = |mean_K − mean|`` and ``var_error = |var_K/var − 1|`` (dims ``order``,
    ``gamma``, ``population``). The attributes hold the model (JSON), the parameters, the
    package version and the fitted log–log slopes per order (``fitted_slopes``).
    """
    import xarray as xr

    import asymptotics as asy
    from meanfield import __version__
    from meanfield.studies.fitting import fit_slope
    from solvers.rescaled import solve_rescaled

    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gam = np.asarray([check_finite_number("gammas", g, positive=True) for g in gammas], float)
    if gam.size < 2 or np.any(np.diff(gam) <= 0):
        bad_value("gammas", list(gammas), "at least two strictly increasing couplings")
    if isinstance(orders, (str, bytes)) or not isinstance(orders, Sequence) or not orders:
        bad_type("orders", orders, "a non-empty list of truncation orders >= -2")
    ks = [check_int("orders", k, minimum=-2) for k in orders]
    tau = check_finite_number("tau", tau, positive=True)
    equation = asy.rescaled_equation(model, order=max(ks))
    P = model.P
    mean_err = np.empty((len(ks), gam.size, P))
    var_err = np.empty_like(mean_err)
    for j, gamma in enumerate(gam):
        initial = _offset_initial(model, gamma, offset)
        t_end = tau / gamma
        exact = solve_rescaled(model, gamma=gamma, t_final=t_end, cells=cells, initial=initial,
                               rtol=rtol, save_at=[t_end])
        for i, k in enumerate(ks):
            trunc = solve_truncated(model, gamma=gamma, order=k, t_final=t_end, cells=cells,
                                    initial=initial, equation=equation, rtol=rtol,
                                    save_at=[t_end])
            mean_err[i, j] = np.abs(trunc.mean[-1] - exact.mean[-1])
            var_err[i, j] = np.abs(trunc.var[-1] / exact.var[-1] - 1)
    slopes = {}
    for i, k in enumerate(ks):
        for name, err in (("mean", mean_err), ("var", var_err)):
            for p in range(P):
                keep = err[i, :, p] > 1e-14
                slopes[f"{name}_K{k}_{model.names[p]}"] = (
                    fit_slope(gam[keep], err[i, keep, p]).slope if keep.sum() >= 2 else float("nan"))
    dims = ("order", "gamma", "population")
    ds = xr.Dataset({"mean_error": (dims, mean_err), "var_error": (dims, var_err)},
                    coords={"order": ks, "gamma": gam, "population": list(model.names)},
                    attrs={"study": "rescaled_truncation", "model": model.to_json(),
                           "parameters": json.dumps({"gammas": gam.tolist(), "orders": ks,
                                                     "tau": tau, "offset": offset,
                                                     "cells": cells, "rtol": rtol}),
                           "meanfield_version": __version__,
                           "fitted_slopes": json.dumps(slopes)})
    return ds


def plot(ds: Any) -> Any:
    """Log–log errors of each truncation order against γ (a ``matplotlib.figure.Figure``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if "mean_error" not in ds.data_vars or "order" not in ds.coords:
        bad_value("ds", sorted(ds.data_vars), "a dataset returned by truncation_study")
    slopes = json.loads(ds.attrs.get("fitted_slopes", "{}"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, name, label in zip(axes, ("mean_error", "var_error"),
                               ("|mean_K − mean|", "|var_K/var − 1|"), strict=True):
        for k in ds["order"].values:
            for p in ds["population"].values:
                values = ds[name].sel(order=k, population=p).values
                key = f"{name.split('_')[0]}_K{int(k)}_{p}"
                ax.loglog(ds["gamma"].values, values, "o-",
                          label=f"K={int(k)}, {p} (slope {slopes.get(key, float('nan')):.2f})")
        ax.set_xlabel("γ")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(f"truncated rescaled equations vs exact (τ = "
                 f"{json.loads(ds.attrs['parameters'])['tau']:g})")
    fig.tight_layout()
    return fig
