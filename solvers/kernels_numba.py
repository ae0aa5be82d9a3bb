r"""The numba twin of :mod:`solvers.kernels` (imported only when numba is installed).

Same arrays, same algorithm (subtraction-free pivots from the reduced column sums, Thomas
substitutions, adjoint solve for the Jacobian), fused so that one Newton evaluation of a stage
is one sweep per population (two populations share one, their recurrences interleaved:
:mod:`solvers.kernels_numba_pair`):

1. in blocks of :data:`BLOCK` edges, the scaled potential differences
   ``δ = base + Σ_q m_q slopes_q`` (affine in the unknown moments) and the Bernoulli
   coefficients ``a = κ s B(δ)``, ``b = κ s B(−δ)`` (and ``B'(δ)`` when the Jacobian is wanted),
   in a vectorised loop (:func:`exp_negative`, a branch-free ``exp`` accurate to one ulp, stands
   in for libm so that the loop vectorises);
2. over the same block, the forward recurrences: the pivots (their two-term form renormalised
   every :data:`~solvers.kernels_numba_sweep.RESCALE_EVERY` cells, so no division sits on the
   dependency chain), the forward
   substitution and (for the Jacobian) the forward half of the transposed solve with the same
   pivots; what the backward sweep needs is stored already divided by the pivot;
3. one backward sweep: back substitution, the readouts ``Σ w ρ`` and ``Σ |w| |ρ|``, the
   backward half of the transposed solve, then the Jacobian sums.

:func:`newton` runs the whole Newton iteration of :func:`solvers.implicit.newton_stage` in
compiled code (same trust region, same decisions, same numbers to round-off; the Jacobian comes
fused with the first evaluation, later ones only when needed); :func:`finish_step` is the fused
tail of :func:`solvers.stepping.take_step` and :func:`combine` its right-hand side. Compiled
once and cached on disk.

Split by job: :mod:`solvers.kernels_numba_bernoulli` (the coefficients),
:mod:`solvers.kernels_numba_sweep` (one fused sweep), :mod:`solvers.kernels_numba_pair` (two
populations per sweep, their recurrences interleaved), :mod:`solvers.kernels_numba_newton` (the
Newton iteration), :mod:`solvers.kernels_numba_step` (the step tail); this module holds the
Python-facing calls of :class:`solvers.kernels.StageKernel`. None of them imports
:mod:`solvers.kernels` (which imports this module lazily), so there is no import cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvers.kernels_numba_bernoulli import bernoulli_values, coefficients, exp_negative
from solvers.kernels_numba_newton import newton
from solvers.kernels_numba_pair import evaluate, sweep_pair
from solvers.kernels_numba_step import combine_into, finish_into
from solvers.kernels_numba_sweep import BLOCK, sweep

__all__ = ["BLOCK", "STAGE_PIECES", "bernoulli_values", "coefficients", "combine", "combine_into",
           "evaluate", "exp_negative", "finish_into", "finish_step", "jacobian_call", "newton",
           "newton_call", "solve_call", "sweep", "sweep_pair"]


def workspace_arrays(workspace: dict[str, Any] | None, P: int, M: int
                     ) -> tuple[np.ndarray, ...]:
    """Scratch ``(a/π, b/π, B' then ∂(w·ρ)/∂δ, v, block)`` kept in the caller's dict."""
    work = workspace if workspace is not None else {}
    if work.get("numba_shape") != (P, M):
        E = M - 1
        work["numba_shape"] = (P, M)
        work["numba_work"] = (np.empty((P, E)), np.empty((P, E)), np.empty((P, E)),
                              np.empty((P, M)), np.empty((8, BLOCK)))
    return work["numba_work"]


_NO_MOMENTS = np.empty(0)


def solve_call(delta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
               weights: np.ndarray, kappa: float, rhs: np.ndarray,
               workspace: dict[str, Any] | None = None) -> Any:
    """Stage solve for given ``δ``; the returned factors hold what :func:`jacobian_call` needs."""
    delta = np.ascontiguousarray(delta, dtype=float)
    rhs = np.ascontiguousarray(rhs, dtype=float)
    P, M = rhs.shape
    work = workspace_arrays(workspace, P, M)
    rho = np.empty((P, M))
    readout, magnitude = np.empty(P), np.empty(P)
    scale = np.ascontiguousarray(scale, dtype=float)
    widths = np.ascontiguousarray(widths, dtype=float)
    weights = np.ascontiguousarray(weights, dtype=float)
    empty = np.empty((P, 0, M - 1))
    evaluate(delta, empty, _NO_MOMENTS, empty, scale, widths, weights, float(kappa), rhs, rho,
             work, True, False, readout, magnitude, np.empty((P, 0)))
    return rho, readout, magnitude, (delta, rhs, work)


def jacobian_call(factors: Any, ddelta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                  weights: np.ndarray, kappa: float, rho: np.ndarray) -> np.ndarray:
    """``∂(w·ρ)/∂m`` from the adjoint sweep with the pivots of the solve that gave ``rho``."""
    delta, rhs, work = factors
    ddelta = np.ascontiguousarray(ddelta, dtype=float)
    P = rho.shape[0]
    jac = np.zeros((P, ddelta.shape[1]))
    readout, magnitude = np.empty(P), np.empty(P)
    empty = np.empty((P, 0, delta.shape[1]))
    evaluate(delta, empty, _NO_MOMENTS, ddelta, np.ascontiguousarray(scale, dtype=float),
             np.ascontiguousarray(widths, dtype=float),
             np.ascontiguousarray(weights, dtype=float), float(kappa), rhs,
             np.ascontiguousarray(rho, dtype=float), work, False, True, readout, magnitude, jac)
    return jac


def newton_call(base: np.ndarray, slopes: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                weights: np.ndarray, kappa: float, rhs: np.ndarray, m_guess: np.ndarray,
                max_iter: int, rtol: float, workspace: dict[str, Any] | None = None
                ) -> tuple[np.ndarray, np.ndarray, int, bool, float]:
    """The compiled Newton iteration for ``δ = base + Σ_q m_q slopes[:, q]`` (all C-contiguous)."""
    P, M = rhs.shape
    return newton(base, slopes, scale, widths, weights, float(kappa), rhs,
                  np.asarray(m_guess, dtype=float), int(max_iter), float(rtol),
                  workspace_arrays(workspace, P, M), np.empty((P, M)), np.empty((P, M)))


def finish_step(rho: np.ndarray, rhs: np.ndarray, kappa: float, rho_n: np.ndarray,
                f_n: np.ndarray, rho_prev: np.ndarray, ratio: float, h: float,
                weights: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`~solvers.kernels_numba_step.finish_into` with a fresh ``f`` (the signature of
    :func:`solvers.kernels.finish_step_numpy`)."""
    return finish_into(rho, rhs, float(kappa), rho_n, f_n, rho_prev, float(ratio), float(h),
                       weights, widths, np.empty(rho.shape))


def combine(x: np.ndarray, cx: float, y: np.ndarray, cy: float) -> np.ndarray:
    """``cx·x + cy·y`` (:func:`~solvers.kernels_numba_step.combine_into` into a fresh array)."""
    return combine_into(np.empty(x.shape), x, float(cx), y, float(cy))


STAGE_PIECES = {"solve": solve_call, "jacobian": jacobian_call, "newton": newton_call,
                "finish": finish_step, "combine": combine}
"""The compiled pieces of a :class:`solvers.kernels.StageKernel` (assembled there, so that this
module imports nothing from the package)."""
