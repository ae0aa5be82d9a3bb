r"""Roots of the self-consistency map of stationary states (docs/mathematics.md §3).

Every stationary state is ``ρ_p ∝ exp(−U_p(x; m)/D_p)`` with ``m_q = ∫ Ψ_q ρ_q``: a fixed point
``m = T(m)`` of a map of the box ``Π_q [min Ψ_q, max Ψ_q]`` into itself, with the exact Jacobian

.. math:: \partial T_q/\partial m_j = -\frac{\gamma g_{qj}}{D_q}\,\mathrm{Cov}_{\rho_q}(\Psi_q, G_{qj}).

For P = 1 the roots come from a sign scan plus Brent's method, refined where the residual comes
close to zero without changing sign (tangencies, folds) and next to every root by deflation
(``r(m)/(m − m_*)`` changes sign at the roots hiding next to ``m_*``: pitchforks); for P ≥ 2
from multi-start damped Newton plus deflation. On fine grids the search runs on a coarsening of
the grid that resolves the states (:mod:`solvers.resolution`) and each root is then polished by
a few Newton steps on the requested grid (the fixed points move by O(h²)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.optimize as so

from meanfield.numeric import NumericModel
from solvers.fv import gibbs, potential_differences
from solvers.grid import Grid
from solvers.observables import readouts
from solvers.stationary_kernels import gibbs_kernel, outward_sums

RESIDUAL_TOL = 1e-12
SEARCH_CELLS = 1000
"""Grids finer than twice this are searched on a coarsening of about this many cells."""
SUBSCAN = 65
"""Points of each local refinement of the P = 1 scan."""


def anchor_node(grid: Grid) -> int:
    """The node the potentials are accumulated from: among the narrowest cells (where an adapted
    grid holds the states) the one nearest the middle."""
    h = grid.h
    narrow = np.flatnonzero(h <= h.min() * (1 + 1e-9))
    return int(narrow[np.argmin(np.abs(narrow - (h.size - 1) / 2))])


class GibbsMap:
    """The self-consistency map ``m ↦ T(m)`` at fixed γ on a grid, with its exact Jacobian."""

    def __init__(self, nm: NumericModel, grid: Grid, gamma: float, time: float = 0.0,
                 kernel: str = "auto",
                 differences: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.nm, self.grid, self.gamma, self.time = nm, grid, float(gamma), float(time)
        self.dF, self.dG = potential_differences(nm, grid) if differences is None else differences
        anchor = anchor_node(grid)
        self.F_nodes = np.ascontiguousarray(outward_sums(self.dF, anchor))
        self.G_nodes = np.ascontiguousarray(outward_sums(self.dG, anchor))
        self.dF = np.ascontiguousarray(self.dF)
        self.dG = np.ascontiguousarray(self.dG)
        self.psi = np.ascontiguousarray(readouts(nm, grid.x))
        self.h = np.ascontiguousarray(grid.h)
        self.lower = self.psi.min(axis=1)
        self.upper = self.psi.max(axis=1)
        self.external = nm.external_m(time)
        self.kernel_name = kernel
        self.kernel = gibbs_kernel(kernel)
        self._related: dict[tuple[str, int], GibbsMap] = {}

    def related(self, how: str, factor: int) -> GibbsMap:
        """The same map on the grid ``refined`` (every cell split in two) or ``coarsened`` by
        ``factor`` (built once and kept: every state on this map uses the same one)."""
        key = (how, factor)
        if key not in self._related:
            grid = refined(self.grid) if how == "refined" else coarsened(self.grid, factor)
            self._related[key] = GibbsMap(self.nm, grid, self.gamma, self.time,
                                          self.kernel_name)
        return self._related[key]

    def all_moments(self, m: np.ndarray) -> np.ndarray:
        return np.concatenate([m, self.external])

    def densities(self, m: np.ndarray) -> np.ndarray:
        """Unit-mass Gibbs densities (P, M) at the moments ``m``."""
        mj = self.all_moments(np.asarray(m, float))
        c = self.gamma * self.nm.g * mj[None, :]
        U = -self.F_nodes + np.einsum("pj,pji->pi", c, self.G_nodes)
        jumps = -self.dF + np.einsum("pj,pji->pi", c, self.dG)
        # the node values locate the mode; U − U_mode is summed over the edges from it
        U = np.array([outward_sums(jumps[p], int(np.argmin(U[p]))) for p in range(self.nm.P)])
        return gibbs(U, self.nm.D, self.grid.h)

    def evaluate(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T(m)`` (P,) and ``∂T/∂m`` (P, P) in one pass per population."""
        nm, P = self.nm, self.nm.P
        mj = self.all_moments(np.asarray(m, dtype=float))
        T = np.empty(P)
        jac = np.zeros((P, P))
        for q in range(P):
            coeff = self.gamma * nm.g[q] * mj
            T[q], cov = self.kernel(self.F_nodes[q], self.G_nodes[q], self.dF[q], self.dG[q],
                                    coeff, float(nm.D[q]), self.psi[q], self.h)
            jac[q] = -self.gamma * nm.g[q, :P] / nm.D[q] * cov[:P]
        return T, jac

    def __call__(self, m: np.ndarray) -> np.ndarray:
        return self.evaluate(m)[0]

    def residual(self, m: np.ndarray) -> np.ndarray:
        return self(m) - m

    def jacobian(self, m: np.ndarray) -> np.ndarray:
        """``∂T/∂m`` (P×P), exact for the discrete Gibbs densities."""
        return self.evaluate(m)[1]

    def residual_scalar_many(self, values: np.ndarray) -> np.ndarray:
        """``T(m) − m`` for many scalar moments (P = 1)."""
        return np.array([self.residual(np.array([v]))[0] for v in np.asarray(values, float)])

    def clip(self, m: np.ndarray) -> np.ndarray:
        return np.clip(m, self.lower, self.upper)


def newton(gmap: GibbsMap, m0: np.ndarray, known: Sequence[np.ndarray] = (),
           max_iter: int = 80) -> np.ndarray | None:
    """Damped (and, given ``known`` roots, deflated) Newton for ``T(m) − m = 0``.

    Converged when ``|T(m) − m| ≤ 1e-12`` (times the box size), or, for ill-conditioned maps
    (balanced states, ``‖∂T/∂m‖ ∼ γ``), when it reaches the round-off floor
    ``16 ε ‖∂T/∂m‖ |m|`` and no step can reduce it further.
    """
    m = gmap.clip(np.array(m0, dtype=float))
    P = m.size
    scale = max(1.0, float(np.max(np.abs(gmap.upper - gmap.lower))))
    T, DT = gmap.evaluate(m)
    r = T - m
    floor = RESIDUAL_TOL * scale
    for _ in range(max_iter):
        if np.max(np.abs(r)) <= 0.1 * RESIDUAL_TOL * scale:
            break
        floor = max(RESIDUAL_TOL * scale,
                    16 * np.finfo(float).eps * np.abs(DT).sum(axis=1).max() * np.abs(m).max())
        try:
            step = np.linalg.solve(DT - np.eye(P), -r)
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
            T_trial, DT_trial = gmap.evaluate(trial)
            r_trial = T_trial - trial
            if known or np.linalg.norm(r_trial) < (1 - 1e-4 * alpha) * norm:
                break
            alpha /= 2
        else:
            if np.max(np.abs(r)) <= floor:
                break  # at the round-off floor: no step reduces the residual
            return None
        m, r, DT = trial, r_trial, DT_trial
    if np.max(np.abs(r)) > floor:
        return None
    return m


def _brent(fn: object, a: float, b: float) -> float:
    return so.brentq(fn, a, b, xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=200)


def scan_1d(gmap: GibbsMap, points: int = 1601) -> list[np.ndarray]:
    """All roots of ``T(m) − m`` on ``[min Ψ, max Ψ]`` (P = 1), tangencies and pitchforks included.

    A sign scan on ``points`` values brackets the simple roots (Brent). Where ``|r|`` has a local
    minimum whose parabola through three scan values comes within half of it of zero, the
    interval is rescanned (:data:`SUBSCAN` points, up to 8 levels) until a sign change appears
    or the window is at round-off. Next to every root ``m_*`` the deflated residual
    ``r(m)/(m − m_*)`` (whose value at ``m_*`` is ``r'(m_*)``) is scanned over the neighbouring
    intervals, which finds the two roots a pitchfork hides inside one scan step.
    """
    lo, hi = float(gmap.lower[0]), float(gmap.upper[0])
    if hi - lo < 1e-14:
        return [np.array([lo])]

    def r(v: float) -> float:
        return float(gmap.residual(np.array([v]))[0])

    grid = np.linspace(lo, hi, points)
    values = gmap.residual_scalar_many(grid)
    step = grid[1] - grid[0]
    roots = _bracketed_roots(r, grid, values)
    for i in range(1, points - 1):  # near-tangencies: |r| small without a sign change
        a, b, c = values[i - 1], values[i], values[i + 1]
        if a * b <= 0 or b * c <= 0 or abs(b) > min(abs(a), abs(c)):
            continue
        vertex = b - (c - a) ** 2 / (8 * (a - 2 * b + c)) if a - 2 * b + c != 0 else b
        if vertex * b <= 0 or abs(vertex) < 0.5 * abs(b):
            roots += _refine_minimum(r, grid[i - 1], grid[i + 1], lo, hi)
    for root in list(roots):  # deflation next to each root: pitchforks
        roots += _deflated_neighbours(gmap, r, float(root), max(lo, root - 2 * step),
                                      min(hi, root + 2 * step), roots)
    polished: list[tuple[np.ndarray, float]] = []
    for root in sorted(roots):
        refined = newton(gmap, np.array([root]))
        value = refined if refined is not None else np.array([root])
        # a root is known to about round-off / |r'|: closer roots are the same root
        slope = abs(float(gmap.jacobian(value)[0, 0]) - 1.0)
        spread = 64 * np.finfo(float).eps * max(1.0, abs(float(value[0]))) / max(slope, 1e-300)
        if not any(abs(value[0] - p[0]) <= max(1e-13 * max(1.0, hi - lo), spread + s)
                   for p, s in polished):
            polished.append((value, spread))
    return [p for p, _ in polished]


def _bracketed_roots(r: object, grid: np.ndarray, values: np.ndarray) -> list[float]:
    roots = []
    for i in range(grid.size - 1):
        if values[i] == 0:
            roots.append(float(grid[i]))
        elif values[i] * values[i + 1] < 0:
            roots.append(_brent(r, grid[i], grid[i + 1]))
    if values[-1] == 0:
        roots.append(float(grid[-1]))
    return roots


def _refine_minimum(r: object, a: float, b: float, lo: float, hi: float) -> list[float]:
    """Roots in [a, b] where ``|r|`` dips towards zero without a sign change on the coarse scan."""
    for _ in range(8):
        grid = np.linspace(a, b, SUBSCAN)
        values = np.array([r(v) for v in grid])
        found = _bracketed_roots(r, grid, values)
        if found:
            return found
        k = int(np.argmin(np.abs(values)))
        if abs(values[k]) <= RESIDUAL_TOL * 1e-3:
            return [float(grid[k])]  # a double root at round-off
        width = (b - a) / (SUBSCAN - 1)
        a, b = max(lo, grid[k] - width), min(hi, grid[k] + width)
        if b - a < 1e-14 * max(1.0, abs(hi - lo)):
            break
    return []


def _deflated_neighbours(gmap: GibbsMap, r: object, root: float, a: float, b: float,
                         known: Sequence[float]) -> list[float]:
    """Roots in [a, b] other than ``root``: sign changes of ``r(m)/(m − root)``."""
    slope = float(gmap.jacobian(np.array([root]))[0, 0]) - 1.0
    grid = np.linspace(a, b, SUBSCAN)
    tiny = 1e-9 * (b - a)

    def q(v: float) -> float:
        return slope if abs(v - root) <= tiny else r(v) / (v - root)

    points = np.unique(np.concatenate([grid[np.abs(grid - root) > tiny], [root]]))
    values = np.array([q(v) for v in points])
    found = []
    for i in range(points.size - 1):
        if values[i] * values[i + 1] < 0:
            left, right = points[i], points[i + 1]
            if abs(left - root) <= tiny:
                left = root + tiny
            if abs(right - root) <= tiny:
                right = root - tiny
            if q(left) * q(right) < 0:
                candidate = _brent(q, left, right)
                if not any(abs(candidate - k) <= 1e-12 * max(1.0, b - a) for k in known):
                    found.append(candidate)
    return found


def multistart(gmap: GibbsMap, starts: int) -> list[np.ndarray]:
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
        add(newton(gmap, start))
    for start in candidates[: max(4, starts // 4)]:
        for _ in range(3):
            if not add(newton(gmap, start, known=list(roots))):
                break
    return roots


def find_roots(gmap: GibbsMap, starts: int = 32) -> list[np.ndarray]:
    """Every root found on ``gmap``'s own grid (scan for P = 1, multistart for P ≥ 2)."""
    return scan_1d(gmap) if gmap.nm.P == 1 else multistart(gmap, starts)


def coarsened(grid: Grid, factor: int) -> Grid:
    """The grid whose cells merge ``factor`` consecutive cells of ``grid`` (the last may be shorter)."""
    if factor <= 1:
        return grid
    edges = grid.edges[::factor]
    if edges[-1] != grid.edges[-1]:
        edges = np.append(edges, grid.edges[-1])
    return Grid(edges)


def refined(grid: Grid) -> Grid:
    """The grid splitting every cell of ``grid`` in two."""
    edges = np.empty(2 * grid.cells + 1)
    edges[::2] = grid.edges
    edges[1::2] = grid.x
    return Grid(edges)
