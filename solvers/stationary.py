r"""Exact stationary states (docs/mathematics.md §3): discrete Gibbs states solving the self-consistency.

Every stationary state is ``ρ_p ∝ exp(−U_p(x; m)/D_p)`` with ``m_q = ∫ Ψ_q ρ_q``: a fixed point
``m = T(m)`` in R^P (:mod:`solvers.stationary_search` finds them: scan for P = 1, multi-start
Newton for P ≥ 2, on a coarsening of fine grids, then polished on the requested grid). The node
potentials are accumulated from the same edge differences the finite-volume scheme uses, so each
state returned here is a fixed point of that scheme to round-off. Linear stability: the spectrum
of the linearised discrete operator, nonlocal term included, without the P structural zero
eigenvalues (mass conservation).

Every state carries its resolution report (:mod:`solvers.resolution`) and Richardson error
estimates of its means and variances: the same state polished (one Newton solve from the known
root, cheap for exact Gibbs states) on the grid splitting every cell gives
``error ≈ (4/3)|q_h − q_{h/2}|`` (second order; an upper bound when, as for Gaussian states,
the convergence is faster); when the state keeps twice the cells per width it needs, the grid
merging pairs of cells is used instead, ``error ≈ |q_h − q_{2h}|/3``; on adapted (non-uniform)
grids ``error ≈ 2|q_h − q_{h/2}|`` (first order allowed).

``cells="auto"`` adapts the grid to the states (:func:`auto_grid`): the cells that matter to a
state are split until they resolve its width, the others stay wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.fv import bernoulli_derivative, divergence_bands, flux_coefficients, scaled_differences
from solvers.grid import Grid, make_grid
from solvers.resolution import DEFAULT_TOLERANCE, ResolutionReport, assess_frames, width_target
from solvers.stationary_search import (
    RESIDUAL_TOL,
    SEARCH_CELLS,
    GibbsMap,
    coarsened,
    find_roots,
    newton,
)

__all__ = [
    "RESIDUAL_TOL",
    "Branch",
    "GibbsMap",
    "StationaryState",
    "continuation",
    "linearised_spectrum",
    "stationary_states",
]

STABILITY_CELLS = 10_000
"""Finer grids take the spectrum of the state polished on a coarsening of this many cells."""
AUTO_PROBE_CELLS = 1000
AUTO_MAX_CELLS = 1_000_000
"""Most cells ``cells="auto"`` uses (beyond it the states carry a ResolutionWarning)."""
AUTO_SPLIT = 64
"""Most pieces ``cells="auto"`` splits a cell into per level."""
AUTO_LEVELS = 12
ADAPTED_SEARCH_CELLS = 50_000
"""Non-uniform grids up to this many cells are searched without coarsening."""
AUTO_MASS = 1e-13
"""Cells holding less (distance-weighted) mass of every state are left as they are."""


@dataclass(frozen=True, eq=False)
class StationaryState:
    """One stationary state at coupling ``gamma``: densities (P, M) on the cell centres ``x``."""

    model: Model
    gamma: float
    x: np.ndarray
    rho: np.ndarray
    m: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    residual: float
    stable: bool | None
    eigenvalues: np.ndarray | None
    edges: np.ndarray = field(repr=False)
    resolution: ResolutionReport | None = field(default=None, repr=False)
    """How well the grid resolves this state (:mod:`solvers.resolution`)."""
    error_mean: np.ndarray | None = field(default=None, repr=False)
    """Richardson estimate of the discretisation error of ``mean`` (P,)."""
    error_var: np.ndarray | None = field(default=None, repr=False)
    """Richardson estimate of the discretisation error of ``var`` (P,)."""

    @property
    def grid(self) -> Grid:
        return Grid(self.edges)

    @property
    def mass(self) -> np.ndarray:
        return self.rho @ np.diff(self.edges)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (population, x), CF metadata (:mod:`solvers.datasets`)."""
        from solvers.state_io import states_dataset

        return states_dataset([self], branch=False)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> StationaryState:
        """The state of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.state_io import states_from_dataset

        return states_from_dataset(ds, path, branch=False)[0]

    def __repr__(self) -> str:
        stab = {None: "?", True: "stable", False: "unstable"}[self.stable]
        return (f"StationaryState(gamma={self.gamma:g}, m={np.round(self.m, 6).tolist()}, "
                f"mean={np.round(self.mean, 6).tolist()}, var={self.var.tolist()}, {stab}, "
                f"residual={self.residual:.1e})")


def linearised_spectrum(gmap: GibbsMap, m: np.ndarray, *, count: int = 8,
                        dense_limit: int = 600) -> np.ndarray:
    """Eigenvalues of the linearised scheme at the stationary state ``m`` (nonlocal term included).

    The P structural zeros (one conserved mass per population) are removed. All eigenvalues when
    P·M ≤ ``dense_limit``; otherwise the ``count`` nearest the imaginary axis's origin (ARPACK,
    shift-invert with a Woodbury solve), which decide stability at folds and slow Hopf points.
    """
    nm, grid, gamma = gmap.nm, gmap.grid, gmap.gamma
    P, M = nm.P, grid.cells
    rho = gmap.densities(m)
    mj = gmap.all_moments(m)
    delta = scaled_differences(gmap.dF, gmap.dG, nm.g, nm.D, mj, gamma)
    a, b = flux_coefficients(delta, nm.D, grid.dx)
    lower, diag, upper = divergence_bands(a, b, grid.h)
    # columns ∂(Lρ)_p/∂m_j: divergence of ∂J/∂δ · ∂δ/∂m_j
    dJ_ddelta = (nm.D[:, None] / grid.dx[None, :]) * (
        bernoulli_derivative(delta) * rho[:, :-1] + bernoulli_derivative(-delta) * rho[:, 1:])
    columns = np.zeros((P * M, P))
    for p in range(P):
        for j in range(P):
            dJ = dJ_ddelta[p] * gamma * nm.g[p, j] * gmap.dG[p, j] / nm.D[p]
            div = np.zeros(M)
            div[:-1] -= dJ
            div[1:] += dJ
            columns[p * M:(p + 1) * M, j] = div / grid.h
    rows = np.zeros((P, P * M))
    for j in range(P):
        rows[j, j * M:(j + 1) * M] = gmap.psi[j] * grid.h
    blocks = [sps.diags([lower[p], diag[p], upper[p]], [-1, 0, 1], shape=(M, M))
              for p in range(P)]
    local = sps.block_diag(blocks, format="csc")
    if P * M <= dense_limit:
        values = sla.eigvals(local.toarray() + columns @ rows)
    else:
        sigma = 1e-6 * float(np.max(np.abs(diag)))
        lu = spla.splu((local - sigma * sps.identity(P * M, format="csc")).tocsc())
        solved = lu.solve(columns)
        capacitance = np.eye(P) + rows @ solved

        def shifted_inverse(v: np.ndarray) -> np.ndarray:
            w = lu.solve(np.asarray(v, dtype=float).ravel())
            return w - solved @ np.linalg.solve(capacitance, rows @ w)

        operator = spla.LinearOperator((P * M, P * M), matvec=lambda v: local @ v
                                       + columns @ (rows @ v), dtype=float)
        opinv = spla.LinearOperator((P * M, P * M), matvec=shifted_inverse, dtype=float)
        k = min(count + P, P * M - 2)
        values = spla.eigs(operator, k=k, sigma=sigma, OPinv=opinv, which="LM",
                           return_eigenvectors=False, tol=1e-10)
    values = values[np.argsort(np.abs(values))][P:]
    return values[np.argsort(-values.real)]


def _moments(rho: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    x, h = grid.x, grid.h
    mean = rho @ (x * h)
    return mean, ((x[None, :] - mean[:, None]) ** 2 * rho) @ h


def _richardson(gmap: GibbsMap, m: np.ndarray, mean: np.ndarray, var: np.ndarray,
                kernel: str, halve: bool) -> tuple[np.ndarray, np.ndarray]:
    """Richardson error estimates of ``mean`` and ``var`` on ``gmap.grid``.

    With ``halve`` (the state keeps twice the cells per width it needs) from the grid merging
    pairs of cells, ``|q_h − q_{2h}|/3``; otherwise from the grid splitting every cell,
    ``(4/3)|q_h − q_{h/2}|``. Both are upper bounds when, as for Gaussian states, the
    convergence is faster than second order. On non-uniform (adapted) grids, where cells of
    different widths share a state and the error may be first order, ``2|q_h − q_{h/2}|``.
    """
    P = gmap.nm.P
    h = gmap.grid.h  # merging pairs of unequal cells is first order: split adapted grids
    uniform = float(h.max() - h.min()) <= 1e-9 * h.max()
    halve = halve and gmap.grid.cells >= 6 and uniform
    omap = gmap.related("coarsened", 2) if halve else gmap.related("refined", 2)
    root = newton(omap, m)
    if root is None:
        return np.full(P, np.inf), np.full(P, np.inf)
    mean2, var2 = _moments(omap.densities(root), omap.grid)
    factor = 1 / 3 if halve else (4 / 3 if uniform else 2.0)
    eps = 4 * np.finfo(float).eps
    return (factor * np.abs(mean - mean2) + eps * np.abs(mean),
            factor * np.abs(var - var2) + eps * np.abs(var))


def _stability(gmap: GibbsMap, m: np.ndarray, kernel: str) -> tuple[np.ndarray, bool]:
    if gmap.grid.cells > STABILITY_CELLS:
        factor = math.ceil(gmap.grid.cells / STABILITY_CELLS)
        small = gmap.related("coarsened", factor)
        root = newton(small, m)
        if root is not None:
            gmap, m = small, root
    eig = linearised_spectrum(gmap, m)
    scale = float(np.max(np.abs(eig))) if eig.size else 1.0
    return eig, bool(eig.size == 0 or eig.real.max() < 1e-9 * max(scale, 1.0))


def make_state(model: Model, gmap: GibbsMap, m: np.ndarray, stability: bool, *,
               tolerance: float = DEFAULT_TOLERANCE, kernel: str = "auto") -> StationaryState:
    """The state at the root ``m``: densities, moments, stability, resolution, error estimates."""
    rho = gmap.densities(m)
    grid = gmap.grid
    mean, var = _moments(rho, grid)
    residual = float(np.max(np.abs(gmap.residual(m))))
    eig, stable = _stability(gmap, m, kernel) if stability else (None, None)
    report = assess_frames(gmap.nm, grid, gmap.gamma, rho[None], [gmap.time],
                           tolerance=tolerance, equilibrium=True)
    report = ResolutionReport(**{**report.__dict__, "time": math.nan})
    halve = bool(report.ok and np.all(report.cells_per_width >= 2 * width_target(tolerance)))
    error_mean, error_var = _richardson(gmap, m, mean, var, kernel, halve)
    return StationaryState(model=model, gamma=gmap.gamma, x=grid.x.copy(), rho=rho, m=m.copy(),
                           mean=mean, var=var, residual=residual, stable=stable,
                           eigenvalues=eig, edges=grid.edges.copy(), resolution=report,
                           error_mean=error_mean, error_var=error_var)


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def check_options(model: Any, *, gamma: Any = 0.0, starts: Any = 32, stability: Any = True,
                  time: Any = 0.0, tolerance: Any = DEFAULT_TOLERANCE) -> tuple[float, float, float]:
    """Validated ``(gamma, time, tolerance)`` of the stationary front doors."""
    from solvers.solve import check_diffusion, check_tolerance

    _check_model(model)
    gamma = check_finite_number("gamma", gamma)
    if gamma < 0:
        bad_value("gamma", gamma, "a coupling strength >= 0")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        bad_value("starts", starts, "an integer >= 1")
    if not isinstance(stability, (bool, np.bool_)):
        bad_type("stability", stability, "True or False")
    time = check_finite_number("time", time)
    check_diffusion(model)
    return gamma, time, check_tolerance(tolerance)


def search(nm: NumericModel, grid: Grid, gamma: float, time: float, starts: int,
           tolerance: float, kernel: str = "auto") -> tuple[GibbsMap, list[np.ndarray]]:
    """Roots on ``grid``: on grids finer than ``2·SEARCH_CELLS`` searched on a coarsening that
    resolves the states (or on the coarsest one when not even ``grid`` resolves them: those
    states are warned about anyway), then polished by Newton on ``grid`` (a full search if
    polishing fails or merges two roots)."""
    fine = GibbsMap(nm, grid, gamma, time, kernel)
    M = grid.cells
    h = grid.h  # adapted (non-uniform) grids are searched as they are: coarsening them
    adapted = float(h.max() - h.min()) > 1e-9 * float(h.max())  # undoes the refinement
    if M <= 2 * SEARCH_CELLS or (adapted and M <= ADAPTED_SEARCH_CELLS):
        return fine, find_roots(fine, starts)
    factor = M // SEARCH_CELLS
    while True:
        cmap = GibbsMap(nm, coarsened(grid, factor), gamma, time, kernel)
        roots = find_roots(cmap, starts)
        if factor == 1:
            break
        if not roots:  # the coarse map found nothing (unresolved?): search the requested grid
            return fine, find_roots(fine, starts)
        report = assess_frames(nm, cmap.grid, gamma, np.array([cmap.densities(r) for r in roots]),
                               [time] * len(roots), tolerance=tolerance, equilibrium=True)
        if report.ok or report.cells_needed <= cmap.grid.cells or report.cells_needed > M:
            break  # resolved, or not even the requested grid resolves them: polish these
        factor = max(1, min(factor - 1, M // report.cells_needed))
    if factor == 1:
        return fine, roots
    span = max(1.0, float(np.max(fine.upper - fine.lower)))
    polished: list[np.ndarray] = []
    for root in roots:
        refined = newton(fine, root)
        if refined is None or any(np.max(np.abs(refined - p)) <= 1e-8 * span for p in polished):
            return fine, find_roots(fine, starts)
        polished.append(refined)
    return fine, polished


def split_cells(grid: Grid, pieces: np.ndarray) -> Grid:
    """The grid splitting cell ``i`` of ``grid`` into ``pieces[i]`` equal cells."""
    pieces = np.asarray(pieces, dtype=np.int64)
    starts = np.repeat(grid.edges[:-1], pieces)
    widths = np.repeat(grid.h / pieces, pieces)
    offsets = np.arange(starts.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return Grid(np.append(starts + offsets * widths, grid.edges[-1]))


def _needed_pieces(gmap: GibbsMap, roots: list[np.ndarray], tolerance: float) -> np.ndarray:
    """How many cells each cell of ``gmap.grid`` must become to resolve the states ``roots``.

    A cell matters to a state when its share of the state's mass, weighted by its squared
    distance to the mean in widths, exceeds ``AUTO_MASS`` (and so do its two neighbours, which
    hold the true mode when the discrete one sits next to them); there the cells must be no wider
    than ``w/c``, ``w`` the smaller of the concentration width and the standard deviation of the
    state, and ``c = 1.25·width_target(tolerance)`` (but no narrower than 1024 round-offs of
    their position: beyond that the states stay unresolved and are warned about).
    """
    from solvers.resolution import frame_widths

    grid, nm = gmap.grid, gmap.nm
    x, h = grid.x, grid.h
    target = 1.25 * width_target(tolerance)
    pieces = np.ones(grid.cells, dtype=np.int64)
    # narrowest cells worth making: 1024 round-offs of their position (else stay unresolved)
    floor = 1024 * np.finfo(float).eps * np.maximum(np.abs(grid.edges[:-1]),
                                                    np.abs(grid.edges[1:]))
    floor = np.maximum(floor, np.finfo(float).tiny)
    for root in roots:
        rho = gmap.densities(root)
        mean, width, _ = (a[0] for a in frame_widths(nm, rho[None], grid, gmap.gamma,
                                                      [gmap.time]))
        share = rho * h
        std = np.sqrt(np.einsum("pi,pi->p", share, (x[None, :] - mean[:, None]) ** 2))
        for p in range(nm.P):
            local = h[min(max(int(np.searchsorted(grid.edges, mean[p])) - 1, 0), grid.cells - 1)]
            # the smaller of the width and the standard deviation, which an unresolved grid
            # underestimates (aliasing)
            w = min(float(width[p]), float(std[p]) if std[p] > 0 else np.inf)
            if not 0 < w < np.inf:
                w = local / AUTO_SPLIT
            weight = share[p] * (1.0 + (x - mean[p]) ** 2 / w**2)
            mask = weight >= AUTO_MASS
            mask[1:] |= mask[:-1].copy()
            mask[:-1] |= mask[1:].copy()
            need = np.minimum(np.ceil(h / (w / target)), AUTO_SPLIT)
            need = np.minimum(need, np.maximum(1.0, np.floor(h / floor))).astype(np.int64)
            pieces = np.where(mask, np.maximum(pieces, need), pieces)
    return pieces


def merged_grid(grids: list[Grid]) -> Grid:
    """The grid whose edges are those of all ``grids`` (same domain): as fine as each, everywhere."""
    return Grid(np.unique(np.concatenate([g.edges for g in grids])))


def auto_grid(nm: NumericModel, gamma: float, time: float, starts: int, tolerance: float,
               kernel: str) -> tuple[GibbsMap, list[np.ndarray]]:
    """The ``cells="auto"`` grid and its roots (docs/mathematics.md §10).

    From ``AUTO_PROBE_CELLS`` uniform cells, every cell that matters to a state found on the
    current grid is split (:func:`_needed_pieces`, at most ``AUTO_SPLIT`` pieces per level) and
    the search repeated, until no cell needs splitting, ``AUTO_MAX_CELLS`` would be exceeded or
    after ``AUTO_LEVELS`` levels. Cells far from every state stay wide.
    """
    grid = make_grid(nm.model.domain, AUTO_PROBE_CELLS)
    for _ in range(AUTO_LEVELS):
        gmap = GibbsMap(nm, grid, gamma, time, kernel)
        roots = find_roots(gmap, starts)
        if not roots:
            break
        pieces = _needed_pieces(gmap, roots, tolerance)
        total = int(pieces.sum())
        if total == grid.cells or total > AUTO_MAX_CELLS:
            break
        grid = split_cells(grid, pieces)
    return gmap, roots


def stationary_states(model: Model, *, gamma: float, cells: int | str | None = None,
                      grid: Grid | None = None, starts: int = 32, stability: bool = True,
                      time: float = 0.0, tolerance: float = DEFAULT_TOLERANCE,
                      kernel: str = "auto") -> tuple[StationaryState, ...]:
    """Every stationary state found at coupling ``gamma`` (sorted by the first population's mean).

    ``cells`` (default 1000) or ``grid`` sets the discretisation. ``cells="auto"`` adapts a grid
    to the states: from 1000 uniform cells it splits every cell that matters to a state found
    until cells are at most ``w/(1.25·c)`` wide there (``w`` the concentration width, ``c``
    :func:`solvers.resolution.width_target` of ``tolerance``), far cells staying wide; at most
    ``AUTO_MAX_CELLS`` cells (docs/mathematics.md §10). The chosen grid is ``state.grid``.
    ``starts`` sets the Newton starts for
    P ≥ 2; ``stability`` computes the linearised spectrum (on a coarsening of
    ``STABILITY_CELLS`` cells for finer grids); ``time`` the instant at which time-dependent
    external inputs are frozen; ``kernel`` the Gibbs-moment kernel ("auto", "numba", "numpy").

    Each state carries ``resolution`` and the Richardson estimates ``error_mean``/``error_var``;
    one ``ResolutionWarning`` is emitted when some state's expected relative variance error
    exceeds ``tolerance``.
    """
    gamma, time, tolerance = check_options(model, gamma=gamma, starts=starts,
                                           stability=stability, time=time, tolerance=tolerance)
    nm = numeric(model)
    if isinstance(cells, str):
        if cells != "auto":
            bad_value("cells", cells, "an integer >= 3, 'auto' or None")
        if grid is not None:
            bad_value("cells", cells, "either cells= or grid=, not both")
        gmap, roots = auto_grid(nm, gamma, time, starts, tolerance, kernel)
    else:
        gmap, roots = search(nm, make_grid(model.domain, cells, grid), gamma, time, starts,
                             tolerance, kernel)
    states = [make_state(model, gmap, r, bool(stability), tolerance=tolerance, kernel=kernel)
              for r in roots]
    warn_states(states)
    return tuple(sorted(states, key=lambda s: (s.mean[0], s.m.tolist())))


def warn_states(states: list[StationaryState], stacklevel: int = 3) -> ResolutionReport | None:
    """One ``ResolutionWarning`` for the worst-resolved of ``states``; the combined report."""
    reports = [s.resolution for s in states if s.resolution is not None]
    if not reports:
        return None
    combined = reports[0]
    for other in reports[1:]:
        combined = combined.combine(other) if other.names == combined.names else combined
    combined.warn(stacklevel=stacklevel)
    return combined



from solvers.continuation import Branch, continuation  # noqa: E402  (re-export)
