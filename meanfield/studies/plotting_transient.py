r"""Figures of a time-dependent solve: snapshots, a space–time image of ``log ρ``, moments.

At coupling γ the density first collapses onto the balance voltage in an initial layer of
duration ``~1/γ`` (the drift ``γ h_p`` dominates, docs/mathematics.md §5–6), then moves on the
time scale of the intrinsic dynamics. Frames equally spaced in ``t`` miss the layer: ask the solve
for :func:`log_times` (``save_at=``), which spaces them logarithmically from ``0.1/γ``.

- :func:`transient_figure`: one row per population — snapshots of ``ρ_p(t, x)`` (log scale,
  colour from early to late), the image of ``log₁₀ ρ_p`` over ``(log t, x)`` with the balance
  voltage, and mean ± standard deviation against ``log t`` with the balance voltage.
- :func:`frames`: which saved times are drawn — all of them up to ``max_frames``, else that many
  evenly spread (the figure then says "showing k of n saved times"); none is dropped silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meanfield.errors import bad_value, check_finite_number, check_int
from meanfield.studies.plotting import _figure, colour, model_label, ordered_colours, suptitle

FLOOR_DECADES = 8.0
"""Densities below ``10^{-8}`` of the largest are not drawn (log scales)."""


def log_times(gamma: float, t_final: float, *, per_decade: int = 4, start: float = 0.1) -> np.ndarray:
    """Save times ``0`` and ``per_decade`` log-spaced times a decade from ``start/γ`` to ``t_final``.

    With the default ``start = 0.1`` several frames fall in the initial layer ``t ≲ 5/γ``;
    ``t_final`` is always the last time. For ``γ ≤ 0`` the times start at ``start·t_final/10``.
    """
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    t_final = check_finite_number("t_final", t_final, positive=True)
    per_decade = check_int("per_decade", per_decade, minimum=1)
    start = check_finite_number("start", start, positive=True)
    first = start / gamma if gamma > 0 else start * t_final / 10
    first = min(first, t_final / 10)
    count = max(2, int(np.ceil(per_decade * np.log10(t_final / first))) + 1)
    return np.concatenate([[0.0], np.geomspace(first, t_final, count)])


def frames(t: np.ndarray, max_frames: int) -> tuple[np.ndarray, str | None]:
    """Indices of the saved times to draw and the note saying which were left out (or ``None``)."""
    max_frames = check_int("max_frames", max_frames, minimum=2)
    n = len(t)
    if n <= max_frames:
        return np.arange(n), None
    index = np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))
    return index, f"showing {index.size} of {n} saved times, evenly spread"


def _window(x: np.ndarray, rho: np.ndarray, decades: float = 6.0) -> tuple[float, float]:
    """The x range where some frame exceeds ``10^{-decades}`` of the largest density (padded)."""
    top = float(np.max(rho))
    seen = np.flatnonzero(np.max(rho, axis=0) > top * 10.0 ** (-decades))
    if seen.size == 0:
        return float(x[0]), float(x[-1])
    lo, hi = float(x[seen[0]]), float(x[seen[-1]])
    pad = 0.05 * max(hi - lo, float(x[1] - x[0]))
    return max(float(x[0]), lo - pad), min(float(x[-1]), hi + pad)


def _time_label(t: float) -> str:
    return "t = 0" if t == 0 else f"t = {t:.2g}"


def _edges_log(t: np.ndarray) -> np.ndarray:
    """Cell edges (geometric midpoints) around positive times ``t`` for a log-time image."""
    logs = np.log(t)
    mid = 0.5 * (logs[1:] + logs[:-1])
    return np.exp(np.concatenate([[2 * logs[0] - mid[0]], mid, [2 * logs[-1] - mid[-1]]]))


def _check(ds: Any, balance: Any) -> np.ndarray | None:
    if "rho" not in ds or "t" not in ds["rho"].dims:
        bad_value("ds", sorted(ds.data_vars), "a solve dataset with rho (t, population, x)")
    if balance is None:
        return None
    values = np.asarray(balance, dtype=float).reshape(-1)
    if values.size != ds.sizes["population"]:
        bad_value("balance", balance, f"{ds.sizes['population']} balance voltages (one per "
                  "population)")
    return values


def transient_figure(ds: Any, *, title: str | None = None, name: str | None = None,
                     balance: Any = None, max_frames: int = 14) -> Any:
    """Snapshots, space–time image of ``log₁₀ ρ`` and mean ± sd of a solve dataset, per population.

    ``ds`` is ``Solution.to_xarray()``; ``balance`` the balance voltages (drawn when given);
    ``name`` the model's name for the title. The image needs two saved times ``t > 0``; with fewer
    it is left out. Times ``t = 0`` are not on the log-time axes (the snapshots show them).
    """
    from matplotlib.colors import Normalize

    v = _check(ds, balance)
    t = np.asarray(ds["t"].values, dtype=float)
    x = np.asarray(ds["x"].values, dtype=float)
    pops = [str(p) for p in ds["population"].values]
    positive = np.flatnonzero(t > 0)
    image = positive.size >= 2
    ncols = 3 if image else 2
    fig = _figure(ncols, len(pops), width=4.4, height=3.3)
    grid = fig.subplots(len(pops), ncols, squeeze=False)
    index, note = frames(t, max_frames)
    shades = ordered_colours(index.size)
    gamma = ds.attrs.get("gamma")
    for p, pop in enumerate(pops):
        rho = np.asarray(ds["rho"].sel(population=pop).values, dtype=float)
        top = float(rho.max())
        lo, hi = _window(x, rho)
        ax = grid[p, 0]
        for k, shade in zip(index, shades, strict=True):
            values = np.where(rho[k] > top * 10 ** -FLOOR_DECADES, rho[k], np.nan)
            ax.plot(x, values, color=shade, lw=1.3, label=_time_label(float(t[k])))
        if v is not None:
            ax.axvline(v[p], color="k", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_ylim(top * 10 ** -FLOOR_DECADES, top * 3)
        ax.set_xlim(lo, hi)
        ax.set_xlabel("membrane potential x")
        ax.set_ylabel(f"density ρ_{pop}(t, x)")
        ax.set_title(f"population {pop}: snapshots")
        if image:
            ax_img = grid[p, 1]
            tp = t[positive]
            logs = np.log10(np.maximum(rho[positive], top * 10 ** -FLOOR_DECADES))
            mesh = ax_img.pcolormesh(_edges_log(tp), np.asarray(ds["edges"].values) if "edges" in ds
                                     else _centre_edges(x), logs.T, shading="flat",
                                     cmap="viridis", norm=Normalize(logs.max() - FLOOR_DECADES,
                                                                    logs.max()), rasterized=True)
            _log_time_axis(ax_img, tp)
            ax_img.set_ylim(lo, hi)
            if v is not None:
                ax_img.axhline(v[p], color="white", ls="--", lw=1.2,
                               label=f"balance voltage (γ → ∞) {v[p]:.3f}")
                ax_img.legend(fontsize=7, loc="lower right", framealpha=0.8)
            ax_img.set_xlabel("time t (log scale)")
            ax_img.set_ylabel("membrane potential x")
            ax_img.set_title(f"population {pop}: log₁₀ ρ")
            fig.colorbar(mesh, ax=ax_img, label=f"log₁₀ ρ_{pop}")
        ax_mom = grid[p, -1]
        mean = np.asarray(ds["mean"].sel(population=pop).values, dtype=float)
        sd = np.sqrt(np.maximum(np.asarray(ds["var"].sel(population=pop).values, dtype=float), 0))
        keep = t > 0
        ax_mom.fill_between(t[keep], (mean - sd)[keep], (mean + sd)[keep], color=colour(p),
                            alpha=0.25, lw=0, label="mean ± standard deviation")
        ax_mom.plot(t[keep], mean[keep], "o-", ms=3, color=colour(p), label="mean")
        if v is not None:
            ax_mom.axhline(v[p], color="k", ls=":", lw=1, label=f"balance voltage (γ → ∞) {v[p]:.3f}")
        _log_time_axis(ax_mom, t[keep])
        ax_mom.set_xlabel("time t (log scale)")
        ax_mom.set_ylabel(f"mean of x in population {pop}")
        ax_mom.set_title(f"population {pop}: mean ± sd")
        ax_mom.legend(fontsize=7)
    if gamma is not None and float(gamma) > 0:
        for ax in grid[:, 1:].ravel():
            ax.axvline(1.0 / float(gamma), color="0.4", ls="-.", lw=0.8)
    legend = fig.legend(*grid[0, 0].get_legend_handles_labels(), loc="outside right upper",
                        fontsize=7, title=note or "saved times", title_fontsize=7)
    legend.set_gid("snapshot-legend")
    gamma_text = f" at γ = {float(gamma):g}" if gamma is not None else ""
    extra = "; dash-dot line: t = 1/γ" if gamma is not None and float(gamma) > 0 else ""
    suptitle(fig, title or f"{model_label(ds, name)}: transient{gamma_text}{extra}")
    return fig


def _log_time_axis(ax: Any, t: np.ndarray) -> None:
    """Log-scaled time axis whose labels never crowd: decades, or 1-2-5 within short ranges."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if t.size and np.log10(t.max() / t.min()) < 1.5:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))


def _centre_edges(x: np.ndarray) -> np.ndarray:
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])
