r"""FitzHugh–Nagumo networks as γ → ∞: electrical vs chemical coupling, particles beside the PDE.

The picture of docs/mathematics.md §8 (:mod:`meanfield.fhn`):

* electrical coupling (balance = synchrony): the network concentrates on a Dirac mass that
  follows the FitzHugh–Nagumo ODE; the distance of the network mean to the ODE solution and the
  variance of ``v`` both decay like ``1/γ`` (until the ``σ/√n`` floor of a finite network);
* chemical coupling: every ``v`` is clamped at its balance voltage ``v_p*`` while ``w`` relaxes
  slowly (``w_p' = ε_p(v_p* + a_p − b_p w_p)``); ``var v ≈ D_p/(γ A_p)``.

:func:`fitzhugh_nagumo` returns an ``xarray.Dataset``; :func:`plot` draws it. Variables
(``el_`` electrical, ``ch_`` chemical, ``pde_``/``net_`` the 2-D PDE and the network at
``pde_gamma``):

- ``el_mean_v, el_mean_w, el_var_v`` (el_gamma, t), ``ode_v, ode_w`` (t),
  ``el_error`` (el_gamma): RMS distance of ``(v̄, w̄)`` to the ODE over the window;
- ``ch_mean_v, ch_mean_w, ch_var_v`` (ch_gamma, t, population), ``limit_v, limit_w``
  (t, population), ``ch_var`` (ch_gamma, population): time-averaged ``var v`` after the layer;
- ``pde_<kind>_<obs>`` (the native 2-D PDE), ``pde_<kind>_<obs>_error`` (its two-grid space
  error estimate), ``net_<kind>_<obs>`` (mean over independent networks) and
  ``net_<kind>_<obs>_se`` (seed-to-seed standard error) (pde_t, population) for ``obs`` in
  ``mean_v, var_v, mean_w, var_w``; ``pde_<kind>_marginal_v`` (population, v) and
  ``net_<kind>_hist_v`` (population, v): the final ``v`` law of both on the PDE cells.

Attributes: the study name, both models and the parameters (JSON), the package version, the
fitted slopes (``el_error_slope``, ``el_var_slope``, ``ch_var_slope`` per population), the PDE
grids (``pde_grids``) and the PDE's resolution warnings (``pde_warnings``, JSON list).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from meanfield.errors import bad_value, check_finite_number, check_int
from meanfield.fhn import FhnModel, GaussianStart, fhn_chemical, fhn_electrical
from meanfield.studies.fitting import fit_slope

OBSERVABLES = ("mean_v", "var_v", "mean_w", "var_w")


def _gammas(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0) or \
            np.any(np.diff(arr) <= 0):
        bad_value(name, values, "at least two increasing coupling strengths > 0")
    return arr


def _beside(model: FhnModel, start: GaussianStart, *, gamma: float, n: int, seeds: int,
            seed: int, t_final: float, dt: float, nv: int | None, nw: int | None,
            v_range: tuple[float, float], w_range: tuple[float, float]) -> dict[str, Any]:
    """The native 2-D PDE and ``seeds`` independent networks of ``n`` agents per population.

    The networks' band is the seed-to-seed standard error of the ensemble mean (agents of one
    network share the coupling and are not independent samples).
    """
    import warnings

    from solvers import simulate_fhn_network, solve_fhn_native

    steps = max(1, round(t_final / dt))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pde = solve_fhn_native(model, gamma=gamma, t_final=t_final, nv=nv, nw=nw,
                               v_range=v_range, w_range=w_range, initial=start,
                               save_at=np.linspace(0.0, t_final, steps + 1))
    notes = [str(w.message) for w in caught]
    for caught_warning in caught:  # recorded in the dataset and passed on to the caller
        warnings.warn(str(caught_warning.message), caught_warning.category, stacklevel=3)
    nets = [simulate_fhn_network(model, gamma=gamma, n=n, t_final=t_final, dt=min(dt, 0.01),
                                 seed=seed + k, initial=start, save_at=pde.t)
            for k in range(seeds)]
    stats = {}
    for obs in OBSERVABLES:
        values = np.array([getattr(net, obs) for net in nets])  # (seeds, nt, P)
        stats[obs] = values.mean(axis=0)
        stats[f"{obs}_se"] = values.std(axis=0, ddof=1) / np.sqrt(seeds)
    dv = pde.v[1] - pde.v[0]
    edges = np.append(pde.v - dv / 2, pde.v[-1] + dv / 2)
    v_all = np.concatenate([net.v for net in nets])
    pop_all = np.concatenate([net.population for net in nets])
    hist = np.array([np.histogram(v_all[pop_all == p], bins=edges, density=True)[0]
                     for p in range(model.P)])
    return {"pde": pde, "net": stats, "hist": hist, "marginal": pde.marginal_v()[-1],
            "warnings": notes}


def fitzhugh_nagumo(*, el_gammas: Any = (1.0, 2.0, 4.0, 8.0),
                    ch_gammas: Any = (30.0, 100.0, 300.0, 1000.0), n: int = 2000,
                    t_final: float = 15.0, dt: float = 0.01, seed: int = 0, saves: int = 151,
                    electrical: FhnModel | None = None, chemical: FhnModel | None = None,
                    pde_gamma: float = 1.0, pde_t_final: float = 2.0, pde_dt: float = 0.05,
                    nv: int | None = None, nw: int | None = None, pde_n: int = 2500,
                    pde_seeds: int = 8) -> Any:
    """Run the electrical and chemical pictures and the PDE-beside-particles comparison.

    Electrical (default :func:`~meanfield.fhn.fhn_electrical` in the excitable regime with
    ``σ = 0.5``): all agents start at ``(0, −0.6)`` above threshold, so the window holds one
    spike; the ODE is solved with ``scipy.integrate.solve_ivp``. Chemical (default
    :func:`~meanfield.fhn.fhn_chemical`): agents start at the balance voltages, ``w = −0.6``.
    The native 2-D PDE (``nv × nw`` cells, default from the concentration width; saved every
    ``pde_dt``) and ``pde_seeds`` independent networks of ``pde_n`` agents per population run
    side by side at ``pde_gamma`` from Gaussian initial laws for ``pde_t_final``; the network
    band is the seed-to-seed standard error of the ensemble mean.
    """
    import xarray as xr
    from scipy.integrate import solve_ivp

    from meanfield import __version__
    from solvers import simulate_fhn_network

    el_g = _gammas("el_gammas", el_gammas)
    ch_g = _gammas("ch_gammas", ch_gammas)
    n = check_int("n", n, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    saves = check_int("saves", saves, minimum=2)
    t_final = check_finite_number("t_final", t_final, positive=True)
    dt = check_finite_number("dt", dt, positive=True)
    pde_gamma = check_finite_number("pde_gamma", pde_gamma, positive=True)
    pde_seeds = check_int("pde_seeds", pde_seeds, minimum=2)
    electrical = fhn_electrical(regime="excitable", sigma=0.5) if electrical is None else electrical
    chemical = fhn_chemical() if chemical is None else chemical
    if electrical.kind != "electrical" or electrical.P != 1:
        bad_value("electrical", electrical, "a one-population electrical FhnModel")
    if chemical.kind != "chemical":
        bad_value("chemical", chemical, "a chemical FhnModel")

    times = np.linspace(0.0, t_final, saves)
    data: dict[str, Any] = {}

    # electrical: the Dirac mass follows the ODE
    pop = electrical.populations[0]
    y0 = (0.0, -0.6)
    ode = solve_ivp(pop.ode(), (0.0, t_final), y0, dense_output=True, rtol=1e-10, atol=1e-12)
    el_start = GaussianStart(v=y0[0], w=y0[1], v_std=0.0, w_std=0.0)
    el_runs = [simulate_fhn_network(electrical, gamma=g, n=n, t_final=t_final, dt=dt, seed=seed,
                                    initial=el_start, save_at=times) for g in el_g]
    t = el_runs[0].t
    exact = ode.sol(t)
    data["ode_v"], data["ode_w"] = ("t", exact[0]), ("t", exact[1])
    for obs in ("mean_v", "mean_w", "var_v"):
        data[f"el_{obs}"] = (("el_gamma", "t"), np.array([getattr(r, obs)[:, 0] for r in el_runs]))
    el_error = np.array([np.sqrt(np.mean((r.mean_v[:, 0] - exact[0]) ** 2
                                         + (r.mean_w[:, 0] - exact[1]) ** 2)) for r in el_runs])
    data["el_error"] = ("el_gamma", el_error)
    el_var = data["el_var_v"][1][:, t > 0.5].mean(axis=1)
    data["el_var"] = ("el_gamma", el_var)

    # chemical: v clamped at the balance voltages, w slow
    v_star = chemical.balance_voltages()
    ch_start = GaussianStart(v=list(v_star), w=-0.6, v_std=0.0, w_std=0.0)
    ch_runs = [simulate_fhn_network(chemical, gamma=g, n=n, t_final=t_final, dt=dt, seed=seed,
                                    initial=ch_start, save_at=times) for g in ch_g]
    for obs in ("mean_v", "mean_w", "var_v"):
        data[f"ch_{obs}"] = (("ch_gamma", "t", "population"),
                             np.array([getattr(r, obs) for r in ch_runs]))
    limit_v, limit_w = chemical.chemical_limit(t, [-0.6] * chemical.P)
    data["limit_v"], data["limit_w"] = (("t", "population"), limit_v), (("t", "population"), limit_w)
    ch_var = np.array([r.var_v[t > 0.5].mean(axis=0) for r in ch_runs])
    data["ch_var"] = (("ch_gamma", "population"), ch_var)
    data["ch_var_prediction"] = (("ch_gamma", "population"),
                                 chemical.param("sigma") ** 2 / 2 /
                                 (ch_g[:, None] * chemical.balance_slopes()[None, :]))

    # the 2-D PDE beside the particles
    beside = {
        "el": _beside(electrical, GaussianStart(v=0.0, w=-0.6, v_std=0.4, w_std=0.25),
                      gamma=pde_gamma, n=pde_n, seeds=pde_seeds, seed=seed,
                      t_final=pde_t_final, dt=pde_dt, nv=nv, nw=nw, v_range=(-3.0, 3.0),
                      w_range=(-1.8, 0.8)),
        "ch": _beside(chemical, GaussianStart(v=list(v_star), w=-0.6, v_std=0.3, w_std=0.25),
                      gamma=pde_gamma, n=pde_n, seeds=pde_seeds, seed=seed,
                      t_final=pde_t_final, dt=pde_dt, nv=nv, nw=nw, v_range=(-3.0, 2.5),
                      w_range=(-1.8, 0.8)),
    }
    pde_t = beside["el"]["pde"].t
    for kind, runs in beside.items():
        pops = f"{kind}_population"
        for obs in OBSERVABLES:
            data[f"pde_{kind}_{obs}"] = (("pde_t", pops), getattr(runs["pde"], obs))
            data[f"net_{kind}_{obs}"] = (("pde_t", pops), runs["net"][obs])
            data[f"net_{kind}_{obs}_se"] = (("pde_t", pops), runs["net"][f"{obs}_se"])
            data[f"pde_{kind}_{obs}_error"] = (("pde_t", pops),
                                               getattr(runs["pde"], f"error_{obs}"))
        data[f"pde_{kind}_marginal_v"] = ((pops, f"{kind}_v"), runs["marginal"])
        data[f"net_{kind}_hist_v"] = ((pops, f"{kind}_v"), runs["hist"])

    el_error_slope = fit_slope(el_g, el_error).slope
    el_var_slope = fit_slope(el_g, el_var).slope
    ch_var_slope = [fit_slope(ch_g, ch_var[:, p]).slope for p in range(chemical.P)]
    coords = {"t": t, "el_gamma": el_g, "ch_gamma": ch_g, "population": list(chemical.names),
              "pde_t": pde_t, "el_population": list(electrical.names),
              "ch_population": list(chemical.names),
              "el_v": beside["el"]["pde"].v, "ch_v": beside["ch"]["pde"].v}
    params = {"n": n, "t_final": t_final, "dt": dt, "seed": seed, "pde_gamma": pde_gamma,
              "pde_t_final": pde_t_final, "pde_dt": pde_dt, "nv": nv, "nw": nw, "pde_n": pde_n,
              "pde_seeds": pde_seeds}
    attrs = {"study": "fitzhugh_nagumo", "electrical_model": electrical.to_json(),
             "chemical_model": chemical.to_json(), "parameters": json.dumps(params),
             "meanfield_version": __version__, "el_error_slope": el_error_slope,
             "el_var_slope": el_var_slope, "ch_var_slope": json.dumps(ch_var_slope),
             "balance_voltages": json.dumps(v_star.tolist()),
             "pde_max_mass_error": max(b["pde"].info["max_mass_error"] for b in beside.values()),
             "pde_min_density": min(b["pde"].info["min_density"] for b in beside.values()),
             "pde_grids": json.dumps({k: [b["pde"].info["nv"], b["pde"].info["nw"]]
                                      for k, b in beside.items()}),
             "pde_warnings": json.dumps([m for b in beside.values() for m in b["warnings"]])}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot(ds: Any) -> Any:
    """Eight labelled panels: electrical (top) and chemical (bottom) pictures, PDE beside particles."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from meanfield.studies.plotting import OKABE_ITO

    fig = Figure(figsize=(18, 8), layout="constrained")
    ax = fig.subplots(2, 4)
    t = ds["t"].values
    colours = list(OKABE_ITO)  # colour-blind safe

    a = ax[0, 0]
    for k, g in enumerate(ds["el_gamma"].values):
        a.plot(t, ds["el_mean_v"][k], color=colours[k % len(colours)], label=f"network γ = {g:g}")
    a.plot(t, ds["ode_v"], "k--", label="FitzHugh–Nagumo ODE")
    a.set(xlabel="time t", ylabel="mean voltage v̄", title="electrical: the mean follows the ODE")
    a.legend(fontsize=7)

    a = ax[0, 1]
    g = ds["el_gamma"].values
    a.loglog(g, ds["el_error"], "o-", label=f"RMS error (slope {ds.attrs['el_error_slope']:.2f})")
    a.loglog(g, ds["el_var"], "s-", label=f"time-averaged var v (slope {ds.attrs['el_var_slope']:.2f})")
    a.loglog(g, float(ds["el_error"][0]) * g[0] / g, "k:", label="slope −1")
    a.set(xlabel="coupling strength γ", ylabel="error / variance",
          title="electrical: concentration like 1/γ")
    a.legend(fontsize=7)

    a = ax[0, 2]
    pde_t = ds["pde_t"].values
    for k, obs in enumerate(("mean_v", "var_v", "mean_w", "var_w")):
        a.plot(pde_t, ds[f"pde_el_{obs}"][:, 0], color=colours[k], label=f"PDE {obs}")
        a.errorbar(pde_t, ds[f"net_el_{obs}"][:, 0], yerr=2 * ds[f"net_el_{obs}_se"][:, 0],
                   fmt="o", ms=3, color=colours[k], label=f"networks {obs} (±2 SE, seeds)")
    a.set(xlabel="time t", ylabel="moment",
          title="electrical: native PDE (lines) vs network ensemble (dots)")
    a.legend(fontsize=6, ncol=2)

    pde_gamma = json.loads(ds.attrs["parameters"])["pde_gamma"]
    for a, kind, label in ((ax[0, 3], "el", "electrical"), (ax[1, 3], "ch", "chemical")):
        pops = ds[f"{kind}_population"].values
        for p, name in enumerate(pops):
            a.plot(ds[f"{kind}_v"], ds[f"pde_{kind}_marginal_v"][p], color=colours[p],
                   label=f"PDE {name}")
            a.step(ds[f"{kind}_v"], ds[f"net_{kind}_hist_v"][p], where="mid", color=colours[p],
                   alpha=0.5, linestyle="--", label=f"network {name}")
        a.set(xlabel="voltage v", ylabel="density of v at the final time",
              title=f"{label}: PDE beside particles (γ = {pde_gamma:g})")
        a.legend(fontsize=7)

    a = ax[1, 0]
    for k, gam in enumerate(ds["ch_gamma"].values):
        for p, name in enumerate(ds["population"].values):
            a.plot(t, ds["ch_mean_v"][k, :, p], color=colours[k % len(colours)],
                   linestyle="-" if p == 0 else "-.", label=f"{name}, γ = {gam:g}")
    for p, name in enumerate(ds["population"].values):
        a.plot(t, ds["limit_v"][:, p], "k--", lw=1, label=f"balance voltage v*_{name}" if p == 0
               else None)
    a.set(xlabel="time t", ylabel="mean voltage v̄_p", title="chemical: v clamped at v*")
    a.legend(fontsize=6, ncol=2)

    a = ax[1, 1]
    for k, gam in enumerate(ds["ch_gamma"].values):
        for p, name in enumerate(ds["population"].values):
            a.plot(t, ds["ch_mean_w"][k, :, p], color=colours[k % len(colours)],
                   linestyle="-" if p == 0 else "-.", label=f"{name}, γ = {gam:g}")
    for p in range(ds.sizes["population"]):
        a.plot(t, ds["limit_w"][:, p], "k--", lw=1, label="γ = ∞ limit" if p == 0 else None)
    a.set(xlabel="time t", ylabel="mean recovery w̄_p", title="chemical: w evolves slowly")
    a.legend(fontsize=6, ncol=2)

    a = ax[1, 2]
    gam = ds["ch_gamma"].values
    slopes = json.loads(ds.attrs["ch_var_slope"])
    for p, name in enumerate(ds["population"].values):
        a.loglog(gam, ds["ch_var"][:, p], "o-", color=colours[p],
                 label=f"network {name} (slope {slopes[p]:.2f})")
        a.loglog(gam, ds["ch_var_prediction"][:, p], "k:", lw=1,
                 label="D/(γ A)" if p == 0 else None)
    a.set(xlabel="coupling strength γ", ylabel="variance of v", title="chemical: var v ≈ D/(γA)")
    a.legend(fontsize=7)
    for a in (ax[0, 1], ax[1, 2]):  # γ spans about a decade: minor labels would collide
        a.xaxis.set_minor_formatter(NullFormatter())
    return fig


__all__ = ["fitzhugh_nagumo", "plot"]
