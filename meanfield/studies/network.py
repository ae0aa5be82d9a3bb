r"""Network studies (docs/mathematics.md §1, §4): the particle system against the PDE, and the double limit.

* :func:`network_convergence` — fixed γ, ``n → ∞``: the Wasserstein-1 distance between the
  empirical law of each population and the PDE density decays like ``n^{-1/2}`` (propagation of
  chaos plus the ``n^{-1/2}`` sampling error of an empirical measure). The PDE reference is the
  stationary state (``reference="stationary"``: agents start from it) or a time-dependent solve
  from the model's initial densities (``reference="solve"``, compared at ``t_final``).
* :func:`double_limit` — ``γ = γ(n) → ∞`` with ``n`` (the conjecture): for schedules
  ``γ = γ_0 n^α`` it records at ``t_final`` the distance to the balance manifold ``∫|h_p| dμ_n``,
  the mean distance ``E|X − v_p|`` to the balance points and the fraction of agents within ``δ``
  of them. For affine ``h`` (reversal-potential coupling) the first two decay like
  ``√(D/(γA)) ∝ n^{-α/2}``: the network balances for every ``α > 0``, slowly when ``α`` is small.

Both return an ``xarray.Dataset`` (model JSON, parameters, ``meanfield.__version__`` and fitted
slopes in the attributes); :func:`plot` draws either (a ``matplotlib.figure.Figure``).
``network_convergence`` follows the layout of the convergence studies (``errors``,
``fitted_slope``, ``predicted_slope``, abscissa ``n``), so ``meanfield.studies.plot`` draws it too.
Each network run is an independent point of :func:`meanfield.studies.sweep.run_points`:
``client=`` runs them on ``dask.distributed``, ``directory=`` writes each as it finishes and a
re-run reuses the finished ones (seeded: the same dataset, bit for bit, as a serial run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.studies.fitting import fit_slope
from meanfield.studies.sweep import run_points

CONVERGENCE_QUANTITIES = ("w1", "mean", "var")
BALANCED_FRACTION = 0.99
"""A run counts as balanced when this fraction of every population lies within δ of v*."""


def _ints(name: str, values: Any, minimum: int) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range, np.ndarray)):
        bad_type(name, values, "a sequence of integers")
    out = [check_int(name, v, minimum=minimum) for v in values]
    if len(out) == 0 or len(set(out)) != len(out):
        bad_value(name, values, "a non-empty sequence of distinct integers")
    return out


def _slope(s: Sequence[float], e: np.ndarray) -> float:
    keep = np.isfinite(e) & (e > 0)
    if np.count_nonzero(keep) < 2:
        return float("nan")
    return fit_slope(np.asarray(s, float)[keep], e[keep]).slope


def _run_settings(t_final: Any, dt: Any, scheme: Any, fast: Any) -> dict[str, Any]:
    """The network settings shared by every point of a study, checked before any point runs."""
    from solvers.network import SCHEMES

    t_final = check_finite_number("t_final", t_final, positive=True)
    dt = check_finite_number("dt", dt, positive=True)
    if dt > t_final:
        bad_value("dt", dt, f"a step <= t_final={t_final:g}")
    if scheme not in SCHEMES:
        bad_value("scheme", scheme, f"one of {SCHEMES}")
    if fast is not None and not isinstance(fast, bool):
        bad_type("fast", fast, "None (numba when installed), True or False")
    return {"t_final": t_final, "dt": dt, "scheme": scheme, "fast": fast}


def _convergence_point(target: Mapping[str, np.ndarray], *, model: str, gamma: float, n: int,
                       seed: int, t_final: float, dt: float, scheme: str, fast: bool | None,
                       cells: int, reference: str) -> Any:
    """One ``(n, seed)`` run of :func:`network_convergence`: W1, mean and variance errors.

    ``target`` is the PDE reference (``edges``, ``rho``, ``mean``, ``var``) computed once on
    ``cells`` cells; with ``reference="stationary"`` the agents are sampled from it, otherwise
    from the model's initial densities. ``cells`` only names the point (it made ``target``).
    """
    import xarray as xr

    import solvers
    from solvers.network_observables import wasserstein_to_pde

    mdl = Model.from_json(model)
    ref = SimpleNamespace(**target)
    net = solvers.simulate_network(mdl, gamma=gamma, n=n, t_final=t_final, dt=dt, seed=seed,
                                   initial=ref if reference == "stationary" else None,
                                   scheme=scheme, save_at=[t_final], fast=fast)
    per_pop = ("population",)
    return xr.Dataset({"w1": (per_pop, wasserstein_to_pde(net.states, ref)),
                       "mean_error": (per_pop, np.abs(net.mean[-1] - ref.mean)),
                       "var_error": (per_pop, np.abs(net.var[-1] - ref.var))},
                      coords={"population": list(mdl.names)})


def network_convergence(model: Model, gamma: float, *, ns: Sequence[int] = (250, 1000, 4000, 16000),
                        seeds: Sequence[int] = (0, 1, 2, 3), t_final: float = 0.2,
                        dt: float = 2e-3, scheme: str = "ou", cells: int = 2000,
                        reference: str = "stationary", fast: bool | None = None,
                        client: Any = None, directory: str | os.PathLike[str] | None = None,
                        progress: bool = False) -> Any:
    """W1 (and mean, variance errors) between the network and the PDE for each ``n`` in ``ns``.

    Errors are averaged over ``seeds``; ``fitted_slope`` is the slope of their logarithm against
    ``log n`` (predicted −1/2). With several stationary states the first one is used.
    Each ``(n, seed)`` run is an independent point of :func:`meanfield.studies.sweep.run_points`:
    ``client=`` runs them on Dask, ``directory=`` writes each as it finishes and reuses the
    finished ones; the dataset is the same, bit for bit, as a serial run.
    """
    import xarray as xr

    import solvers
    from meanfield import __version__

    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    n_list = sorted(_ints("ns", ns, 1))
    seed_list = _ints("seeds", seeds, 0)
    if reference not in ("stationary", "solve"):
        bad_value("reference", reference, "'stationary' or 'solve'")
    settings = _run_settings(t_final, dt, scheme, fast)
    if reference == "stationary":
        state = solvers.stationary_states(model, gamma=gamma, cells=cells, stability=False)[0]
        target = {"edges": state.edges, "rho": state.rho, "mean": state.mean, "var": state.var}
    else:
        sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells)
        target = {"edges": sol.edges, "rho": sol.rho[-1], "mean": sol.mean[-1],
                  "var": sol.var[-1]}
    target = {k: np.asarray(v, dtype=float) for k, v in target.items()}
    # every setting a run depends on is part of its point (and of its file name), so a directory
    # shared by different studies never hands the runs of one to another
    shared = {"model": model.to_json(), "gamma": gamma, **settings, "cells": cells,
              "reference": reference}
    result = run_points(partial(_convergence_point, target),
                        [{**shared, "n": n, "seed": seed} for n in n_list for seed in seed_list],
                        client=client, directory=directory, progress=progress,
                        description="network n")
    P = model.P
    w1, mean_err, var_err = (
        np.array([ds[key].values for ds in result.datasets], dtype=float)
        .reshape(len(n_list), len(seed_list), P) for key in ("w1", "mean_error", "var_error"))
    errors = np.stack([w1.mean(axis=1), mean_err.mean(axis=1), var_err.mean(axis=1)])
    slopes = np.array([[_slope(n_list, errors[q, :, p]) for p in range(P)]
                       for q in range(len(CONVERGENCE_QUANTITIES))])
    names = list(model.names)
    fitted = {q: {p: float(slopes[i, j]) for j, p in enumerate(names)}
              for i, q in enumerate(CONVERGENCE_QUANTITIES)}
    parameters = {"gamma": gamma, "ns": n_list, "seeds": seed_list, "t_final": t_final, "dt": dt,
                  "scheme": scheme, "cells": cells, "reference": reference}
    data = {"errors": (("quantity", "n", "population"), errors),
            "fitted_slope": (("quantity", "population"), slopes),
            "predicted_slope": (("quantity",), np.full(len(CONVERGENCE_QUANTITIES), -0.5)),
            "w1_per_seed": (("n", "seed", "population"), w1)}
    attrs = {"study": "network_convergence", "abscissa": "n", "model": model.to_json(),
             "parameters": json.dumps(parameters), "meanfield_version": __version__,
             "fitted_slopes": json.dumps(fitted), "w1_slope": float(np.mean(slopes[0]))}
    return xr.Dataset(data, coords={"quantity": list(CONVERGENCE_QUANTITIES), "n": n_list,
                                    "seed": seed_list, "population": names}, attrs=attrs)


def _schedules(schedules: Any, gamma0: float) -> dict[str, Callable[[int], float]]:
    if isinstance(schedules, Mapping):
        out = {}
        for label, fn in schedules.items():
            if not callable(fn):
                bad_type("schedules", fn, "callables n ↦ γ(n) (or a sequence of exponents α)")
            out[str(label)] = fn
        if not out:
            bad_value("schedules", schedules, "at least one schedule")
        return out
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, (Sequence, np.ndarray)):
        bad_type("schedules", schedules, "a sequence of exponents α (γ = γ0 n^α) or a mapping "
                 "label → callable")
    alphas = [check_finite_number("schedules", a, nonnegative=True) for a in schedules]
    if not alphas:
        bad_value("schedules", schedules, "at least one exponent")
    return {f"alpha={a:g}": (lambda n, a=a: gamma0 * float(n) ** a) for a in alphas}


def _double_limit_point(points: np.ndarray, *, model: str, gamma: float, n: int, seed: int,
                        t_final: float, dt: float, scheme: str, fast: bool | None,
                        delta: float) -> Any:
    """One ``(γ, n, seed)`` run of :func:`double_limit`: per population ``∫|h_p| dμ_n`` and, when
    there are balance ``points`` (K, P), the fraction within ``delta`` and ``E|X − v_p|``."""
    import xarray as xr

    import solvers
    from solvers.network_observables import fraction_within

    mdl = Model.from_json(model)
    run = solvers.simulate_network(mdl, gamma=gamma, n=n, t_final=t_final, dt=dt, seed=seed,
                                   scheme=scheme, save_at=[t_final], fast=fast)
    P = mdl.P
    within = np.full(P, np.nan)
    distance = np.full(P, np.nan)
    if points.shape[0]:
        within = fraction_within(run.states, points, delta)
        distance = np.array([np.mean(np.min(np.abs(run.states[p][:, None] - points[None, :, p]),
                                            axis=1)) for p in range(P)])
    per_pop = ("population",)
    return xr.Dataset({"balance_residual": (per_pop, np.asarray(run.balance_residual[-1], float)),
                       "fraction_within": (per_pop, within), "distance": (per_pop, distance)},
                      coords={"population": list(mdl.names)})


def double_limit(model: Model, schedules: Any = (0.0, 0.5, 1.0), *,
                 ns: Sequence[int] = (100, 1000, 10000), gamma0: float = 1.0,
                 seeds: Sequence[int] = (0,), t_final: float = 1.0, dt: float = 1e-3,
                 delta: float = 0.1, scheme: str = "ou", fast: bool | None = None,
                 client: Any = None, directory: str | os.PathLike[str] | None = None,
                 progress: bool = False) -> Any:
    """Network observables at ``t_final`` along schedules ``γ = γ(n)``.

    ``schedules``: exponents ``α`` (``γ = gamma0 · n^α``) or a mapping label → ``n ↦ γ``. The
    dataset holds per schedule, ``n`` and population the seed-averaged ``balance_residual``
    (``∫|h_p| dμ_n``), ``distance`` (``E|X − v_p|``, nearest balance point) and
    ``fraction_within`` (``δ`` of a balance point), with ``gamma`` and ``balanced_probability``
    (schedule, n): the fraction of seeds in which at least 99% of every population lies within
    ``δ`` — the probability of the conjecture. Attributes give the slopes of
    ``balance_residual`` and ``distance`` in ``n`` and, per schedule, the first ``n`` from which
    the seed-averaged fraction within ``δ`` reaches 99% (the network balances).

    Each ``(γ(n), n, seed)`` run is an independent point of
    :func:`meanfield.studies.sweep.run_points` (schedules meeting at the same γ share it):
    ``client=`` runs them on Dask, ``directory=`` writes each as it finishes and reuses the
    finished ones; the dataset is the same, bit for bit, as a serial run.
    """
    import xarray as xr

    from meanfield import __version__
    from solvers.network_observables import balance_points

    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma0 = check_finite_number("gamma0", gamma0, positive=True)
    delta = check_finite_number("delta", delta, positive=True)
    plan = _schedules(schedules, gamma0)
    n_list = sorted(_ints("ns", ns, 1))
    seed_list = _ints("seeds", seeds, 0)
    settings = _run_settings(t_final, dt, scheme, fast)
    P, S, N = model.P, len(plan), len(n_list)
    gammas = np.array([[check_finite_number("schedules", fn(n), nonnegative=True)
                        for n in n_list] for fn in plan.values()]).reshape(S, N)
    points = balance_points(model)
    shared = {"model": model.to_json(), **settings, "delta": delta}
    # one point per distinct (γ, n, seed), in order of first use
    index: dict[tuple[float, int, int], int] = {}
    for s in range(S):
        for i, n in enumerate(n_list):
            for seed in seed_list:
                index.setdefault((float(gammas[s, i]), n, seed), len(index))
    result = run_points(partial(_double_limit_point, points),
                        [{**shared, "gamma": g, "n": n, "seed": seed} for g, n, seed in index],
                        client=client, directory=directory, progress=progress,
                        description="double limit")

    def runs(key: str) -> np.ndarray:
        """``key`` per (schedule, n, seed, population)."""
        values = [result.datasets[index[(float(gammas[s, i]), n, seed)]][key].values
                  for s in range(S) for i, n in enumerate(n_list) for seed in seed_list]
        return np.array(values, dtype=float).reshape(S, N, len(seed_list), P)

    residual = runs("balance_residual").mean(axis=2)
    distance = np.full((S, N, P), np.nan)
    fraction = np.full((S, N, P), np.nan)
    probability = np.full((S, N), np.nan)
    if points.shape[0]:
        per_seed = runs("fraction_within")
        fraction = per_seed.mean(axis=2)
        probability = np.mean(np.all(per_seed >= BALANCED_FRACTION, axis=3), axis=2)
        distance = runs("distance").mean(axis=2)
    names = list(model.names)
    labels = list(plan)
    slopes = {key: {lab: {p: _slope(n_list, values[s, :, j]) for j, p in enumerate(names)}
                    for s, lab in enumerate(labels)}
              for key, values in (("balance_residual", residual), ("distance", distance))}
    balanced_from = {}
    for s, lab in enumerate(labels):
        ok = [n for i, n in enumerate(n_list) if np.all(fraction[s, i] >= BALANCED_FRACTION)]
        balanced_from[lab] = ok[0] if ok else None
    parameters = {"ns": n_list, "gamma0": gamma0, "seeds": seed_list, "t_final": t_final,
                  "dt": dt, "delta": delta, "scheme": scheme}
    data = {"balance_residual": (("schedule", "n", "population"), residual),
            "distance": (("schedule", "n", "population"), distance),
            "fraction_within": (("schedule", "n", "population"), fraction),
            "gamma": (("schedule", "n"), gammas),
            "balanced_probability": (("schedule", "n"), probability),
            "balance_points": (("branch", "population"), points)}
    attrs = {"study": "double_limit", "model": model.to_json(), "parameters": json.dumps(parameters),
             "meanfield_version": __version__, "fitted_slopes": json.dumps(slopes),
             "balanced_from_n": json.dumps(balanced_from)}
    return xr.Dataset(data, coords={"schedule": labels, "n": n_list, "population": names},
                      attrs=attrs)


def table(ds: Any) -> str:
    """A text table of a network study: errors per ``n`` (convergence) or, per schedule and ``n``,
    γ and the balance observables (double limit)."""
    study = ds.attrs.get("study")
    if study not in ("network_convergence", "double_limit"):
        bad_value("ds", study, "a dataset of network_convergence or double_limit")
    names = [str(p) for p in ds["population"].values]
    if study == "network_convergence":
        head = f"{'n':>8}" + "".join(f"{q + '_' + p:>14}" for q in CONVERGENCE_QUANTITIES
                                     for p in names)
        rows = [head, "-" * len(head)]
        for i, n in enumerate(ds["n"].values):
            rows.append(f"{int(n):>8}" + "".join(
                f"{float(ds['errors'].values[k, i, j]):>14.4e}"
                for k in range(len(CONVERGENCE_QUANTITIES)) for j in range(len(names))))
        rows.append(f"{'slope':>8}" + "".join(f"{float(v):>14.3f}"
                                              for v in ds["fitted_slope"].values.ravel()))
        return "\n".join(rows)
    head = f"{'schedule':>12}{'n':>8}{'gamma':>10}" + "".join(
        f"{key + '_' + p:>16}" for key in ("residual", "distance", "within") for p in names)
    rows = [head, "-" * len(head)]
    for s, label in enumerate(str(v) for v in ds["schedule"].values):
        for i, n in enumerate(ds["n"].values):
            values = [ds[key].values[s, i, j] for key in ("balance_residual", "distance",
                                                           "fraction_within")
                      for j in range(len(names))]
            rows.append(f"{label:>12}{int(n):>8}{float(ds['gamma'].values[s, i]):>10.4g}"
                        + "".join(f"{float(v):>16.4g}" for v in values))
    return "\n".join(rows)


def plot(ds: Any) -> Any:
    """The figure of a network study dataset (a ``matplotlib.figure.Figure``, Agg-safe)."""
    from matplotlib.figure import Figure

    from meanfield.studies.plotting import OKABE_ITO

    study = ds.attrs.get("study")
    if study == "network_convergence":
        from meanfield.studies.plotting import convergence_figure

        return convergence_figure(ds, title=f"network → PDE at γ = "
                                            f"{json.loads(ds.attrs['parameters'])['gamma']:g}")
    if study != "double_limit":
        bad_value("ds", study, "a dataset of network_convergence or double_limit")
    names = [str(p) for p in ds["population"].values]
    n = ds["n"].values.astype(float)
    fig = Figure(figsize=(4.2 * 3, 3.4 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 3, squeeze=False)
    slopes = json.loads(ds.attrs["fitted_slopes"])
    for row, name in enumerate(names):
        for s, label in enumerate(str(v) for v in ds["schedule"].values):
            colour = OKABE_ITO[s % len(OKABE_ITO)]  # colour-blind safe
            res = ds["balance_residual"].values[s, :, row]
            axes[row, 0].loglog(n, res, "o-", color=colour, label=f"{label}: slope "
                                f"{slopes['balance_residual'][label][name]:.2f}")
            dist = ds["distance"].values[s, :, row]
            if np.any(np.isfinite(dist)):
                axes[row, 1].loglog(n, dist, "s-", color=colour, label=label)
            axes[row, 2].semilogx(n, ds["fraction_within"].values[s, :, row], "^-",
                                  color=colour, label=label)
        axes[row, 0].set(xlabel="agents per population n", ylabel="∫|h| dμ_n",
                         title=f"{name}: distance to the balance manifold")
        axes[row, 1].set(xlabel="agents per population n", ylabel="E|X − v*|",
                         title=f"{name}: distance to the balance point")
        axes[row, 2].set(xlabel="agents per population n", ylim=(-0.02, 1.02),
                         ylabel=f"fraction within δ = {json.loads(ds.attrs['parameters'])['delta']:g}",
                         title=f"{name}: fraction balanced")
        for ax in axes[row]:
            ax.legend(fontsize=7)
    fig.suptitle("double limit γ = γ(n), n → ∞")
    return fig
