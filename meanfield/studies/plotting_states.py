r"""Figures of stationary states: the states of one γ, the collapse as γ grows, bifurcations.

- :func:`stationary_figure`: every stationary state of one γ (a dataset with a ``state``
  dimension, or ``StationaryState`` objects), unstable states dashed, each labelled.
- :func:`collapse_figure`: stationary densities at several γ in the rescaled variable
  ``z = √γ (x − v_p)`` (density ``ρ_p(x)/√γ``) against the predicted Gaussian of variance
  ``D_p/A_p`` (docs/mathematics.md §6–7): the curves fall on it as γ grows.
- :func:`bifurcation_figure`: branches of ``solvers.continuation`` — a moment against γ, stable
  parts solid, unstable parts dashed, folds (branch ends inside the γ range) marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value
from meanfield.studies.plotting import _figure, colour, model_label, ordered_colours, suptitle

STABILITY = {1: "stable", 0: "unstable", -1: "stability not computed"}


def _stability_code(value: Any) -> int:
    if value is None:
        return -1
    if isinstance(value, (bool, np.bool_)):
        return int(bool(value))
    return int(value)


def _states_data(states: Any) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, float | None]:
    """``(x, rho (K, P, M), population names, stability codes (K,), gamma)`` of either input."""
    import xarray as xr

    if isinstance(states, xr.Dataset):
        if "rho" not in states or "state" not in states["rho"].dims:
            bad_value("states", sorted(states.data_vars), "a dataset with rho (state, population, x)")
        rho = np.asarray(states["rho"].transpose("state", "population", "x").values, dtype=float)
        codes = (np.asarray(states["stable"].values).astype(int) if "stable" in states
                 else np.full(rho.shape[0], -1))
        gamma = states.attrs.get("gamma")
        return (np.asarray(states["x"].values, dtype=float), rho,
                [str(p) for p in states["population"].values], codes,
                None if gamma is None else float(gamma))
    if isinstance(states, (str, bytes)) or not isinstance(states, Sequence) or not states:
        bad_type("states", states, "a dataset with a state dimension or a non-empty sequence of "
                 "solvers.StationaryState")
    first = states[0]
    return (np.asarray(first.x), np.array([s.rho for s in states]), list(first.model.names),
            np.array([_stability_code(s.stable) for s in states]), float(first.gamma))


def stationary_figure(states: Any, *, title: str | None = None, name: str | None = None,
                      balance: Any = None) -> Any:
    """Every stationary state (one colour each), unstable ones dashed; a panel per population."""
    import xarray as xr

    x, rho, pops, codes, gamma = _states_data(states)
    fig = _figure(max(len(pops), 1.4), width=4.6, height=3.6)
    axes = fig.subplots(1, len(pops), squeeze=False)[0]
    top = float(rho.max())
    for p, (ax, pop) in enumerate(zip(axes, pops, strict=True)):
        for k in range(rho.shape[0]):
            values = np.where(rho[k, p] > top * 1e-8, rho[k, p], np.nan)
            mean = float(np.nansum(x * rho[k, p]) / np.nansum(rho[k, p]))
            ax.plot(x, values, color=colour(k), lw=1.5, ls="--" if codes[k] == 0 else "-",
                    label=f"state {k}, {STABILITY[int(codes[k])]} (mean {mean:.2f})")
        if balance is not None:
            v = np.asarray(balance, dtype=float).reshape(-1)
            ax.axvline(v[p], color="k", ls=":", lw=1, label=f"balance voltage (γ → ∞) {v[p]:.3f}")
        seen = np.flatnonzero(np.nanmax(rho[:, p], axis=0) > top * 1e-6)
        if seen.size:
            pad = 0.05 * (x[seen[-1]] - x[seen[0]] + x[1] - x[0])
            ax.set_xlim(x[seen[0]] - pad, x[seen[-1]] + pad)
        ax.set_ylim(top * 1e-8, top * 3)
        ax.set_yscale("log")
        ax.set_xlabel("membrane potential x")
        ax.set_ylabel(f"stationary density ρ_{pop}(x)")
        ax.set_title(f"population {pop}")
        ax.legend(fontsize=7, loc="lower center")
    label = model_label(states if isinstance(states, xr.Dataset) else xr.Dataset(
        coords={"population": pops}), name)
    gamma_text = f" at γ = {gamma:g}" if gamma is not None else ""
    suptitle(fig, title or f"{label}: stationary states{gamma_text} (dashed: unstable)")
    return fig


def collapse_figure(states: Mapping[float, Any], *, v: Any, A: Any, D: Any,
                    names: Sequence[str], name: str | None = None,
                    title: str | None = None) -> Any:
    r"""Densities in ``z = √γ (x − v_p)`` against the Gaussian ``N(0, D_p/A_p)``.

    ``states`` maps γ to ``(x, rho (P, M))``; ``v``, ``A`` come from
    ``asymptotics.stationary_expansion`` (or the ``balance_voltage`` and ``A`` of a
    ``gamma_convergence`` dataset) and ``D = σ²/2`` from ``model.diffusion``.
    """
    if not isinstance(states, Mapping) or not states:
        bad_type("states", states, "a non-empty mapping gamma -> (x, rho (P, M))")
    v, A, D = (np.asarray(a, dtype=float).reshape(-1) for a in (v, A, D))
    P = len(names)
    if not v.size == A.size == D.size == P:
        bad_value("v", v.tolist(), f"{P} balance voltages, with {P} values of A and of D")
    fig = _figure(max(P, 1.4), width=4.6, height=3.6)
    axes = fig.subplots(1, P, squeeze=False)[0]
    shades = ordered_colours(len(states))
    for p, (ax, pop) in enumerate(zip(axes, names, strict=True)):
        sd = float(np.sqrt(D[p] / A[p]))
        for (gamma, (x, rho)), shade in zip(states.items(), shades, strict=True):
            root = float(np.sqrt(gamma))
            z = root * (np.asarray(x) - v[p])
            keep = np.abs(z) < 5 * sd
            ax.plot(z[keep], np.asarray(rho)[p][keep] / root, color=shade, lw=1.4,
                    label=f"γ = {gamma:g}")
        z = np.linspace(-5 * sd, 5 * sd, 401)
        gaussian = np.exp(-z**2 / (2 * sd**2)) / np.sqrt(2 * np.pi * sd**2)
        ax.plot(z, gaussian, "k--", lw=1.2, label=f"predicted N(0, D/A = {sd**2:.3g})")
        ax.set_xlim(-5 * sd, 5 * sd)
        top = max(float(np.max(line.get_ydata())) for line in ax.get_lines())
        ax.set_ylim(0, 1.55 * top)  # room for the legend above the curves
        ax.set_xlabel(f"rescaled voltage √γ (x − v_{pop})")
        ax.set_ylabel(f"rescaled density ρ_{pop} / √γ")
        ax.set_title(f"population {pop} (v_{pop} = {v[p]:.3f})")
        ax.legend(fontsize=7, loc="upper right", ncols=2)
    import xarray as xr

    label = model_label(xr.Dataset(coords={"population": list(names)}), name)
    suptitle(fig, title or f"{label}: collapse onto the predicted Gaussian as γ grows")
    return fig


def _runs(flags: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs ``(start, stop, code)`` of equal stability codes, each sharing its end point."""
    out = []
    start = 0
    for k in range(1, flags.size + 1):
        if k == flags.size or flags[k] != flags[start]:
            out.append((start, min(k + 1, flags.size), int(flags[start])))
            start = k
    return out


def _fold_pairs(ends: list[tuple[float, float, float]], spacing: float
                ) -> list[tuple[tuple[float, float], tuple[float, float]] | tuple[float, float]]:
    """Pair branch ends ``(γ, y, scale)`` that meet at one fold (γ within two samples)."""
    free = list(range(len(ends)))
    out: list[Any] = []
    while free:
        a = free.pop(0)
        near = [b for b in free if abs(ends[b][0] - ends[a][0]) <= 2 * spacing]
        if near:
            b = min(near, key=lambda k: abs(ends[k][1] - ends[a][1]))
            free.remove(b)
            out.append(((ends[a][0], ends[a][1]), (ends[b][0], ends[b][1])))
        else:
            out.append((ends[a][0], ends[a][1]))
    return out


def bifurcation_figure(branches: Sequence[Any], *, quantity: str = "mean",
                       name: str | None = None, title: str | None = None,
                       xscale: str = "linear") -> Any:
    """A moment (``mean``, ``var`` or ``m``) of every branch against γ, a panel per population.

    ``branches`` come from ``solvers.continuation`` (``gammas`` and ``states``; ``mean``, ``var``,
    ``m``, ``stable`` arrays). Stable parts are solid, unstable dashed, not computed dotted. A
    branch end inside the γ range of all branches is a fold: two ends meeting there (within two
    γ samples) are joined by a thin line and the fold marked × between them. States the grid does
    not resolve (``branch.resolved`` false, :mod:`solvers.resolution`) are hollow markers, listed
    in the legend as "unresolved (ResolutionWarning)".
    """
    from matplotlib.lines import Line2D

    if quantity not in ("mean", "var", "m"):
        bad_value("quantity", quantity, "'mean', 'var' or 'm'")
    if isinstance(branches, (str, bytes)) or not isinstance(branches, Sequence) or not branches:
        bad_type("branches", branches, "a non-empty sequence of solvers.Branch")
    names = list(branches[0].states[0].model.names)
    low = min(float(b.gammas[0]) for b in branches)
    high = max(float(b.gammas[-1]) for b in branches)
    steps = [float(np.min(np.diff(b.gammas))) for b in branches if len(b.gammas) > 1]
    spacing = max(steps) if steps else (high - low)
    fig = _figure(max(len(names), 1.4), width=4.6, height=3.6)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    styles = {1: ("-", colour(0)), 0: ("--", colour(1)), -1: (":", "0.4")}
    codes_seen: set[int] = set()
    folds = False
    unresolved_seen = False
    for p, (ax, pop) in enumerate(zip(axes, names, strict=True)):
        ends = []
        for branch in branches:
            g = np.asarray(branch.gammas, dtype=float)
            y = np.asarray(getattr(branch, quantity), dtype=float)[:, p]
            codes = np.array([_stability_code(s) for s in branch.stable])
            for start, stop, code in _runs(codes):
                codes_seen.add(code)
                ls, col = styles[code]
                ax.plot(g[start:stop], y[start:stop], color=col, ls=ls, lw=1.8,
                        marker="o" if g.size == 1 else None)
            flagged = ~np.asarray(getattr(branch, "resolved", np.ones(g.size, dtype=bool)),
                                  dtype=bool)
            if flagged.any():
                unresolved_seen = True
                ax.plot(g[flagged], y[flagged], "o", ls="none", mfc="white", ms=5,
                        color=styles[int(codes[flagged][0])][1])
            ends += [(g[e], y[e], 0.0) for e in (0, -1)
                     if (e == 0 and g[0] > low) or (e == -1 and g[-1] < high)]
        for pair in _fold_pairs(ends, spacing):
            folds = True
            if isinstance(pair[0], tuple):
                (g1, y1), (g2, y2) = pair
                ax.plot([g1, g2], [y1, y2], color="0.5", lw=0.8)
                ax.plot(0.5 * (g1 + g2), 0.5 * (y1 + y2), "x", color="k", ms=8, mew=2)
            else:
                ax.plot(pair[0], pair[1], "x", color="k", ms=8, mew=2)
        ax.set_xscale(xscale)
        ax.set_xlabel("coupling strength γ")
        ax.set_ylabel(f"{quantity} of population {pop}")
        ax.set_title(f"population {pop}")
        handles = [Line2D([], [], color=styles[c][1], ls=styles[c][0], label=STABILITY[c])
                   for c in (1, 0, -1) if c in codes_seen]
        if folds:
            handles.append(Line2D([], [], color="k", ls="none", marker="x", mew=2, label="fold"))
        if unresolved_seen:
            handles.append(Line2D([], [], color="0.3", ls="none", marker="o", mfc="white",
                                  label="unresolved (ResolutionWarning)"))
        ax.legend(handles=handles, fontsize=7)
    import xarray as xr

    label = model_label(xr.Dataset(coords={"population": names}), name)
    suptitle(fig, title or f"{label}: stationary states against γ (dashed: unstable)")
    return fig
