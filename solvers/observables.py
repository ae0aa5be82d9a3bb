r"""Observables of densities on a grid: mass, mean, variance, coupling moments, balance residual.

For densities ``rho`` of shape (..., P, M) on a :class:`~solvers.grid.Grid`:
``mass_p = Σ ρ h``, ``mean_p = Σ x ρ h / mass``, ``var_p = Σ (x−mean)² ρ h / mass``,
``m_q = Σ Ψ_q ρ_q h`` and ``balance_residual_p = Σ |h_p(x)| ρ_p h`` (the distance to the
balance manifold ``h_p = 0`` on the support, docs/mathematics.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meanfield.numeric import NumericModel
from solvers.grid import Grid


@dataclass(frozen=True, eq=False)
class Observables:
    """Per-time, per-population observables (arrays of shape (nt, P))."""

    mass: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray


def readouts(nm: NumericModel, points: np.ndarray) -> np.ndarray:
    """``Ψ_q`` at ``points``: shape (P, M) (or (P, P, M)-free: one row per population)."""
    return np.array([nm.psi[q](points) for q in range(nm.P)])


def coupling_moments(nm: NumericModel, grid: Grid, rho: np.ndarray,
                     psi_values: np.ndarray | None = None) -> np.ndarray:
    """``m_q = ∫ Ψ_q ρ_q`` for ``rho`` of shape (..., P, M)."""
    psi_values = readouts(nm, grid.x) if psi_values is None else psi_values
    return np.einsum("...pi,pi,i->...p", rho, psi_values, grid.h)


def observe(nm: NumericModel, grid: Grid, rho: np.ndarray, times: np.ndarray) -> Observables:
    """All observables of ``rho`` (nt, P, M) at ``times`` (nt,)."""
    rho = np.asarray(rho, dtype=float)
    x, h = grid.x, grid.h
    mass = rho @ h
    safe = np.where(mass > 0, mass, 1.0)
    mean = (rho @ (x * h)) / safe
    var = np.einsum("tpi,tpi,i->tp", rho, (x[None, None, :] - mean[..., None]) ** 2, h) / safe
    m = coupling_moments(nm, grid, rho)
    # h_p(x; t) = Σ_j g_pj m_j(t) Φ_pj(x): the Φ_pj evaluated once, the moments per frame
    all_m = np.array([nm.all_moments(m[k], float(t)) for k, t in
                      enumerate(np.asarray(times, dtype=float))]).reshape(len(rho), nm.J)
    residual = np.empty_like(mass)
    for p in range(nm.P):
        phi = np.array([nm.phi[p][j](x) * np.ones_like(x) for j in range(nm.J)])  # (J, M)
        field = (all_m * nm.g[p]) @ phi  # (nt, M)
        residual[:, p] = (np.abs(field) * rho[:, p]) @ h
    return Observables(mass=mass, mean=mean, var=var, m=m, balance_residual=residual)
