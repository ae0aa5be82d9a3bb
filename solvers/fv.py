r"""Scharfetter–Gummel finite-volume pieces shared by every solver of the native family.

For :math:`\partial_t\rho = \partial_x(D\,\partial_x\rho + \partial_x U\,\rho)` the flux through
the face between centres :math:`x_i, x_{i+1}` (distance :math:`\Delta_i`) is

.. math:: J_{i+1/2} = \frac{D}{\Delta_i}\big[B(\delta_i)\,\rho_i - B(-\delta_i)\,\rho_{i+1}\big],
   \qquad \delta_i = \frac{U(x_{i+1}) - U(x_i)}{D}, \qquad B(z) = \frac{z}{e^z - 1},

written with potential *differences* (exact integrals of the drift between nodes). It vanishes
exactly on :math:`\rho_i \propto e^{-U(x_i)/D}`, so discrete equilibria are Gibbs states to
round-off, and the implicit operator is an M-matrix (positivity for every γ).
"""

from __future__ import annotations

import numpy as np

from meanfield.numeric import NumericModel
from solvers.grid import Grid


def bernoulli(z: np.ndarray) -> np.ndarray:
    """``B(z) = z / (e^z − 1)`` with ``B(0) = 1``, accurate for all z (series near 0)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-3
    zs = z[small]
    out[small] = 1 - zs / 2 + zs**2 / 12 - zs**4 / 720
    zl = z[~small]
    with np.errstate(over="ignore"):
        out[~small] = zl / np.expm1(zl)
    return out


def bernoulli_derivative(z: np.ndarray) -> np.ndarray:
    """``B'(z) = (e^z − 1 − z e^z)/(e^z − 1)²`` (series near 0, stable for ``|z|`` large)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-3
    zs = z[small]
    out[small] = -0.5 + zs / 6 - zs**3 / 180
    zl = z[~small]
    with np.errstate(over="ignore", invalid="ignore"):
        b = zl / np.expm1(zl)
        # B'(z) = B(z)/z − B(z)·(1 + B(z)/z)... use B' = B/z − B·e^z/(e^z−1) = B/z − B − B²/z
        out[~small] = b / zl - b - b * b / zl
    return out


def potential_differences(nm: NumericModel, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Edge differences of the antiderivatives between consecutive centres.

    Returns ``dF`` (P, M−1) with ``F_p(x_{i+1}) − F_p(x_i)`` and ``dG`` (P, J, M−1) likewise for
    ``G_pj``, so that ``ΔU_p = −dF_p + γ Σ_j g_pj m_j dG_pj``.
    """
    left, right = grid.x[:-1], grid.x[1:]
    dF = np.array([nm.F[p].integrate_between(left, right) for p in range(nm.P)])
    dG = np.array([[nm.G[p][j].integrate_between(left, right) for j in range(nm.J)]
                   for p in range(nm.P)])
    return dF, dG


def scaled_differences(dF: np.ndarray, dG: np.ndarray, g: np.ndarray, D: np.ndarray,
                       m_all: np.ndarray, gamma: float) -> np.ndarray:
    """``δ_p,i = ΔU_p,i / D_p`` for the J-vector of moments ``m_all`` (shape (P, M−1))."""
    coupling = np.einsum("pj,j,pji->pi", g, m_all, dG)
    return (-dF + gamma * coupling) / D[:, None]


def flux_coefficients(delta: np.ndarray, D: np.ndarray, gaps: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``J_{i+1/2} = a_i ρ_i − b_i ρ_{i+1}`` with ``a = D B(δ)/Δ``, ``b = D B(−δ)/Δ``."""
    scale = D[:, None] / gaps[None, :]
    return scale * bernoulli(delta), scale * bernoulli(-delta)


def divergence_bands(a: np.ndarray, b: np.ndarray, widths: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tridiagonal bands of ``L ρ = −(J_{i+1/2} − J_{i−1/2}) / h_i`` with zero-flux ends.

    Returns ``(lower, diag, upper)`` with shapes (P, M−1), (P, M), (P, M−1):
    ``(Lρ)_i = lower_{i−1} ρ_{i−1} + diag_i ρ_i + upper_i ρ_{i+1}``.
    """
    P, M = a.shape[0], a.shape[1] + 1
    diag = np.zeros((P, M))
    diag[:, :-1] -= a
    diag[:, 1:] -= b
    upper = b / widths[None, :-1]
    lower = a / widths[None, 1:]
    return lower, diag / widths[None, :], upper


def apply_operator(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray,
                   rho: np.ndarray) -> np.ndarray:
    """``L ρ`` for banded ``L`` (all arrays with a leading population axis)."""
    out = diag * rho
    out[:, :-1] += upper * rho[:, 1:]
    out[:, 1:] += lower * rho[:, :-1]
    return out


def gibbs(potential: np.ndarray, D: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Unit-mass discrete Gibbs densities ``exp(−U/D)/Z`` at the centres (log-sum-exp safe)."""
    exponent = -potential / D[:, None]
    exponent -= exponent.max(axis=1, keepdims=True)
    # weights below e^-700 are set to 0 (no subnormal arithmetic, far below round-off of the mass)
    w = np.where(exponent > -700.0, np.exp(np.maximum(exponent, -700.0)), 0.0)
    return w / (w @ widths)[:, None]
