r"""Gibbs densities and their moments for the self-consistency map (docs/mathematics.md §3).

For one population ``p`` with node potentials
:math:`U_i = -F_i + \sum_j c_j G_{j,i}` (``c_j = γ g_pj m_j``), the unit-mass Gibbs weights
:math:`w_i = e^{-(U_i - U_{\min})/D} h_i / Z` give

.. math:: T_p = \sum_i w_i \Psi_i, \qquad
   C_j = \mathrm{Cov}_w(\Psi, G_j) = \sum_i w_i (\Psi_i-\Psi_*)(G_{j,i}-G_{j,*})
         - \Big(\sum_i w_i(\Psi_i-\Psi_*)\Big)\Big(\sum_i w_i (G_{j,i}-G_{j,*})\Big),

with the shifts ``Ψ_*, G_*`` taken at the mode (so the covariance of a concentrated density keeps
its digits). The node values only locate the mode (a node found lower on the way rescales the
sums: no overflow); ``U_i − U_*`` and ``G_{j,i} − G_{j,*}`` are
summed outwards from it over the edge differences ``ΔU = −ΔF + c·ΔG`` (so they keep their digits
when ``D`` is tiny or the domain wide: the error is relative to ``U_i − U_*``, not to ``|U_i|``).
Weights below ``e^{-700}`` are dropped (no subnormal arithmetic).
Then ``∂T_p/∂m_j = −γ g_pj C_j / D_p``. :func:`gibbs_moments_numpy` is the plain
numpy twin of the compiled :func:`gibbs_moments_numba` (two passes over the cells, nothing
stored); :func:`gibbs_moments` picks the compiled one when numba is installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

GibbsKernel = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float,
                        np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def outward_sums(differences: np.ndarray, origin: int) -> np.ndarray:
    """Node values (..., M) from edge differences (..., M−1), zero at ``origin``, summed outwards."""
    out = np.zeros((*differences.shape[:-1], differences.shape[-1] + 1))
    out[..., origin + 1:] = np.cumsum(differences[..., origin:], axis=-1)
    out[..., :origin] = -np.cumsum(differences[..., :origin][..., ::-1], axis=-1)[..., ::-1]
    return out


def gibbs_moments_numpy(F: np.ndarray, G: np.ndarray, dF: np.ndarray, dG: np.ndarray,
                        c: np.ndarray, D: float, psi: np.ndarray,
                        h: np.ndarray) -> tuple[float, np.ndarray]:
    """``(T, C)`` of the Gibbs density of ``U = −F + c·G`` (F, psi, h: (M,); G: (J, M); dF, dG
    their edge differences (M−1,), (J, M−1); c: (J,))."""
    mode = int(np.argmin(-F + c @ G))
    e = outward_sums(-dF + c @ dG, mode) / D
    e -= min(e.min(), 0.0)  # nodes below the located mode (noisy node values)
    w = np.where(e < 700.0, np.exp(-np.minimum(e, 700.0)), 0.0) * h
    w /= w.sum()
    dpsi = psi - psi[mode]
    dG_nodes = outward_sums(dG, mode)
    mean_psi = w @ dpsi
    cov = dG_nodes @ (w * dpsi) - (dG_nodes @ w) * mean_psi
    return float(mean_psi + psi[mode]), cov


def _numba_kernel() -> GibbsKernel | None:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency of the fast path only
        return None

    @numba.njit(cache=True, error_model="numpy")
    def kernel(F, G, dF, dG, c, D, psi, h):
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
        g = np.zeros(J)
        psi0 = psi[mode]
        z = h[mode]  # the mode itself: e = 0, dp = 0, dg = 0
        low = 0.0  # the smallest exponent met: weights are exp(low − e)
        for step in (1, -1):  # rightwards, then leftwards: U_i − U_* summed over the edges
            u = 0.0
            for j in range(J):
                g[j] = 0.0
            i = mode + step
            while 0 <= i < M:
                edge = i - 1 if step == 1 else i  # the edge between i and its neighbour to the mode
                du = -dF[edge]
                for j in range(J):
                    du += c[j] * dG[j, edge]
                    g[j] += step * dG[j, edge]
                u += step * du
                e = u / D
                if e < low:  # below the located mode (noisy node values): rescale the sums
                    scale = np.exp(e - low)
                    z *= scale
                    s_psi *= scale
                    for j in range(J):
                        s_g[j] *= scale
                        s_pg[j] *= scale
                    low = e
                if e - low <= 700.0:  # below e^-700: no subnormal arithmetic, far below round-off
                    w = np.exp(low - e) * h[i]
                    z += w
                    dp = psi[i] - psi0
                    s_psi += w * dp
                    for j in range(J):
                        s_g[j] += w * g[j]
                        s_pg[j] += w * dp * g[j]
                i += step
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
