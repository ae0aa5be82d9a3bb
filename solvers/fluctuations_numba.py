r"""The numba twin of the banded solves of the resolvent method (imported only with numba).

:func:`shifted_solve` is :func:`solvers.fluctuations_resolvent.shifted_solve_numpy` — the Thomas
algorithm for ``(−iω − L_pᵀ) x = rhs`` per population block and per frequency — as one
compiled loop (the numpy version is vectorised over ω but loops over the cells in Python).
Agreement: ``tests/solvers/test_fluctuations_resolvent.py``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def shifted_solve(omega, diag, lower, upper, rhs):
    """``(−iω − Lᵀ)⁻¹ rhs`` (nω, P·M, k): ``diag`` (P, M), ``lower``/``upper`` (P, M−1) the
    bands of ``L``, ``rhs`` (P·M, k) complex."""
    P, M = diag.shape
    n, k = omega.size, rhs.shape[1]
    out = np.empty((n, P * M, k), dtype=np.complex128)
    cp = np.empty(M, dtype=np.complex128)
    for w in range(n):
        shift = -1j * omega[w]
        for p in range(P):
            base = p * M
            pivot = shift - diag[p, 0]
            cp[0] = (-lower[p, 0] if M > 1 else 0.0) / pivot
            for c in range(k):
                out[w, base, c] = rhs[base, c] / pivot
            for i in range(1, M):
                sub = -upper[p, i - 1]
                pivot = shift - diag[p, i] - sub * cp[i - 1]
                cp[i] = (-lower[p, i] if i < M - 1 else 0.0) / pivot
                for c in range(k):
                    out[w, base + i, c] = (rhs[base + i, c] - sub * out[w, base + i - 1, c]) / pivot
            for i in range(M - 2, -1, -1):
                for c in range(k):
                    out[w, base + i, c] -= cp[i] * out[w, base + i + 1, c]
    return out
