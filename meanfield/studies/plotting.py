"""Figures of study datasets and solutions (matplotlib ``Figure`` objects, no pyplot state).

- :func:`convergence_figure`: every error of a convergence study against its abscissa on log–log
  axes, with the fitted line and a line of the predicted slope.
- :func:`densities_figure`: densities of a solve (a few times) or of stationary states, one panel
  per population, on a log scale.
- :func:`plot` picks the right one from the dataset (also ``dataset.study.plot()``), or the
  ``plot(ds)`` of the study's own module (double limit, FitzHugh–Nagumo, truncated equations).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

LABELS = {"gamma": "coupling strength γ", "h": "cell width h", "dt": "time step dt",
          "n": "agents per population n"}


def _figure(ncols: int, nrows: int = 1, width: float = 4.6, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width * ncols, height * nrows), layout="constrained")


def close(figure: Any) -> None:
    """Release a figure's memory (figures made here are not registered with pyplot)."""
    figure.clear()


def convergence_figure(ds: Any, *, title: str | None = None) -> Any:
    """Log–log errors of a convergence study with fitted and predicted slopes."""
    abscissa = ds.attrs["abscissa"]
    errors = ds["errors"]
    quantities = [str(q) for q in errors["quantity"].values]
    labels = json.loads(ds.attrs.get("quantity_labels", "{}"))
    ncols = min(3, len(quantities))
    nrows = -(-len(quantities) // ncols)
    fig = _figure(ncols, nrows, width=4.2, height=3.3)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    for ax in grid.ravel()[len(quantities):]:
        ax.set_visible(False)
    axes = grid.ravel()[:len(quantities)]
    s = ds[abscissa].values.astype(float)
    for ax, quantity in zip(axes, quantities, strict=True):
        err = errors.sel(quantity=quantity)
        pops = [str(p) for p in err["population"].values] if "population" in err.dims else [None]
        for pop in pops:
            values = err.sel(population=pop).values if pop is not None else err.values
            fitted = float(ds["fitted_slope"].sel(quantity=quantity, **(
                {"population": pop} if pop is not None else {})))
            label = f"{pop}: slope {fitted:.2f}" if pop is not None else f"slope {fitted:.2f}"
            keep = np.isfinite(values) & (values > 0)
            (line,) = ax.loglog(s[keep], values[keep], "o-", label=label)
        predicted = float(ds["predicted_slope"].sel(quantity=quantity))
        if np.isfinite(predicted):
            last = np.asarray(err.values)[..., -1] if "population" not in err.dims else \
                err.isel({abscissa: -1}).values
            last = np.atleast_1d(last)[np.isfinite(np.atleast_1d(last)) & (np.atleast_1d(last) > 0)]
            if last.size:
                anchor_e = float(np.exp(np.mean(np.log(last))))
                guide = anchor_e * (s / s[-1]) ** predicted
                ax.loglog(s, guide, "k--", lw=1, label=f"predicted slope {predicted:g}")
        ax.set_xlabel(LABELS.get(abscissa, abscissa))
        ax.set_ylabel(labels.get(quantity, f"error in {quantity}"))
        ax.set_title(quantity)
        ax.legend(fontsize=7)
    fig.suptitle(title or f"{ds.attrs.get('study', 'convergence')}: errors against {abscissa}")
    return fig


def densities_figure(ds: Any, *, title: str | None = None, frames: int = 5) -> Any:
    """Densities ``rho`` of a solve (dims t, population, x) or of stationary states (state, ...)."""
    rho = ds["rho"]
    pops = [str(p) for p in rho["population"].values]
    fig = _figure(len(pops))
    axes = fig.subplots(1, len(pops), squeeze=False)[0]
    x = ds["x"].values
    if "t" in rho.dims:
        index = np.unique(np.linspace(0, rho.sizes["t"] - 1, frames).round().astype(int))
        curves = [(f"t = {float(ds['t'][k]):.3g}", rho.isel(t=k)) for k in index]
    elif "state" in rho.dims:
        curves = [(f"state {k}", rho.isel(state=k)) for k in range(rho.sizes["state"])]
    else:
        curves = [("", rho)]
    for ax, pop in zip(axes, pops, strict=True):
        for label, frame in curves:
            values = frame.sel(population=pop).values
            keep = values > 1e-8 * values.max()
            ax.plot(x[keep], values[keep], label=label)
        ax.set_yscale("log")
        ax.set_xlabel("x (membrane potential)")
        ax.set_ylabel(f"density ρ_{pop}")
        ax.set_title(f"population {pop}")
        ax.legend(fontsize=7)
    gamma = ds.attrs.get("gamma")
    fig.suptitle(title or (f"densities at γ = {float(gamma):g}" if gamma is not None else
                           "densities"))
    return fig


def concentration_figure(states: dict[float, Any], names: tuple[str, ...], *,
                         title: str = "Densities concentrate on the balance voltages as γ grows",
                         balance: np.ndarray | None = None) -> Any:
    """One curve per γ of ``states`` (``{gamma: (x, rho (P, M))}``), a panel per population."""
    fig = _figure(len(names))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for gamma, (x, rho) in states.items():
        for p, ax in enumerate(axes):
            keep = rho[p] > 1e-3
            ax.plot(x[keep], rho[p][keep], label=f"γ = {gamma:g}")
    for p, (ax, name) in enumerate(zip(axes, names, strict=True)):
        if balance is not None:
            ax.axvline(balance[p], color="k", ls=":", lw=1, label=f"balance voltage {balance[p]:.3f}")
        ax.set_yscale("log")
        ax.set_xlabel("x (membrane potential)")
        ax.set_ylabel(f"stationary density ρ_{name}")
        ax.set_title(f"population {name}")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


STUDY_FIGURES = {"double_limit": "meanfield.studies.network",
                 "fitzhugh_nagumo": "meanfield.studies.fitzhugh_nagumo",
                 "rescaled_truncation": "meanfield.studies.rescaled"}
"""Studies drawn by the ``plot(ds)`` of their own module, by ``ds.attrs["study"]``."""


def plot(ds: Any, **kwargs: Any) -> Any:
    """The natural figure of a study or solve dataset.

    Studies of :data:`STUDY_FIGURES` are drawn by their module's ``plot(ds)`` (which takes no
    options); other convergence studies (``errors`` and an ``abscissa`` attribute, e.g.
    ``network_convergence``) by :func:`convergence_figure`; solves and stationary states
    (``rho``) by :func:`densities_figure`. ``kwargs`` go to the last two.
    """
    import importlib

    import xarray as xr

    from meanfield.errors import bad_type, bad_value

    if not isinstance(ds, xr.Dataset):
        bad_type("ds", ds, "an xarray.Dataset returned by a study or a solve")
    study = ds.attrs.get("study")
    if study in STUDY_FIGURES:
        if kwargs:
            bad_value("kwargs", sorted(kwargs), f"no options: the {study} figure takes none")
        return importlib.import_module(STUDY_FIGURES[study]).plot(ds)
    if "errors" in ds.data_vars and "abscissa" in ds.attrs:
        return convergence_figure(ds, **kwargs)
    if "rho" in ds.data_vars:
        return densities_figure(ds, **kwargs)
    raise ValueError(f"ds={sorted(ds.data_vars)} is not allowed: a study dataset "
                     f"(study {', '.join(sorted(STUDY_FIGURES))}), a convergence study (errors "
                     "and an abscissa attribute) or densities (rho)")


def slopes_table(ds: Any) -> str:
    """The fitted slopes of a convergence study against the predicted ones, as text."""
    if "fitted_slope" not in ds.data_vars or "predicted_slope" not in ds.data_vars:
        from meanfield.errors import bad_value

        bad_value("ds", ds.attrs.get("study", sorted(ds.data_vars)),
                  "a convergence study (fitted_slope and predicted_slope variables); other "
                  "studies keep their slopes in attrs['fitted_slopes']")
    fitted = ds["fitted_slope"]
    has_pop = "population" in fitted.dims
    pops = [str(p) for p in fitted["population"].values] if has_pop else [""]
    head = f"{'quantity':<22}{'predicted':>10}" + "".join(f"{'fitted ' + p:>12}" for p in pops)
    lines = [head, "-" * len(head)]
    for q in fitted["quantity"].values:
        pred = float(ds["predicted_slope"].sel(quantity=q))
        vals = [float(fitted.sel(quantity=q, population=p)) if has_pop else
                float(fitted.sel(quantity=q)) for p in pops]
        lines.append(f"{str(q):<22}{pred:>10.3g}" + "".join(f"{v:>12.3f}" for v in vals))
    return "\n".join(lines)


def attrs_slopes(ds: Any) -> dict[str, Any]:
    """The ``fitted_slopes`` attribute of a study, decoded."""
    return json.loads(ds.attrs["fitted_slopes"])
