r"""One resolution diagnostic for every one-dimensional solver path (docs/mathematics.md §10).

:func:`assess` takes densities on a cell-centred grid, the potential differences between
neighbouring centres and the concentration widths, and returns a :class:`ResolutionReport` with

- ``cells_per_width``: the concentration width :math:`w_p = \sqrt{D_p/U_p''}` over the width of
  the cell holding the mean, :math:`U_p'' = \gamma A_p - f_p'` the curvature of the potential at
  the mean (``A_p = ∂_x h_p`` the slope of the field, ``f_p`` the intrinsic drift; at the densest
  cell where the curvature at the mean is not positive, :func:`frame_widths`): the exact standard
  deviation of the Gibbs state of a quadratic potential, which ``√(D_p/(γA_p))`` overestimates
  whenever the intrinsic drift confines too (``f_p' < 0``);
- ``peclet``: the mass-weighted mean *transport* cell Péclet number (largest over the frames),
  :math:`\sum_i \bar w_{i+1/2}\,|\delta_i|\, r_i` (face weight: the mean mass of its two cells),
  :math:`\delta_i = \Delta U_i/D` and
  :math:`r_i = |B(\delta_i)\rho_i - B(-\delta_i)\rho_{i+1}| / (B(\delta_i)\rho_i + B(-\delta_i)
  \rho_{i+1})` the share of the Scharfetter–Gummel flux that is transport rather than detailed
  balance (``r = 0`` on a Gibbs state, where the scheme is exact; ``r → 1`` while a profile is
  carried by the drift, where the scheme adds a spurious diffusion ``D((Pe/2)coth(Pe/2) − 1)``);
- ``wall_mass``: the density in an end cell times ``max(std, cell width)`` — the mass the domain
  cuts off (truncation);
- ``expected_error``: the estimated relative error of the variance, the sum of the aliasing
  error of a Gaussian sampled at ``c`` nodes per width, :math:`2(1+(2\pi c)^2)e^{-2\pi^2c^2}`
  (:func:`aliasing_error`), the mass-weighted mean spurious over physical diffusion of the faces,
  :math:`(\mathrm{Pe}/2)\coth(\mathrm{Pe}/2) - 1` (:func:`excess_diffusion`; a variance relaxing
  at rate ``2γA`` is off by about this factor of ``D/(γA)``), and the wall mass.

The report is ``ok`` when every expected error is at most ``tolerance``. The cells that would fix
it: the width term and the Péclet term each get half the tolerance (:func:`width_target`: about
0.67 cells per width at 1e-2; :func:`peclet_target`: ``Pe ≤ 0.24``), and both scale with the cell
width. Mass at the walls is not fixed by cells: the message asks for a wider domain.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import ResolutionWarning, bad_value
from solvers.grid import MAX_CELLS

DEFAULT_TOLERANCE = 1e-2
"""Default bound on the expected relative error of the variance."""


def aliasing_error(c: np.ndarray | float) -> np.ndarray:
    r"""Relative variance error of a Gaussian sampled at ``c`` nodes per standard deviation.

    By Poisson summation, :math:`\sum_i h\,(x_i-\bar x)^2 \phi(x_i)` differs from the variance by
    the first alias, :math:`2(1 + (2\pi c)^2)\,e^{-2\pi^2 c^2}` relatively.
    """
    c = np.asarray(c, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        out = 2.0 * (1.0 + (2 * np.pi * c) ** 2) * np.exp(-2 * np.pi**2 * c**2)
    return np.where(np.isfinite(c), np.minimum(out, 1.0), 0.0)


def excess_diffusion(pe: np.ndarray | float) -> np.ndarray:
    r"""Spurious over physical diffusion of the Scharfetter–Gummel flux carrying mass at Péclet ``Pe``.

    :math:`(\mathrm{Pe}/2)\coth(\mathrm{Pe}/2) - 1`: ``≈ Pe²/12`` for small, ``≈ Pe/2`` for
    large ``Pe`` (upwinding).
    """
    pe = np.abs(np.asarray(pe, dtype=float))
    half = pe / 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(half < 1e-3, half**2 / 3, half / np.tanh(np.maximum(half, 1e-300)) - 1)
    return np.where(np.isfinite(pe), out, np.inf)


def _invert(fn: Any, target: float, lo: float, hi: float) -> float:
    """``x`` in [lo, hi] with ``fn(x) = target`` for a monotone ``fn`` (bisection in log space)."""
    increasing = float(fn(hi)) > float(fn(lo))
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if (float(fn(mid)) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@functools.lru_cache(maxsize=64)
def width_target(tolerance: float) -> float:
    """Cells per concentration width with an aliasing error of at most ``tolerance/2``."""
    return _invert(aliasing_error, tolerance / 2, 1e-3, 1e3)


@functools.lru_cache(maxsize=64)
def peclet_target(tolerance: float) -> float:
    """Largest transport Péclet number with an excess diffusion of at most ``tolerance/2``."""
    return _invert(excess_diffusion, tolerance / 2, 1e-8, 1e8)


@dataclass(frozen=True, eq=False)
class ResolutionReport:
    """How well a grid resolves densities (worst over the frames checked), per population."""

    names: tuple[str, ...]
    cells: int
    cells_per_width: np.ndarray
    peclet: np.ndarray
    wall_mass: np.ndarray
    expected_error: np.ndarray
    cells_needed: int
    tolerance: float = DEFAULT_TOLERANCE
    time: float = math.nan
    """The time of the worst frame (``nan`` when unknown or stationary)."""

    @property
    def ok(self) -> bool:
        return bool(np.all(self.expected_error <= self.tolerance))

    def combine(self, other: ResolutionReport) -> ResolutionReport:
        """The worst of both reports (same populations)."""
        if tuple(other.names) != tuple(self.names):
            bad_value("other", other.names, f"a report on the populations {self.names}")
        worse = float(np.max(other.expected_error)) > float(np.max(self.expected_error))
        return ResolutionReport(
            names=self.names, cells=max(self.cells, other.cells),
            cells_per_width=np.minimum(self.cells_per_width, other.cells_per_width),
            peclet=np.maximum(self.peclet, other.peclet),
            wall_mass=np.maximum(self.wall_mass, other.wall_mass),
            expected_error=np.maximum(self.expected_error, other.expected_error),
            cells_needed=max(self.cells_needed, other.cells_needed),
            tolerance=min(self.tolerance, other.tolerance),
            time=other.time if worse else self.time)

    def causes(self) -> list[str]:
        """One phrase per cause of a too large expected error."""
        bad = self.expected_error > self.tolerance
        out = []
        c_need, pe_max = width_target(self.tolerance), peclet_target(self.tolerance)
        width = [f"{n}: {c:.3g} cells per width" for n, c, b in
                 zip(self.names, self.cells_per_width, bad, strict=True) if b and c < c_need]
        if width:
            out.append("the grid does not resolve the concentration width sqrt(D/U''), "
                       "U'' = gamma*A - f' the curvature of the potential ("
                       + ", ".join(width) + f"; need {c_need:.3g})")
        pe = [f"{n}: {v:.3g}" for n, v, b in zip(self.names, self.peclet, bad, strict=True)
              if b and v > pe_max]
        if pe:
            where = "" if math.isnan(self.time) else f" at t={self.time:.3g}"
            out.append(f"the cell Péclet number |dU|/D of the transported mass is too large{where}"
                       f" ({', '.join(pe)}; need <= {pe_max:.3g}): the Scharfetter–Gummel flux "
                       "adds a spurious diffusion D*((Pe/2)coth(Pe/2) - 1) (an initial layer?)")
        wall = [f"{n}: {v:.3g}" for n, v, b in zip(self.names, self.wall_mass, bad, strict=True)
                if b and v > self.tolerance / 2]
        if wall:
            out.append(f"mass at the domain ends ({', '.join(wall)}): the domain truncates the "
                       "density (a balance point outside or near the end of the domain?); "
                       "widen the domain")
        return out

    def message(self) -> str:
        """What is unresolved, the expected error and the number of cells that would fix it."""
        if self.ok:
            return (f"resolved on {self.cells} cells (expected relative variance error "
                    f"{float(np.max(self.expected_error)):.2g} <= {self.tolerance:g})")
        if self.cells_needed > MAX_CELLS:
            fix = (f"; a uniform grid would need about {self.cells_needed:.3g} cells, beyond the "
                   f"{MAX_CELLS} allowed: use cells='auto' (stationary states), a narrower "
                   "domain around the concentration")
        elif self.cells_needed:
            fix = f"; use about cells={self.cells_needed} or more"
        else:
            fix = ""
        return ("; ".join(self.causes()) + f". Expected relative variance error "
                f"{float(np.max(self.expected_error)):.2g} > {self.tolerance:g} on {self.cells} "
                f"cells{fix} (or the rescaled solver for large gamma)")

    def warn(self, *, stacklevel: int = 2) -> bool:
        """Emit one :class:`~meanfield.errors.ResolutionWarning` if not ok; return whether it did."""
        if self.ok:
            return False
        warnings.warn(self.message(), ResolutionWarning, stacklevel=stacklevel + 1)
        return True

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for ``info`` and dataset attributes)."""
        return {"ok": self.ok, "names": list(self.names), "cells": int(self.cells),
                "cells_per_width": self.cells_per_width.tolist(), "peclet": self.peclet.tolist(),
                "wall_mass": self.wall_mass.tolist(),
                "expected_error": self.expected_error.tolist(),
                "cells_needed": int(self.cells_needed), "tolerance": self.tolerance,
                "time": None if math.isnan(self.time) else self.time}


def _bernoulli(z: np.ndarray) -> np.ndarray:
    from solvers.fv import bernoulli

    return bernoulli(z)


def assess(*, names: Sequence[str], edges: np.ndarray, rho: np.ndarray,
           potential_jumps: np.ndarray | None, D: np.ndarray, width: np.ndarray,
           tolerance: float = DEFAULT_TOLERANCE, times: Sequence[float] | None = None,
           where: np.ndarray | None = None) -> ResolutionReport:
    """The resolution report of densities ``rho`` (..., P, M) on the cells ``edges`` (M+1,).

    ``potential_jumps`` (..., P, M−1) are ``U_p(x_{i+1}) − U_p(x_i)`` of the same frames
    (``None`` for exact Gibbs states, whose flux vanishes: no transport, Péclet term 0),
    ``D`` (P,) the diffusion coefficients, ``width`` (..., P) the concentration widths
    (``inf`` where nothing concentrates), ``times`` (optional) the time of each frame, ``where``
    (optional, (..., P)) the points whose cell each width is compared with (default: the means).
    """
    edges = np.asarray(edges, dtype=float)
    h = np.diff(edges)
    x = (edges[1:] + edges[:-1]) / 2
    M = h.size
    P = len(names)
    rho = np.asarray(rho, dtype=float).reshape(-1, P, M)
    F = rho.shape[0]
    equilibrium = potential_jumps is None
    jumps = None if equilibrium else np.asarray(potential_jumps, dtype=float).reshape(F, P, M - 1)
    widths = np.broadcast_to(np.asarray(width, dtype=float), (F, P)) if np.ndim(width) <= 1 \
        else np.asarray(width, dtype=float).reshape(F, P)
    D = np.asarray(D, dtype=float).reshape(P)
    stamps = np.full(F, math.nan) if times is None else np.asarray(times, dtype=float).ravel()
    span = float(edges[-1] - edges[0])
    mass = rho * h
    total = mass.sum(axis=-1)
    total = np.where(total > 0, total, 1.0)
    share = mass / total[..., None]
    mean = (share * x).sum(axis=-1)
    std = np.sqrt(np.maximum((share * (x - mean[..., None]) ** 2).sum(axis=-1), 0.0))
    at = mean if where is None else np.broadcast_to(np.asarray(where, dtype=float).reshape(
        (-1, P)), (F, P))
    index = np.clip(np.searchsorted(edges, at) - 1, 0, M - 1)
    local = h[index]
    # faces between cells holding less than 1e-30 of the largest cell carry no weight: skip them
    support = np.flatnonzero((share > 1e-30 * share.max(axis=-1, keepdims=True)).any(axis=(0, 1)))
    lo, hi = (int(support[0]), int(support[-1]) + 1) if support.size and not equilibrium else (0, 2)
    lo, hi = max(0, lo - 1), min(M, hi + 1)
    part, hp = share[..., lo:hi], h[lo:hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(np.isfinite(widths), widths / local, np.inf)
        delta = (np.zeros((F, P, hi - lo - 1)) if jumps is None else
                 jumps[..., lo:hi - 1] / D[None, :, None])
        forward = _bernoulli(delta) * part[..., :-1] / hp[:-1]
        backward = _bernoulli(-delta) * part[..., 1:] / hp[1:]
        denominator = forward + backward
        r = np.where(denominator > 0, np.abs(forward - backward) / denominator, 0.0)
    weight = (part[..., :-1] + part[..., 1:]) / 2
    weight = weight / np.maximum(weight.sum(axis=-1, keepdims=True), 1e-300)
    face_pe = np.abs(delta) * r
    with np.errstate(invalid="ignore"):
        pe = np.where(weight > 0, weight * face_pe, 0.0).sum(axis=-1)
        transport = np.where(weight > 0, weight * excess_diffusion(face_pe), 0.0).sum(axis=-1)
    density = share / h
    reach = np.maximum(std, np.minimum(h[0], span))
    wall = np.maximum(density[..., 0] * np.maximum(reach, h[0]),
                      density[..., -1] * np.maximum(reach, h[-1]))
    wall = np.minimum(wall, 1.0)
    with np.errstate(divide="ignore"):
        error = aliasing_error(c) + transport + wall
    worst_frame = int(np.argmax(error.max(axis=1)))
    cpw, peclet, wall_p, err = c.min(axis=0), pe.max(axis=0), wall.max(axis=0), error.max(axis=0)
    needed = 0
    if np.any(err > tolerance):
        worst = transport.max(axis=0)
        effective = [_invert(excess_diffusion, float(e), 1e-8, 1e8) if 0 < e < np.inf else
                     (np.inf if e > 0 else 0.0) for e in worst]  # Pe with the same excess
        factor = 1.0
        with np.errstate(divide="ignore"):
            factor = max(factor, float(np.max(width_target(tolerance) / cpw)),
                         max(effective) / peclet_target(tolerance))
        needed = math.ceil(M * factor) if factor > 1.0 else 0
        if not math.isfinite(factor):
            needed = 0
    return ResolutionReport(names=tuple(names), cells=M, cells_per_width=cpw, peclet=peclet,
                            wall_mass=wall_p, expected_error=err, cells_needed=needed,
                            tolerance=float(tolerance), time=float(stamps[worst_frame]))


def potential_width(D: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    r"""``√(D/U'')``: the standard deviation of the Gibbs profile of a potential of curvature ``U''``.

    ``inf`` where ``U'' ≤ 0`` (the potential does not confine there).
    """
    curvature = np.asarray(curvature, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(curvature > 0, np.sqrt(D / np.maximum(curvature, 1e-300)), np.inf)


def _curvatures(nm: Any, gamma: float, points: np.ndarray, mj: np.ndarray) -> np.ndarray:
    """``U_p''(y) = γ ∂_x h_p(y) − f_p'(y)`` at ``points`` (F, P) with the J-moments ``mj`` (F, J)."""
    from meanfield.numeric import derivative

    out = np.empty_like(points)
    for p, pop in enumerate(nm.model.populations):
        y = points[:, p]
        slope = nm.field_functions(p)[1](y, *mj.T)
        with np.errstate(over="ignore", invalid="ignore"):
            out[:, p] = gamma * np.broadcast_to(slope, y.shape) - derivative(pop.drift)(y)
    return out


def frame_widths(nm: Any, frames: np.ndarray, grid: Any, gamma: float,
                 times: Sequence[float] | np.ndarray, psi: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Means, concentration widths and the points where each width was taken, each (F, P).

    The width of population ``p`` in a frame is :func:`potential_width` of the curvature of its
    potential, :math:`U_p'' = \gamma\,\partial_x h_p - f_p'` (:math:`\partial_x U_p = -f_p +
    \gamma h_p`, docs/mathematics.md §2), with ``h_p = Σ_j g_pj Φ_pj m_j`` at the frame's own
    moments ``m = Σ ρ Ψ h`` (``psi`` the readouts times the cell widths, computed when ``None``):
    the exact standard deviation of a Gibbs state of a quadratic potential, whose confinement the
    intrinsic drift adds to (``f' < 0``) or takes from (``f' > 0``). It is taken at the mean; where
    ``U'' ≤ 0`` there (a mean between two peaks, on a barrier or a repelling point) at the densest
    cell instead, and where the potential does not confine there either the width is ``inf`` (no
    concentration to resolve; the Péclet and wall terms still apply).
    """
    from solvers.observables import readouts

    frames = np.asarray(frames, dtype=float)
    mass = frames @ grid.h
    mean = (frames @ (grid.x * grid.h)) / np.where(mass > 0, mass, 1.0)
    psi = readouts(nm, grid.x) * grid.h if psi is None else psi
    m = np.einsum("fpi,pi->fp", frames, psi) / np.where(mass > 0, mass, 1.0)
    mj = np.array([nm.all_moments(row, float(t)) for row, t in zip(m, np.ravel(times),
                                                                  strict=True)])
    curvature = _curvatures(nm, gamma, mean, mj)
    where = mean.copy()
    flat = ~(curvature > 0)
    if np.any(flat):
        mode = grid.x[np.argmax(frames, axis=-1)]
        at_mode = _curvatures(nm, gamma, mode, mj)
        curvature = np.where(flat, at_mode, curvature)
        where = np.where(flat, mode, where)
    return mean, potential_width(nm.D[None, :], curvature), where


def assess_frames(nm: Any, grid: Any, gamma: float, frames: np.ndarray,
                  times: Sequence[float] | np.ndarray, *, tolerance: float = DEFAULT_TOLERANCE,
                  differences: tuple[np.ndarray, np.ndarray] | None = None,
                  equilibrium: bool = False) -> ResolutionReport:
    """:func:`assess` for densities ``frames`` (F, P, M) of a :class:`~meanfield.numeric.NumericModel`.

    The potential differences ``ΔU_p = −ΔF_p + γ Σ_j g_pj m_j ΔG_pj`` and the widths
    ``√(D_p/U_p'')`` (:func:`frame_widths`) are computed from each frame's own moments at its time.
    ``equilibrium=True`` (exact Gibbs states) skips the transport term.
    """
    from solvers.fv import potential_differences
    from solvers.observables import readouts

    frames = np.asarray(frames, dtype=float).reshape(-1, nm.P, grid.cells)
    stamps = np.asarray(times, dtype=float).ravel()
    if differences is None and not equilibrium:
        differences = potential_differences(nm, grid)
    psi = readouts(nm, grid.x) * grid.h
    jumps = np.empty((frames.shape[0], nm.P, grid.cells - 1))
    if not equilibrium:
        mass = frames @ grid.h
        m = np.einsum("fpi,pi->fp", frames, psi) / np.where(mass > 0, mass, 1.0)
        mj = np.array([nm.all_moments(row, float(t)) for row, t in zip(m, stamps, strict=True)])
        dF, dG = differences
        jumps = -dF + gamma * np.einsum("pj,fj,pji->fpi", nm.g, mj, dG)
    _, widths, where = frame_widths(nm, frames, grid, gamma, stamps, psi)
    return assess(names=nm.model.names, edges=grid.edges, rho=frames,
                  potential_jumps=None if equilibrium else jumps,
                  D=nm.D, width=widths, tolerance=tolerance, times=stamps, where=where)


def report_from_dict(data: dict[str, Any]) -> ResolutionReport:
    """The inverse of :meth:`ResolutionReport.as_dict` (e.g. after a NetCDF round trip)."""
    return ResolutionReport(
        names=tuple(data["names"]), cells=int(data["cells"]),
        cells_per_width=np.asarray(data["cells_per_width"], dtype=float),
        peclet=np.asarray(data["peclet"], dtype=float),
        wall_mass=np.asarray(data["wall_mass"], dtype=float),
        expected_error=np.asarray(data["expected_error"], dtype=float),
        cells_needed=int(data["cells_needed"]), tolerance=float(data["tolerance"]),
        time=math.nan if data.get("time") is None else float(data["time"]))
