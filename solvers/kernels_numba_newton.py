r"""The compiled Newton iteration of one stage (the twin of :func:`solvers.implicit.newton_stage`).

Newton with a trust region on ``R(m) = w·ρ(m) − m``; each evaluation is one
:func:`solvers.kernels_numba_pair.evaluate` (the Jacobian fused with it when likely needed).
"""

from __future__ import annotations

import numba
import numpy as np

from solvers.kernels_numba_bernoulli import JIT
from solvers.kernels_numba_pair import evaluate
from solvers.kernels_numba_sweep import OFF, ON


@numba.njit(**JIT)
def _newton_direction(jac, residual, out):
    """Solve ``(jac − I) out = −residual`` by LU with partial pivoting; False if singular."""
    P = residual.size
    A = jac.copy()
    for i in range(P):
        A[i, i] -= 1.0
        out[i] = -residual[i]
    for k in range(P):
        pivot = k
        for i in range(k + 1, P):
            if abs(A[i, k]) > abs(A[pivot, k]):
                pivot = i
        if A[pivot, k] == 0.0:
            return False
        if pivot != k:
            for j in range(P):
                A[k, j], A[pivot, j] = A[pivot, j], A[k, j]
            out[k], out[pivot] = out[pivot], out[k]
        for i in range(k + 1, P):
            factor = A[i, k] / A[k, k]
            for j in range(k + 1, P):
                A[i, j] -= factor * A[k, j]
            out[i] -= factor * out[k]
    for k in range(P - 1, -1, -1):
        total = out[k]
        for j in range(k + 1, P):
            total -= A[k, j] * out[j]
        out[k] = total / A[k, k]
    return True


@numba.njit(**JIT)
def _scaled_norm(residual, magnitude):
    worst = 0.0
    for p in range(residual.size):
        value = abs(residual[p]) / magnitude[p]
        if value > worst or value != value:
            worst = value
    return worst


@numba.njit(**JIT)
def _residual(readout, point, size):
    """``(R, s, ‖R/s‖_∞)`` with ``R = readout − point`` and ``s = max(size, 1e-300)`` (NaN kept),
    written as loops (numba compiles a kernel per array expression: seconds on a cold cache)."""
    P = point.size
    residual = np.empty(P)
    magnitude = np.empty(P)
    for p in range(P):
        residual[p] = readout[p] - point[p]
        value = size[p]
        magnitude[p] = value if not value < 1e-300 else 1e-300
    return residual, magnitude, _scaled_norm(residual, magnitude)


@numba.njit(**JIT)
def _plus(x, y):
    """``x + y`` as a loop (see :func:`_residual`)."""
    out = np.empty(x.size)
    for p in range(x.size):
        out[p] = x[p] + y[p]
    return out


FUSE_JACOBIAN_ABOVE = 1e-5
"""A trial point is evaluated with its Jacobian fused in when the current scaled residual is above
this (Newton will then probably need it); otherwise the Jacobian is computed only if needed."""


@numba.njit(**JIT)
def newton(base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol,
           work, rho, spare):
    """Newton with trust region on ``R(m) = w·ρ(m) − m`` (see :func:`solvers.implicit.newton_stage`).

    ``rho`` and ``spare`` (P, M) hold the densities of the current point and of a trial point
    (swapped when a trial is taken). Returns ``(rho, m, iterations, converged, residual)``,
    ``rho`` being one of the two.
    """
    return _iterate(base, slopes, scale, widths, weights, weights, False, kappa, rhs, m_guess,
                    max_iter, rtol, work, rho, spare)


@numba.njit(**JIT)
def centred_weights(weights, widths, rhs, m_guess):
    r"""``w̃_p = w_p − c_p h`` with ``c_p = m_p / Σ_i h_i r_{p,i}`` (0 for a massless row).

    The stage conserves mass, ``Σ_i h_i ρ_{p,i}(m) = Σ_i h_i r_{p,i}`` for every ``m``, so
    ``∂(w̃·ρ)/∂m = ∂(w·ρ)/∂m`` exactly; but the adjoint of ``w̃`` is small where ``w`` is nearly
    proportional to ``h`` (a window much narrower than the scale of ``Ψ``), and the Jacobian,
    sums of differences ``y_{i+1} − y_i`` of the adjoint, no longer cancels its constant part.
    """
    P, M = weights.shape
    out = np.empty((P, M))
    for p in range(P):
        mass = 0.0
        for i in range(M):
            mass += widths[i] * rhs[p, i]
        c = m_guess[p] / mass if mass != 0.0 and np.isfinite(mass) else 0.0
        if not np.isfinite(c):
            c = 0.0
        for i in range(M):
            out[p, i] = weights[p, i] - c * widths[i]
    return out


@numba.njit(**JIT)
def newton_centred(base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol,
                   work, rho, spare):
    """:func:`newton` with the Jacobian from the adjoint of :func:`centred_weights` (the
    readouts, residuals and every decision from ``w`` itself, summed in the sweep's order)."""
    shifted = centred_weights(weights, widths, rhs, m_guess)
    return _iterate(base, slopes, scale, widths, shifted, weights, True, kappa, rhs, m_guess,
                    max_iter, rtol, work, rho, spare)


@numba.njit(**JIT)
def _read(weights, rho, readout, size):
    """``readout_p = Σ_i w_{p,i} ρ_{p,i}``, ``size_p = Σ_i |w_{p,i}| |ρ_{p,i}|`` (the sums of
    :func:`solvers.kernels_numba_pair.sweep_pair`, from the last cell down)."""
    P, M = rho.shape
    for p in range(P):
        total = weights[p, M - 1] * rho[p, M - 1]
        absolute = abs(weights[p, M - 1]) * abs(rho[p, M - 1])
        for i in range(M - 2, -1, -1):
            total += weights[p, i] * rho[p, i]
            absolute += abs(weights[p, i]) * abs(rho[p, i])
        readout[p] = total
        size[p] = absolute


@numba.njit(**JIT)
def _iterate(base, slopes, scale, widths, weights, readout_weights, reread, kappa, rhs, m_guess,
             max_iter, rtol, work, rho, spare):
    """The iteration of :func:`newton`: the sweeps use ``weights`` (readouts and adjoint); with
    ``reread`` the readouts are then taken again with ``readout_weights`` (:func:`_read`)."""
    P = rhs.shape[0]
    m = m_guess.copy()
    readout = np.empty(P)
    size = np.empty(P)
    jac = np.zeros((P, P))
    trial = np.empty(P)
    step = np.empty(P)
    direction = np.empty(P)
    evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, rho, work, ON, ON,
             readout, size, jac)
    if reread:
        _read(readout_weights, rho, readout, size)
    residual, magnitude, norm = _residual(readout, m, size)
    jac_ready = True
    radius = np.inf
    iterations = 1
    have_direction = False
    while True:
        done = True
        for p in range(P):
            if not abs(residual[p]) <= rtol * magnitude[p]:
                done = False
        if done:
            return rho, _plus(m, residual), iterations, True, norm
        if iterations >= max_iter or not np.isfinite(norm):
            return rho, _plus(m, residual), iterations, False, np.inf
        if not have_direction:
            if not jac_ready:
                evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, rho, work,
                         OFF, ON, readout, size, jac)
            if not _newton_direction(jac, residual, direction):
                return rho, _plus(m, residual), iterations, False, np.inf
            have_direction = True
        length = 0.0
        for p in range(P):
            step[p] = direction[p]
            length = max(length, abs(step[p]))
        if not np.isfinite(length):
            return rho, _plus(m, residual), iterations, False, np.inf
        if length > radius:
            for p in range(P):
                step[p] *= radius / length
            length = radius
        for p in range(P):
            trial[p] = m[p] + step[p]
        fuse = norm > FUSE_JACOBIAN_ABOVE
        evaluate(base, slopes, trial, slopes, scale, widths, weights, kappa, rhs, spare, work,
                 ON, fuse, readout, size, jac)
        if reread:
            _read(readout_weights, spare, readout, size)
        iterations += 1
        new_residual, new_magnitude, new_norm = _residual(readout, trial, size)
        if new_norm < norm:
            m = trial.copy()
            norm = new_norm
            rho, spare = spare, rho
            residual = new_residual
            magnitude = new_magnitude
            jac_ready = fuse
            have_direction = False
            if np.isfinite(radius):
                radius = 2 * length
        else:
            radius = length / 4
            biggest = 1.0
            for p in range(P):
                biggest = max(biggest, abs(m[p]))
            if radius <= 1e-15 * biggest:
                return rho, _plus(m, residual), iterations, False, np.inf
            jac_ready = False
