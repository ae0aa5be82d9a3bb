r"""Gibbs densities and their moments for the self-consistency map (docs/mathematics.md §3).

For one population ``p`` with node potentials
:math:`U_i = -F_i + \sum_j c_j G_{j,i}` (``c_j = γ g_pj m_j``), the unit-mass Gibbs weights
:math:`w_i = e^{-(U_i - U_{\min})/D} h_i / Z` give

.. math:: T_p = \sum_i w_i \Psi_i, \qquad
   C_j = \mathrm{Cov}_w(\Psi, G_j) = \sum_i w_i (\Psi_i-\Psi_*)(G_{j,i}-G_{j,*})
         - \Big(\sum_i w_i(\Psi_i-\Psi_*)\Big)\Big(\sum_i w_i (G_{j,i}-G_{j,*})\Big),

with the shifts ``Ψ_*, G_*`` taken at the mode (so the covariance of a concentrated density keeps
its digits); weights below ``e^{-700}`` are dropped (no subnormal arithmetic).
Then ``∂T_p/∂m_j = −γ g_pj C_j / D_p``. :func:`gibbs_moments_numpy` is the plain
numpy twin of the compiled :func:`gibbs_moments_numba` (two passes over the cells, nothing
stored); :func:`gibbs_moments` picks the compiled one when numba is installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

GibbsKernel = Callable[[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray],
                       tuple[float, np.ndarray]]


def gibbs_moments_numpy(F: np.ndarray, G: np.ndarray, c: np.ndarray, D: float, psi: np.ndarray,
                        h: np.ndarray) -> tuple[float, np.ndarray]:
    """``(T, C)`` of the Gibbs density of ``U = −F + c·G`` (F, psi, h: (M,); G: (J, M); c: (J,))."""
    U = -F + c @ G
    mode = int(np.argmin(U))
    e = (U - U[mode]) / D
    w = np.where(e < 700.0, np.exp(-np.minimum(e, 700.0)), 0.0) * h
    w /= w.sum()
    dpsi = psi - psi[mode]
    dG = G - G[:, mode:mode + 1]
    mean_psi = w @ dpsi
    cov = dG @ (w * dpsi) - (dG @ w) * mean_psi
    return float(mean_psi + psi[mode]), cov


def _numba_kernel() -> GibbsKernel | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency of the fast path only
        return None

    @numba.njit(cache=True, error_model="numpy")
    def kernel(F, G, c, D, psi, h):
        J, M = G.shape
        best, mode = np.inf, 0
        for i in range(M):
            u = -F[i]
            for j in range(J):
                u += c[j] * G[j, i]
            if u < best:
                best, mode = u, i
        z = 0.0
        s_psi = 0.0
        s_g = np.zeros(J)
        s_pg = np.zeros(J)
        psi0 = psi[mode]
        for i in range(M):
            u = -F[i]
            for j in range(J):
                u += c[j] * G[j, i]
            e = (u - best) / D
            if e > 700.0:  # below e^-700: no subnormal arithmetic, far below round-off
                continue
            w = np.exp(-e) * h[i]
            z += w
            dp = psi[i] - psi0
            s_psi += w * dp
            for j in range(J):
                dg = G[j, i] - G[j, mode]
                s_g[j] += w * dg
                s_pg[j] += w * dp * dg
        mean_psi = s_psi / z
        cov = np.empty(J)
        for j in range(J):
            cov[j] = s_pg[j] / z - (s_g[j] / z) * mean_psi
        return mean_psi + psi0, cov

    return kernel


@functools.cache
def gibbs_moments_numba() -> GibbsKernel | None:
    """The compiled kernel (built on first use; ``None`` without numba)."""
    return _numba_kernel()


def gibbs_kernel(kernel: str = "auto") -> GibbsKernel:
    """The Gibbs-moment kernel by name: ``"auto"`` (numba if available), ``"numba"``, ``"numpy"``."""
    from meanfield.errors import bad_value

    if kernel not in ("auto", "numba", "numpy"):
        bad_value("kernel", kernel, "'auto', 'numba' or 'numpy'")
    if kernel == "numpy":
        return gibbs_moments_numpy
    compiled = gibbs_moments_numba()
    if compiled is None:
        if kernel == "numba":
            bad_value("kernel", kernel, "'numpy' or 'auto' (numba is not installed)")
        return gibbs_moments_numpy
    return compiled
