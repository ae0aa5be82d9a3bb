r"""Map of the double limit ``γ = c·n^α`` against the linear-noise theory (docs/mathematics.md §9).

For each exponent ``α`` and size ``n`` the network is run at stationarity (started from the
stationary state at ``γ = c n^α``, over ``horizon`` relaxation times ``1/max(γ, 1)``) and three
observables are time-averaged over the second half of the run, then over seeds:

* ``balance_residual`` ``∫|h_p| dμ_n`` — the distance to the balance manifold;
* ``distance`` ``∫|x − v_p| dμ_n`` — the W1 distance of each population to its balance point
  (final states);
* ``input_fluctuation`` — the standard deviation in time of the input ``γ h_p(v_p)`` at the
  balance point, ``γ Σ_q g_pq Φ_pq(v_p) m_q(t)`` (over a window of ``horizon/2`` relaxation
  times: biased low by about ``τ_c/window`` where the correlation time ``τ_c`` is not small
  against the window, i.e. at γ = O(1); raise ``horizon`` there).

Beside them, the theory: the mean-field values of the first two (the stationary state) and
``γ √(wᵀ Cov(m) w / n)`` for the third, ``n·Cov(m)`` from :func:`solvers.fluctuations`. Fitted
exponents in ``n`` for each ``α`` (simulation and theory) sit beside the leading-order ones:
``−α/2`` for the residual and the distance (the well width ``√(D/(γA))``) and ``(α − 1)/2`` for
the input fluctuation (``γ·(γn)^{-1/2}``, docs/fluctuations.md §7). Every network run is a point
of :func:`meanfield.studies.sweep.run_points` (``directory=`` resumes, ``client=`` distributes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.studies.fitting import fit_slope
from meanfield.studies.sweep import run_points

QUANTITIES = ("balance_residual", "distance", "input_fluctuation")
PALETTE = ("#0072B2", "#D55E00", "#009E73")  # Okabe–Ito: blue, vermillion, green


def concentrated_grid(domain: tuple[float, float], centres: np.ndarray, width: float,
                      *, coarse: float = 0.25) -> Any:
    """Cells of ``width/4`` within 7 widths of every centre, growing ≤ 20 % per cell outside
    (up to ``coarse``): resolves a profile of width ``width`` with a few hundred cells."""
    import solvers

    a, b = domain
    edges = [float(a)]
    while edges[-1] < b:
        d = float(np.min(np.abs(edges[-1] - np.asarray(centres)))) - 7 * width
        edges.append(edges[-1] + float(np.clip(0.2 * d, width / 4, coarse)))
    edges[-1] = float(b)
    if edges[-1] - edges[-2] < width / 8:
        edges.pop(-2)
    return solvers.Grid(np.array(edges))


def _grid(model: Model, gamma: float, cells: int) -> Any:
    import asymptotics as asy
    import solvers

    bal = asy.balance_points(model)
    if not bal.concentrating or gamma <= 0:
        return solvers.Grid.uniform(*model.domain, cells)
    point = bal.principal
    width = float(np.min(np.sqrt(np.array(model.diffusion) / (gamma * point.slope))))
    uniform = (model.domain[1] - model.domain[0]) / cells
    if width / 4 >= uniform:
        return solvers.Grid.uniform(*model.domain, cells)
    return concentrated_grid(model.domain, point.v, width)


def _state(model: Model, gamma: float, cells: int) -> Any:
    import solvers

    grid = _grid(model, gamma, cells)
    states = solvers.stationary_states(model, gamma=gamma, grid=grid, starts=8, stability=False)
    if len(states) == 1:
        return states[0]
    states = solvers.stationary_states(model, gamma=gamma, grid=grid, starts=8)
    stable = [s for s in states if s.stable]
    if not stable:
        bad_value("model", model, f"a model with a stable stationary state at gamma={gamma:g}")
    return stable[0]


def _inputs(model: Model, v: np.ndarray) -> np.ndarray:
    """``w[p, q] = g_pq Φ_pq(v_p)``: the input ``h_p(v_p)`` is ``Σ_q w[p, q] m_q`` + external."""
    from meanfield.numeric import numeric

    nm = numeric(model)
    return np.array([[nm.g[p, q] * float(nm.phi[p][q](np.array([v[p]]))[0])
                      for q in range(model.P)] for p in range(model.P)])


def _point(*, model: str, gamma: float, n: int, seed: int, horizon: float, resolution: float,
           cells: int, scheme: str, v: list[float]) -> Any:
    """One network run at stationarity: time-averaged observables per population."""
    import xarray as xr

    import solvers

    mdl = Model.from_json(model)
    state = _state(mdl, gamma, cells)
    scale = 1 / max(gamma, 1.0)
    t_final, dt = horizon * scale, scale / resolution
    saves = np.linspace(0, t_final, 201)
    run = solvers.simulate_network(mdl, gamma=gamma, n=n, t_final=t_final, dt=dt, seed=seed,
                                   initial=state, scheme=scheme, save_at=saves)
    half = run.t >= t_final / 2
    centre = np.asarray(v, dtype=float)
    w = _inputs(mdl, centre)
    inputs = gamma * run.m[half] @ w.T
    distance = np.array([np.mean(np.abs(run.states[p] - centre[p])) for p in range(mdl.P)])
    per_pop = ("population",)
    return xr.Dataset({"balance_residual": (per_pop, run.balance_residual[half].mean(axis=0)),
                       "distance": (per_pop, distance),
                       "input_fluctuation": (per_pop, inputs.std(axis=0, ddof=1))},
                      coords={"population": list(mdl.names)})


def _theory(model: Model, gamma: float, cells: int, v: np.ndarray) -> np.ndarray:
    """(3, P): mean-field residual and distance, linear-noise ``n``-scaled input fluctuation
    ``γ √(wᵀ n·Cov(m) w)`` (divide by ``√n``)."""
    import solvers
    from meanfield.numeric import numeric

    state = _state(model, gamma, cells)
    fl = solvers.fluctuations(model, gamma, state=state, observables="m")
    nm = numeric(model)
    h = np.diff(state.edges)
    residual = [np.abs(nm.field(p, state.x, state.m)) @ (state.rho[p] * h)
                for p in range(model.P)]
    distance = [np.abs(state.x - v[p]) @ (state.rho[p] * h) for p in range(model.P)]
    w = _inputs(model, v)
    inputs = gamma * np.sqrt(np.einsum("pq,qr,pr->p", w, fl.m_cov, w))
    return np.array([residual, distance, inputs])


def _slope(ns: Sequence[int], values: np.ndarray) -> float:
    keep = np.isfinite(values) & (values > 0)
    if np.count_nonzero(keep) < 2:
        return float("nan")
    return fit_slope(np.asarray(ns, float)[keep], values[keep]).slope


def double_limit_map(model: Model, alphas: Sequence[float], ns: Sequence[int],
                     seeds: Sequence[int], *, c: float = 1.0, horizon: float = 40.0,
                     resolution: float = 20.0, cells: int = 200, scheme: str = "ou",
                     client: Any = None, directory: str | os.PathLike[str] | None = None,
                     progress: bool = False) -> Any:
    """Simulation and linear-noise theory along the schedules ``γ = c·n^α`` (see the module).

    Returns an ``xarray.Dataset`` with ``simulation`` and ``theory`` (quantity, alpha, n,
    population), ``gamma`` (alpha, n), and the fitted exponents in ``n``
    ``simulation_exponent``, ``theory_exponent`` (quantity, alpha, population) beside
    ``leading_exponent`` (quantity, alpha). Concentrating models only (balance points).
    """
    import xarray as xr

    import asymptotics as asy
    from meanfield import __version__

    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, (Sequence, np.ndarray)):
        bad_type("alphas", alphas, "a sequence of exponents >= 0")
    alpha_list = [check_finite_number("alphas", a, nonnegative=True) for a in alphas]
    n_list = sorted(check_int("ns", n, minimum=2) for n in ns)
    seed_list = [check_int("seeds", s, minimum=0) for s in seeds]
    if not alpha_list or len(set(alpha_list)) != len(alpha_list):
        bad_value("alphas", alphas, "a non-empty sequence of distinct exponents")
    if len(n_list) < 2 or len(set(n_list)) != len(n_list):
        bad_value("ns", ns, "at least two distinct sizes")
    if not seed_list or len(set(seed_list)) != len(seed_list):
        bad_value("seeds", seeds, "a non-empty sequence of distinct seeds")
    c = check_finite_number("c", c, positive=True)
    if scheme not in ("ou", "em"):
        bad_value("scheme", scheme, "'ou' or 'em'")
    bal = asy.balance_points(model)
    if not bal.concentrating:
        bad_value("model", model, "a concentrating model (populations collapse onto balance "
                  "points)")
    v = np.asarray(bal.v, dtype=float)
    A, N, P = len(alpha_list), len(n_list), model.P
    gammas = np.array([[c * n**a for n in n_list] for a in alpha_list])
    shared = {"model": model.to_json(), "horizon": float(horizon),
              "resolution": float(resolution), "cells": int(cells), "scheme": scheme,
              "v": v.tolist()}
    index: dict[tuple[float, int, int], int] = {}
    for i in range(A):
        for j, n in enumerate(n_list):
            for seed in seed_list:
                index.setdefault((float(gammas[i, j]), n, seed), len(index))
    result = run_points(_point, [{**shared, "gamma": g, "n": n, "seed": s} for g, n, s in index],
                        client=client, directory=directory, progress=progress,
                        description="double limit map")
    simulation = np.empty((3, A, N, P))
    theory = np.empty((3, A, N, P))
    predictions: dict[float, np.ndarray] = {}
    for i in range(A):
        for j, n in enumerate(n_list):
            g = float(gammas[i, j])
            if g not in predictions:
                predictions[g] = _theory(model, g, cells, v)
            theory[:, i, j] = predictions[g]
            theory[2, i, j] /= np.sqrt(n)
            runs = [result.datasets[index[(float(gammas[i, j]), n, s)]] for s in seed_list]
            for k, q in enumerate(QUANTITIES):
                simulation[k, i, j] = np.mean([r[q].values for r in runs], axis=0)
    sim_exp = np.array([[[_slope(n_list, simulation[k, i, :, p]) for p in range(P)]
                         for i in range(A)] for k in range(3)])
    th_exp = np.array([[[_slope(n_list, theory[k, i, :, p]) for p in range(P)]
                        for i in range(A)] for k in range(3)])
    alpha_arr = np.array(alpha_list)
    leading = np.array([-alpha_arr / 2, -alpha_arr / 2, (alpha_arr - 1) / 2])
    dims = ("quantity", "alpha", "n", "population")
    described = {"long_name": "", "units": "state", "description": ""}
    ds = xr.Dataset(
        {"simulation": (dims, simulation, {**described, "long_name": "network (time, seed mean)",
                                           "description": "balance residual ∫|h_p|dμ_n, W1 "
                                           "distance to v_p, std of the input γh_p(v_p)"}),
         "theory": (dims, theory, {**described, "long_name": "mean field + linear noise",
                                   "description": "mean-field residual and distance; "
                                   "γ√(wᵀCov(m)w/n) from solvers.fluctuations"}),
         "gamma": (("alpha", "n"), gammas, {"long_name": "coupling γ = c n^α", "units": "1",
                                            "description": "schedule"}),
         "simulation_exponent": (("quantity", "alpha", "population"), sim_exp,
                                 {"long_name": "fitted exponent in n (simulation)",
                                  "units": "1", "description": "log–log least squares"}),
         "theory_exponent": (("quantity", "alpha", "population"), th_exp,
                             {"long_name": "fitted exponent in n (theory)", "units": "1",
                              "description": "log–log least squares"}),
         "leading_exponent": (("quantity", "alpha"), leading,
                              {"long_name": "leading-order exponent in n", "units": "1",
                               "description": "−α/2, −α/2, (α−1)/2"})},
        coords={"quantity": list(QUANTITIES), "alpha": alpha_arr, "n": n_list,
                "population": list(model.names)},
        attrs={"study": "double_limit_map", "model": model.to_json(), "c": c,
               "seeds": json.dumps(seed_list), "horizon": horizon, "resolution": resolution,
               "scheme": scheme, "meanfield_version": __version__, "balance_point": v.tolist()})
    return ds


def plot_exponents(ds: Any, quantity: str = "input_fluctuation") -> Any:
    """Exponent in ``n`` against ``α``: simulation (markers), theory (lines), leading order
    (dashed); one colour per population (colour-blind-safe palette)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if quantity not in QUANTITIES:
        bad_value("quantity", quantity, f"one of {QUANTITIES}")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    alphas = ds["alpha"].values
    for p, name in enumerate(ds["population"].values):
        colour = PALETTE[p % len(PALETTE)]
        ax.plot(alphas, ds["theory_exponent"].sel(quantity=quantity).values[:, p], "-",
                color=colour, label=f"{name}: linear-noise theory")
        ax.plot(alphas, ds["simulation_exponent"].sel(quantity=quantity).values[:, p],
                "os^"[p % 3], color=colour, markerfacecolor="none", markersize=8 - 2 * (p % 3),
                label=f"{name}: network simulation")
    ax.plot(alphas, ds["leading_exponent"].sel(quantity=quantity).values, "k--",
            label="leading order at large γ")
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    if quantity == "input_fluctuation":
        ax.text(alphas.min(), 0.0, " grows with n above, vanishes below", color="0.35",
                fontsize=8, va="bottom")
    ns = ds["n"].values
    seeds = len(json.loads(ds.attrs.get("seeds", "[0]")))
    ax.set_xlabel("schedule exponent α  (γ = c·n^α)")
    ax.set_ylabel(f"exponent in n of the {quantity.replace('_', ' ')}")
    ax.set_title(f"{quantity.replace('_', ' ').capitalize()} ∝ n^exponent along γ = c·n^α\n"
                 f"(fits over n = {ns.min()}…{ns.max()}, {seeds} seed{'s' * (seeds > 1)})",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
