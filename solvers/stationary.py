r"""Exact stationary states (MATH.md §3): discrete Gibbs states solving the self-consistency in R^P.

Every stationary state is ``ρ_p ∝ exp(−U_p(x; m)/D_p)`` with ``m_q = ∫ Ψ_q ρ_q``: a fixed point
``m = T(m)`` of a map of the box ``Π_q [min Ψ_q, max Ψ_q]`` into itself. The node potentials are
accumulated from the same edge differences the finite-volume scheme uses, so each state returned
here is a fixed point of that scheme to round-off. Roots are found by a sign scan plus Brent's
method for P = 1, and by multi-start damped Newton with the exact Jacobian

.. math:: \partial T_q/\partial m_j = -\frac{\gamma g_{qj}}{D_q}\,\mathrm{Cov}_{\rho_q}(\Psi_q, G_{qj})

plus deflation for P ≥ 2. Linear stability: the spectrum of the linearised discrete operator,
nonlocal term included, without the P structural zero eigenvalues (mass conservation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.optimize as so
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.fv import (
    bernoulli_derivative,
    divergence_bands,
    flux_coefficients,
    gibbs,
    potential_differences,
    scaled_differences,
)
from solvers.grid import Grid, make_grid
from solvers.observables import readouts

RESIDUAL_TOL = 1e-12


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

    @property
    def grid(self) -> Grid:
        return Grid(self.edges)

    @property
    def mass(self) -> np.ndarray:
        return self.rho @ np.diff(self.edges)

    def to_xarray(self) -> Any:
        import xarray as xr

        pops = list(self.model.names)
        return xr.Dataset(
            {"rho": (("population", "x"), self.rho), "m": (("population",), self.m),
             "mean": (("population",), self.mean), "var": (("population",), self.var)},
            coords={"population": pops, "x": self.x},
            attrs={"gamma": self.gamma, "residual": self.residual,
                   "stable": "unknown" if self.stable is None else str(self.stable),
                   "model": self.model.to_json()})

    def __repr__(self) -> str:
        stab = {None: "?", True: "stable", False: "unstable"}[self.stable]
        return (f"StationaryState(gamma={self.gamma:g}, m={np.round(self.m, 6).tolist()}, "
                f"mean={np.round(self.mean, 6).tolist()}, var={self.var.tolist()}, {stab}, "
                f"residual={self.residual:.1e})")


class GibbsMap:
    """The self-consistency map ``m ↦ T(m)`` at fixed γ on a grid, with its exact Jacobian."""

    def __init__(self, nm: NumericModel, grid: Grid, gamma: float, time: float = 0.0) -> None:
        self.nm, self.grid, self.gamma, self.time = nm, grid, float(gamma), float(time)
        self.dF, self.dG = potential_differences(nm, grid)
        zero = np.zeros((nm.P, 1))
        self.F_nodes = np.concatenate([zero, np.cumsum(self.dF, axis=1)], axis=1)
        self.G_nodes = np.concatenate([np.zeros((nm.P, nm.J, 1)), np.cumsum(self.dG, axis=2)],
                                      axis=2)
        self.psi = readouts(nm, grid.x)
        self.lower = self.psi.min(axis=1)
        self.upper = self.psi.max(axis=1)
        self.external = nm.external_m(time)

    def all_moments(self, m: np.ndarray) -> np.ndarray:
        return np.concatenate([m, self.external])

    def densities(self, m: np.ndarray) -> np.ndarray:
        mj = self.all_moments(np.asarray(m, float))
        U = -self.F_nodes + self.gamma * np.einsum("pj,j,pji->pi", self.nm.g, mj, self.G_nodes)
        return gibbs(U, self.nm.D, self.grid.h)

    def __call__(self, m: np.ndarray) -> np.ndarray:
        rho = self.densities(m)
        return np.einsum("pi,pi,i->p", rho, self.psi, self.grid.h)

    def residual(self, m: np.ndarray) -> np.ndarray:
        return self(m) - m

    def residual_scalar_many(self, values: np.ndarray) -> np.ndarray:
        """``T(m) − m`` for many scalar moments at once (P = 1)."""
        mj = np.stack([values, *(np.full_like(values, e) for e in self.external)], axis=1)
        U = -self.F_nodes[0] + self.gamma * (mj * self.nm.g[0]) @ self.G_nodes[0]
        rho = gibbs(U, np.full(values.size, self.nm.D[0]), self.grid.h)
        return rho @ (self.psi[0] * self.grid.h) - values

    def jacobian(self, m: np.ndarray) -> np.ndarray:
        """``∂T/∂m`` (P×P), exact for the discrete Gibbs densities."""
        rho = self.densities(m)
        h, P = self.grid.h, self.nm.P
        weights = rho * h
        jac = np.zeros((P, P))
        for q in range(P):
            psi_c = self.psi[q] - weights[q] @ self.psi[q]
            for j in range(P):
                if self.nm.g[q, j] == 0:
                    continue
                Gc = self.G_nodes[q, j] - weights[q] @ self.G_nodes[q, j]
                jac[q, j] = -self.gamma * self.nm.g[q, j] / self.nm.D[q] * (weights[q] @ (psi_c * Gc))
        return jac

    def clip(self, m: np.ndarray) -> np.ndarray:
        return np.clip(m, self.lower, self.upper)


def _newton(gmap: GibbsMap, m0: np.ndarray, known: Sequence[np.ndarray] = (),
            max_iter: int = 80) -> np.ndarray | None:
    """Damped (and, given ``known`` roots, deflated) Newton for ``T(m) − m = 0``.

    Converged when ``|T(m) − m| ≤ 1e-12`` (times the box size), or, for ill-conditioned maps
    (balanced states, ``‖∂T/∂m‖ ∼ γ``), when it reaches the round-off floor
    ``16 ε ‖∂T/∂m‖ |m|`` and no step can reduce it further.
    """
    m = gmap.clip(np.array(m0, dtype=float))
    P = m.size
    scale = max(1.0, float(np.max(np.abs(gmap.upper - gmap.lower))))
    r = gmap.residual(m)
    floor = RESIDUAL_TOL * scale
    for _ in range(max_iter):
        if np.max(np.abs(r)) <= 0.1 * RESIDUAL_TOL * scale:
            break
        DT = gmap.jacobian(m)
        floor = max(RESIDUAL_TOL * scale,
                    16 * np.finfo(float).eps * np.abs(DT).sum(axis=1).max() * np.abs(m).max())
        J = DT - np.eye(P)
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError:
            return None
        if known:
            diffs = [m - k for k in known]
            norms2 = [float(d @ d) for d in diffs]
            if min(norms2) == 0:
                return None
            factor = np.prod([1 / n2 + 1 for n2 in norms2])
            grad = factor * sum(-2 * d / n2**2 / (1 / n2 + 1) for d, n2 in
                                zip(diffs, norms2, strict=True))
            denom = 1 - float(grad @ step) / factor
            if abs(denom) > 1e-14:
                step = step / denom
        alpha, norm = 1.0, np.linalg.norm(r)
        while alpha > 1e-10:
            trial = gmap.clip(m + alpha * step)
            r_trial = gmap.residual(trial)
            if known or np.linalg.norm(r_trial) < (1 - 1e-4 * alpha) * norm:
                break
            alpha /= 2
        else:
            if np.max(np.abs(r)) <= floor:
                break  # at the round-off floor: no step reduces the residual
            return None
        m, r = trial, r_trial
    if np.max(np.abs(r)) > floor:
        return None
    return m


def _scan_1d(gmap: GibbsMap, points: int = 1601) -> list[np.ndarray]:
    """All roots of ``T(m) − m`` on ``[min Ψ, max Ψ]`` bracketed by a sign scan (P = 1)."""
    lo, hi = float(gmap.lower[0]), float(gmap.upper[0])
    if hi - lo < 1e-14:
        return [np.array([lo])]
    grid = np.linspace(lo, hi, points)
    values = np.concatenate([gmap.residual_scalar_many(chunk) for chunk in
                             np.array_split(grid, max(1, points * gmap.grid.cells // 2_000_000))])
    roots = []
    for i in range(points - 1):
        if values[i] == 0:
            roots.append(grid[i])
        elif values[i] * values[i + 1] < 0:
            roots.append(so.brentq(lambda v: gmap.residual(np.array([v]))[0], grid[i],
                                   grid[i + 1], xtol=1e-16, rtol=4 * np.finfo(float).eps,
                                   maxiter=200))
    if values[-1] == 0:
        roots.append(grid[-1])
    polished = []
    for root in roots:
        refined = _newton(gmap, np.array([root]))
        polished.append(refined if refined is not None else np.array([root]))
    return polished


def _multistart(gmap: GibbsMap, starts: int) -> list[np.ndarray]:
    """Roots for P ≥ 2: damped Newton from a Sobol set of starts, then deflated passes."""
    from scipy.stats import qmc

    P = gmap.nm.P
    sample = qmc.Sobol(d=P, scramble=True, seed=0).random(starts)
    span = gmap.upper - gmap.lower
    candidates = [gmap.lower + span / 2, *(gmap.lower + span * s for s in sample)]
    roots: list[np.ndarray] = []

    def add(root: np.ndarray | None) -> bool:
        if root is None:
            return False
        if any(np.max(np.abs(root - r)) <= 1e-8 * max(1.0, float(np.max(span))) for r in roots):
            return False
        roots.append(root)
        return True

    for start in candidates:
        add(_newton(gmap, start))
    for start in candidates[: max(4, starts // 4)]:
        for _ in range(3):
            if not add(_newton(gmap, start, known=list(roots))):
                break
    return roots


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


def _state(model: Model, gmap: GibbsMap, m: np.ndarray, stability: bool) -> StationaryState:
    rho = gmap.densities(m)
    x, h = gmap.grid.x, gmap.grid.h
    mean = rho @ (x * h)
    var = ((x[None, :] - mean[:, None]) ** 2 * rho) @ h
    residual = float(np.max(np.abs(gmap.residual(m))))
    eig, stable = None, None
    if stability:
        eig = linearised_spectrum(gmap, m)
        scale = float(np.max(np.abs(eig))) if eig.size else 1.0
        stable = bool(eig.size == 0 or eig.real.max() < 1e-9 * max(scale, 1.0))
    return StationaryState(model=model, gamma=gmap.gamma, x=x.copy(), rho=rho, m=m.copy(),
                           mean=mean, var=var, residual=residual, stable=stable,
                           eigenvalues=eig, edges=gmap.grid.edges.copy())


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def stationary_states(model: Model, *, gamma: float, cells: int | None = None,
                      grid: Grid | None = None, starts: int = 32, stability: bool = True,
                      time: float = 0.0) -> tuple[StationaryState, ...]:
    """Every stationary state found at coupling ``gamma`` (sorted by the first population's mean).

    ``cells`` (default 1000) or ``grid`` sets the discretisation; ``starts`` the Newton starts
    for P ≥ 2; ``stability`` computes the linearised spectrum; ``time`` the instant at which
    time-dependent external inputs are frozen.
    """
    _check_model(model)
    gamma = check_finite_number("gamma", gamma)
    if gamma < 0:
        bad_value("gamma", gamma, "a coupling strength >= 0")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        bad_value("starts", starts, "an integer >= 1")
    grid_ = make_grid(model.domain, cells, grid)
    gmap = GibbsMap(numeric(model), grid_, gamma, time)
    roots = _scan_1d(gmap) if model.P == 1 else _multistart(gmap, starts)
    states = [_state(model, gmap, r, stability) for r in roots]
    return tuple(sorted(states, key=lambda s: (s.mean[0], s.m.tolist())))


@dataclass(frozen=True, eq=False)
class Branch:
    """A branch of stationary states followed in γ (``gammas`` and ``states`` aligned)."""

    gammas: np.ndarray
    states: tuple[StationaryState, ...]

    @property
    def m(self) -> np.ndarray:
        return np.array([s.m for s in self.states])

    @property
    def mean(self) -> np.ndarray:
        return np.array([s.mean for s in self.states])

    @property
    def var(self) -> np.ndarray:
        return np.array([s.var for s in self.states])

    @property
    def stable(self) -> np.ndarray:
        return np.array([s.stable for s in self.states])


def continuation(model: Model, gammas: Sequence[float], *, cells: int | None = None,
                 grid: Grid | None = None, starts: int = 32,
                 stability: bool = True) -> tuple[Branch, ...]:
    """Follow every branch of stationary states along increasing ``gammas``.

    At every γ the roots are the union of a global search and Newton corrections of each branch's
    secant prediction; each branch takes the nearest free root (closest pairs first), branches left
    without one end at a fold, and roots left free start new branches. Every state found by
    :func:`stationary_states` thus lies on a branch.
    """
    _check_model(model)
    values = np.asarray([check_finite_number("gammas", g) for g in gammas], dtype=float)
    if values.size < 1 or np.any(values < 0) or np.any(np.diff(values) <= 0):
        bad_value("gammas", list(gammas), "a non-empty, strictly increasing list of values >= 0")
    grid_ = make_grid(model.domain, cells, grid)
    nm = numeric(model)
    open_branches: list[tuple[list[float], list[np.ndarray]]] = []
    closed: list[tuple[list[float], list[np.ndarray]]] = []
    maps: dict[float, GibbsMap] = {}
    for gamma in values:
        gmap = maps.setdefault(float(gamma), GibbsMap(nm, grid_, float(gamma)))
        span = max(1.0, float(np.max(gmap.upper - gmap.lower)))
        predictions = []
        for gs, ms in open_branches:
            predictions.append(ms[-1] if len(ms) < 2 else ms[-1] + (ms[-1] - ms[-2]) * (
                (gamma - gs[-1]) / (gs[-1] - gs[-2])))
        roots: list[np.ndarray] = []
        candidates = [*(_newton(gmap, guess) for guess in predictions),
                      *(_scan_1d(gmap) if nm.P == 1 else _multistart(gmap, starts))]
        for root in candidates:
            if root is not None and not any(np.max(np.abs(root - r)) < 1e-7 * span for r in roots):
                roots.append(root)
        # each open branch takes the nearest free root (closest pairs first); the rest end at a fold
        pairs = sorted((float(np.max(np.abs(pred - r))), b, k) for b, pred in enumerate(predictions)
                       for k, r in enumerate(roots))
        taken_branch: set[int] = set()
        taken_root: set[int] = set()
        for _, b, k in pairs:
            if b in taken_branch or k in taken_root:
                continue
            taken_branch.add(b)
            taken_root.add(k)
            open_branches[b][0].append(float(gamma))
            open_branches[b][1].append(roots[k])
        closed.extend(br for b, br in enumerate(open_branches) if b not in taken_branch)
        open_branches = [br for b, br in enumerate(open_branches) if b in taken_branch]
        open_branches.extend(([float(gamma)], [r]) for k, r in enumerate(roots)
                             if k not in taken_root)
    closed.extend(open_branches)
    branches = []
    for gs, ms in closed:
        states = tuple(_state(model, maps[g], m, stability) for g, m in zip(gs, ms, strict=True))
        branches.append(Branch(gammas=np.array(gs), states=states))
    branches.sort(key=lambda b: (b.gammas[0], b.states[0].mean[0]))
    return tuple(branches)
