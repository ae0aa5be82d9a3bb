r"""One compiled call for the implicit part of a variable-step BDF2 step (numba).

:func:`bdf2_stage` runs, in one dispatch, what :func:`solvers.stepping.take_step` otherwise
calls in three: the right-hand side ``r = c_n ρ_n + c_{n−1} ρ_{n−1}``
(:func:`~solvers.kernels_numba_step.combine_into`), the Newton iteration of the stage
``(I − κL(δ(m)))ρ = r``, ``m = w·ρ`` (:func:`~solvers.kernels_numba_newton.newton`, or
:func:`~solvers.kernels_numba_newton.newton_centred` for a stage with centred readout
weights) and, when it converged, the tail of the step
(:func:`~solvers.kernels_numba_step.finish_into`: limited ``ρ``, ``f = (ρ̃ − r)/κ``, ``w·f`` and
the sums of the error estimate). The same operations in the same order as the three calls, so
the same numbers bit for bit; its numpy twin is that sequence with the plain pieces
(:func:`solvers.kernels.combine_numpy`, :func:`solvers.implicit.newton_stage`,
:func:`solvers.kernels.finish_step_numpy`: ``take_step`` with the numpy kernel). Both are
tested in ``tests/solvers/test_fused_stage.py``. When Newton fails, ``take_step`` continues
with :func:`solvers.implicit.continue_stage` from the right-hand side returned.
"""

from __future__ import annotations

import numba
import numpy as np

from solvers.kernels_numba_bernoulli import JIT
from solvers.kernels_numba_newton import newton, newton_centred
from solvers.kernels_numba_step import combine_into, finish_into


@numba.njit(**JIT)
def bdf2_stage(rho_n, c_n, rho_prev, c_prev, base, slopes, scale, widths, weights, kappa,
               m_guess, max_iter, rtol, work, f_n, ratio, h, centred):
    """``(r, ρ, m, iterations, converged, residual, f, w·f, sums)`` of one BDF2 stage (see
    above); ``f``, ``w·f`` and ``sums`` are left unset (shape (P, M), (P,), (8, P)) when Newton
    did not converge."""
    P, M = rho_n.shape
    rhs = combine_into(np.empty((P, M)), rho_n, c_n, rho_prev, c_prev)
    if centred:
        rho, m, iterations, converged, residual = newton_centred(
            base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol, work,
            np.empty((P, M)), np.empty((P, M)))
    else:
        rho, m, iterations, converged, residual = newton(
            base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol, work,
            np.empty((P, M)), np.empty((P, M)))
    f = np.empty((P, M))
    slope = np.empty(P)
    sums = np.empty((8, P))
    if converged:
        rho, f, slope, sums = finish_into(rho, rhs, kappa, rho_n, f_n, rho_prev, ratio, h,
                                          weights, widths, f)
    return rhs, rho, m, iterations, converged, residual, f, slope, sums
