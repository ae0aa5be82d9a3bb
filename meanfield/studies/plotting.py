"""Figures of study datasets and solutions (matplotlib ``Figure`` objects, no pyplot state).

- :func:`convergence_figure`: every error of a convergence study against its abscissa on log–log
  axes, with the fitted slopes and a line of the predicted slope; points a study marks as not
  resolved (``resolved == False``) are hollow and excluded from the fit.
- :func:`densities_figure`: a solve (:func:`~meanfield.studies.plotting_transient.transient_figure`:
  snapshots at log-spaced times, a space–time image of ``log ρ``, mean ± standard deviation) or
  stationary states (:func:`~meanfield.studies.plotting_states.stationary_figure`, unstable ones
  dashed).
- :func:`concentration_figure`: stationary densities at several γ on the balance voltages;
  :mod:`meanfield.studies.plotting_states` also draws the collapse in ``√γ (x − v)`` and
  bifurcation diagrams.
- :func:`plot` picks the right one from the dataset (also ``dataset.study.plot()``), or the
  ``plot(ds)`` of the study's own module (double limit, FitzHugh–Nagumo, truncated equations).

Every figure has labelled axes, uses the colour-blind-safe Okabe–Ito palette (categories) or
viridis (ordered values), and a constrained layout; :func:`save` writes PNG and, on request, PDF.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LABELS = {"gamma": "coupling strength γ", "h": "cell width h", "dt": "time step dt",
          "n": "agents per population n"}

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
             "#000000")
"""The Okabe–Ito colours (colour-blind safe), most distinct first; categories take them in order."""

SEQUENTIAL = "viridis"
"""Colormap of ordered values (times, γ): perceptually uniform and colour-blind safe."""

FORMATS = ("png", "pdf")


def colour(k: int) -> str:
    """The ``k``-th categorical colour (cycling through :data:`OKABE_ITO`)."""
    return OKABE_ITO[k % len(OKABE_ITO)]


def ordered_colours(count: int) -> list[Any]:
    """``count`` colours along :data:`SEQUENTIAL` (dark to light, the last not too pale)."""
    from matplotlib import colormaps

    cmap = colormaps[SEQUENTIAL]
    return [cmap(v) for v in np.linspace(0.0, 0.85, max(count, 1))]


def _figure(ncols: int, nrows: int = 1, width: float = 4.6, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width * ncols, height * nrows), layout="constrained")


def suptitle(figure: Any, text: str, *, size: float = 12.0) -> Any:
    """Set the figure title, wrapped on words so that it fits the figure's width."""
    import textwrap

    width_in = float(figure.get_figwidth())
    chars = max(20, int(width_in * 72 / (0.6 * size)))  # average glyph ≈ 0.6 em
    return figure.suptitle("\n".join(textwrap.wrap(text, chars)), fontsize=size)


def close(figure: Any) -> None:
    """Release a figure's memory (figures made here are not registered with pyplot)."""
    figure.clear()


def save(figure: Any, path: str | Path, *, formats: Sequence[str] = ("png",),
         dpi: int = 150) -> list[Path]:
    """Write ``figure`` to ``path`` once per format (suffix replaced); returns the paths.

    PNG is a raster at ``dpi``; PDF is vector (for print).
    """
    from meanfield.errors import bad_value

    if isinstance(formats, str) or not formats or any(f not in FORMATS for f in formats):
        bad_value("formats", formats, f"a non-empty sequence of {', '.join(FORMATS)}")
    written = []
    for fmt in formats:
        target = Path(path).with_suffix(f".{fmt}")
        figure.savefig(target, dpi=dpi if fmt == "png" else None, format=fmt)
        written.append(target)
    return written


MODEL_NAME_ATTR = "model_name"
"""Dataset attribute holding the model's name for titles (a :class:`~meanfield.Model` has none)."""


def model_label(ds: Any, name: str | None = None) -> str:
    """The model's name for titles: ``name`` if given, else ``ds.attrs["model_name"]`` (recorded
    by whoever knew the name), else ``model (populations of ds)``."""
    from meanfield.errors import bad_type

    if name is not None and not isinstance(name, str):
        bad_type("name", name, "a string (the model's name for figure titles) or None")
    if name and name.strip():
        return name
    recorded = getattr(ds, "attrs", {}).get(MODEL_NAME_ATTR)
    if isinstance(recorded, str) and recorded.strip():
        return recorded
    coords = getattr(ds, "coords", {})
    pops = [str(p) for p in coords["population"].values] if "population" in coords else []
    return f"model ({', '.join(pops)})" if pops else "model"


def _resolved(ds: Any, abscissa: str, pop: str | None) -> np.ndarray:
    """``resolved`` of the study per abscissa point (all true when the study has none)."""
    size = ds.sizes[abscissa]
    if "resolved" not in ds.data_vars:
        return np.ones(size, dtype=bool)
    flag = ds["resolved"]
    if pop is not None and "population" in flag.dims:
        flag = flag.sel(population=pop)
    values = np.asarray(flag.values).astype(bool)
    if values.ndim > 1:  # other dimensions: resolved only where all are
        values = values.reshape(size, -1).all(axis=1) if flag.dims[0] == abscissa else \
            values.reshape(-1, size).all(axis=0)
    return values


def _anchor(ds: Any, abscissa: str, resolved: np.ndarray) -> int:
    """Index of the point the predicted-slope line goes through: the best-resolved one."""
    for key in ("cells_per_width", "resolution"):
        if key in ds.data_vars and abscissa in ds[key].dims:
            width = np.asarray(ds[key].values, dtype=float)
            width = width.reshape(ds.sizes[abscissa], -1).min(axis=1) \
                if ds[key].dims[0] == abscissa else width.reshape(-1, ds.sizes[abscissa]).min(axis=0)
            return int(np.nanargmax(width))
    good = np.flatnonzero(resolved)
    return int(good[-1]) if good.size else ds.sizes[abscissa] - 1


def convergence_figure(ds: Any, *, title: str | None = None, name: str | None = None) -> Any:
    """Log–log errors of a convergence study with fitted and predicted slopes.

    One panel per quantity, one line per population (Okabe–Ito colours). Points with
    ``resolved == False`` (when the study has that variable) are hollow and listed in the legend
    as "unresolved (excluded from fit)"; the dashed line of the predicted slope goes through the
    best-resolved point (largest ``cells_per_width`` when present, else the last resolved one).
    """
    from matplotlib.lines import Line2D

    abscissa = ds.attrs["abscissa"]
    errors = ds["errors"]
    quantities = [str(q) for q in errors["quantity"].values]
    labels = json.loads(ds.attrs.get("quantity_labels", "{}"))
    ncols = min(3, len(quantities))
    nrows = -(-len(quantities) // ncols)
    fig = _figure(ncols, nrows, width=4.3, height=3.6)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    for ax in grid.ravel()[len(quantities):]:
        ax.set_visible(False)
    axes = grid.ravel()[:len(quantities)]
    s = ds[abscissa].values.astype(float)
    for ax, quantity in zip(axes, quantities, strict=True):
        err = errors.sel(quantity=quantity)
        pops = [str(p) for p in err["population"].values] if "population" in err.dims else [None]
        anchors = []
        any_unresolved = False
        for k, pop in enumerate(pops):
            values = np.asarray(err.sel(population=pop).values if pop is not None else err.values,
                                dtype=float)
            fitted = float(ds["fitted_slope"].sel(quantity=quantity, **(
                {"population": pop} if pop is not None else {})))
            label = f"{pop}: fitted slope {fitted:.2f}" if pop is not None else \
                f"fitted slope {fitted:.2f}"
            keep = np.isfinite(values) & (values > 0)
            resolved = _resolved(ds, abscissa, pop)
            ax.loglog(s[keep], values[keep], "-", color=colour(k), lw=1.2)
            solid = keep & resolved
            hollow = keep & ~resolved
            ax.loglog(s[solid], values[solid], "o", color=colour(k), label=label)
            if hollow.any():
                any_unresolved = True
                ax.loglog(s[hollow], values[hollow], "o", mfc="white", color=colour(k))
            index = _anchor(ds, abscissa, resolved)
            if keep[index]:
                anchors.append(values[index])
        predicted = float(ds["predicted_slope"].sel(quantity=quantity))
        index = _anchor(ds, abscissa, _resolved(ds, abscissa, None))
        if np.isfinite(predicted) and anchors:
            anchor_e = float(np.exp(np.mean(np.log(anchors))))
            guide = anchor_e * (s / s[index]) ** predicted
            ax.loglog(s, guide, "k--", lw=1, label=f"predicted slope {predicted:g}")
        handles, texts = ax.get_legend_handles_labels()
        if any_unresolved:
            handles.append(Line2D([], [], ls="none", marker="o", mfc="white", color="0.3"))
            texts.append("unresolved (excluded from fit)")
        ax.set_xlabel(LABELS.get(abscissa, abscissa))
        ax.set_ylabel(labels.get(quantity, f"error in {quantity}"))
        ax.set_title(quantity)
        ax.legend(handles, texts, fontsize=7)
    default = f"{model_label(ds, name)}: {ds.attrs.get('study', 'convergence')}, errors " \
              f"against {abscissa}"
    suptitle(fig, title or default)
    return fig


def densities_figure(ds: Any, *, title: str | None = None, name: str | None = None,
                     balance: Any = None, max_frames: int = 14) -> Any:
    """Densities ``rho`` of a solve (dims t, population, x) or of stationary states (state, ...).

    A solve is drawn by :func:`~meanfield.studies.plotting_transient.transient_figure` (all saved
    times up to ``max_frames``, else that many chosen evenly, with a note), stationary states by
    :func:`~meanfield.studies.plotting_states.stationary_figure`.
    """
    rho = ds["rho"]
    if "t" in rho.dims:
        from meanfield.studies.plotting_transient import transient_figure

        return transient_figure(ds, title=title, name=name, balance=balance,
                                max_frames=max_frames)
    from meanfield.studies.plotting_states import stationary_figure

    return stationary_figure(ds, title=title, name=name, balance=balance)


def concentration_figure(states: dict[float, Any], names: tuple[str, ...], *,
                         title: str | None = None, balance: np.ndarray | None = None,
                         name: str | None = None) -> Any:
    """One curve per γ of ``states`` (``{gamma: (x, rho (P, M))}``), a panel per population.

    Each panel is zoomed on where some density exceeds ``10⁻³``; γ runs along viridis. The
    default title starts with the model's ``name`` when given.
    """
    if title is None:
        text = "densities concentrate on the balance voltages as γ grows"
        title = f"{model_label(None, name)}: {text}" if name else text[0].upper() + text[1:]
    fig = _figure(len(names))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    shades = ordered_colours(len(states))
    for (gamma, (x, rho)), shade in zip(states.items(), shades, strict=True):
        for p, ax in enumerate(axes):
            keep = rho[p] > 1e-3
            ax.plot(x[keep], rho[p][keep], color=shade, label=f"γ = {gamma:g}")
    for p, (ax, name) in enumerate(zip(axes, names, strict=True)):
        if balance is not None:
            ax.axvline(balance[p], color="k", ls=":", lw=1, label=f"balance voltage (γ → ∞) {balance[p]:.3f}")
        ax.set_yscale("log")
        ax.set_xlabel("membrane potential x")
        ax.set_ylabel(f"stationary density ρ_{name}(x)")
        ax.set_title(f"population {name}")
        ax.legend(fontsize=7)
    suptitle(fig, title)
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
        lines.append(f"{q!s:<22}{pred:>10.3g}" + "".join(f"{v:>12.3f}" for v in vals))
    if json.loads(ds.attrs.get("excluded_points", "[]")):
        lines.append(f"note: {ds.attrs.get('resolution', 'unresolved points excluded')}")
    return "\n".join(lines)


def attrs_slopes(ds: Any) -> dict[str, Any]:
    """The ``fitted_slopes`` attribute of a study, decoded."""
    return json.loads(ds.attrs["fitted_slopes"])
