r"""The numba twin of :mod:`solvers.kernels` (imported only when numba is installed).

Same arrays, same algorithm (subtraction-free pivots from the reduced column sums, Thomas
substitutions, adjoint solve for the Jacobian), fused so that one Newton evaluation of a stage
is one sweep per population:

1. in blocks of :data:`BLOCK` edges, the scaled potential differences
   ``δ = base + Σ_q m_q slopes_q`` (affine in the unknown moments) and the Bernoulli
   coefficients ``a = κ s B(δ)``, ``b = κ s B(−δ)`` (and ``B'(δ)`` when the Jacobian is wanted),
   in a vectorised loop (:func:`exp_negative`, a branch-free ``exp`` accurate to one ulp, stands
   in for libm so that the loop vectorises);
2. over the same block, the forward recurrences: the pivots (their two-term form renormalised
   every :data:`RESCALE_EVERY` cells, so no division sits on the dependency chain), the forward
   substitution and (for the Jacobian) the forward half of the transposed solve with the same
   pivots; what the backward sweep needs is stored already divided by the pivot;
3. one backward sweep: back substitution, the readouts ``Σ w ρ`` and ``Σ |w| |ρ|``, the
   backward half of the transposed solve, then the Jacobian sums.

:func:`newton` runs the whole Newton iteration of :func:`solvers.implicit.newton_stage` in
compiled code (same trust region, same decisions, same numbers to round-off; the Jacobian comes
fused with the first evaluation, later ones only when needed); :func:`finish_step` is the fused
tail of :func:`solvers.stepping.take_step` and :func:`combine` its right-hand side. Compiled
once and cached on disk.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

BLOCK = 1024
"""Edges per block of the fused sweep (its scratch stays in the L1/L2 caches)."""

_JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})
"""Compiled with IEEE division (x/0 = inf, no Python check, so loops vectorise) and fused
multiply–adds allowed (no other fast-math reassociation)."""
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that n·LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_EXP_LIMIT = 708.0  # exp(−u) is taken as 0 beyond (below 3e-308)
# Taylor coefficients 1/k! of exp on |r| ≤ ln2/2 (truncation < 1e-17 relative)
_X2, _X3, _X4, _X5, _X6, _X7 = (1 / math.factorial(k) for k in range(2, 8))
_X8, _X9, _X10, _X11, _X12, _X13 = (1 / math.factorial(k) for k in range(8, 14))
# B(z) = E(z²) − z/2 with E(z²) = 1 + Σ_k B_2k z^2k/(2k)!, used for |z| < 1/2 (error < 1e-17)
_E1, _E2, _E3, _E4 = 1 / 12, -1 / 720, 1 / 30240, -1 / 1209600
_E5, _E6, _E7, _E8 = 1 / 47900160, -691 / 1307674368000, 1 / 74724249600, -3617 / 10670622842880000
_SERIES = 0.5


@intrinsic
def _bits_as_float(typingctx, bits):
    """Reinterpret the 64 bits of an integer as a double (to build ``2^n``)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@numba.njit(inline="always", **_JIT)
def exp_negative(u):
    """``exp(−u)`` for ``u ≥ 0`` (0 beyond 708): Cody–Waite reduction ``−u = n ln2 + r`` and a
    degree-13 Taylor polynomial, times ``2^n`` built from its exponent bits; within one ulp."""
    xv = -min(u, _EXP_LIMIT)
    n = math.floor(xv * _INV_LN2 + 0.5)
    r = (xv - n * _LN2_HI) - n * _LN2_LO
    p = _X13
    p = p * r + _X12
    p = p * r + _X11
    p = p * r + _X10
    p = p * r + _X9
    p = p * r + _X8
    p = p * r + _X7
    p = p * r + _X6
    p = p * r + _X5
    p = p * r + _X4
    p = p * r + _X3
    p = p * r + _X2
    p = p * r + 1.0
    p = p * r + 1.0
    value = p * _bits_as_float((n + 1023) << 52)
    return value if u <= _EXP_LIMIT else 0.0


@numba.njit(inline="always", **_JIT)
def bernoulli_values(z):
    """``(B(z), B(−z), B'(z))`` with ``B(z) = z/(eᶻ − 1)``: the even series below ``|z| = 1/2``,
    else ``B(−|z|) = |z|/(1 − e^{−|z|})``, ``B(|z|) = B(−|z|) e^{−|z|}``, ``B' = B(z)(1 − B(−z))/z``."""
    u = abs(z)
    z2 = z * z
    even = 1.0 + z2 * (_E1 + z2 * (_E2 + z2 * (_E3 + z2 * (_E4 + z2 * (
        _E5 + z2 * (_E6 + z2 * (_E7 + z2 * _E8)))))))
    slope = z * (2 * _E1 + z2 * (4 * _E2 + z2 * (6 * _E3 + z2 * (8 * _E4 + z2 * (
        10 * _E5 + z2 * (12 * _E6 + z2 * (14 * _E7 + z2 * 16 * _E8))))))) - 0.5
    t = exp_negative(u)
    big = u / (1.0 - t)
    small = big * t
    series = u < _SERIES
    positive = z > 0.0
    plus = (even - 0.5 * z) if series else (small if positive else big)
    minus = (even + 0.5 * z) if series else (big if positive else small)
    der = slope if series else plus * (1.0 - minus) / z
    return plus, minus, der


@numba.njit(**_JIT)
def _coefficients(z, count, scale, offset, kappa, a, b, d, derivative):
    """``a = κ s B(z)``, ``b = κ s B(−z)`` (and ``d = B'(z)``) for the ``count`` edges of a block
    starting at edge ``offset`` (``s`` read from there, the outputs written from 0)."""
    if derivative:
        for k in range(count):
            plus, minus, der = bernoulli_values(z[k])
            unit = kappa * scale[offset + k]
            a[k] = unit * plus
            b[k] = unit * minus
            d[k] = der
    else:
        for k in range(count):
            plus, minus, _ = bernoulli_values(z[k])
            unit = kappa * scale[offset + k]
            a[k] = unit * plus
            b[k] = unit * minus


RESCALE_EVERY = 8
"""The pivot recurrence is renormalised every this many cells (its two components change by the
pivot of each cell, a factor within 1e±38, so they stay far from under- and overflow)."""


@numba.njit(**_JIT)
def sweep(p, base, slopes, m, ddelta, scale, widths, weights, kappa, rhs, rho, work,
          solve, adjoint, jac):
    """One population ``p``: coefficients, pivots, substitutions, readouts and Jacobian row.

    ``δ = base[p] + Σ_q m_q slopes[p, q]``. With ``solve`` the stage solution is written to
    ``rho[p]`` (else ``rho[p]`` is read as given); with ``adjoint`` the row ``jac[p, :]`` of
    ``∂(w·ρ)/∂m`` along ``ddelta[p]`` is added. Returns ``(Σ w ρ, Σ |w| |ρ|)``.

    Stored for the backward sweep, per edge: ``b_i/π_i`` and (adjoint) ``a_i/π_i`` and ``B'(δ_i)``
    (``π_i`` the pivots); per cell: ``r_i/π_i`` (in ``rho``) and the forward adjoint ``v_i``.
    """
    ai_all, bi_all, d_all, y_all, block = work
    M = widths.size
    E = M - 1
    Q = m.size
    aip, bip, dp, yp, rp = ai_all[p], bi_all[p], d_all[p], y_all[p], rho[p]
    z, ka, kb, kd = block[0], block[1], block[2], block[3]
    hp, wp, rhsp, sp, basep = widths, weights[p], rhs[p], scale[p], base[p]
    num = hp[0]
    den = 1.0
    r = 0.0
    v = 0.0
    left_a = left_b = left_ai = 0.0
    for lo in range(0, E, BLOCK):
        hi = min(lo + BLOCK, E)
        count = hi - lo
        source = basep[lo:hi]
        for k in range(count):
            z[k] = source[k]
        for q in range(Q):
            mq = m[q]
            row = slopes[p, q, lo:hi]
            for k in range(count):
                z[k] += mq * row[k]
        _coefficients(z, count, sp, lo, kappa, ka, kb, kd, adjoint)
        start = lo
        if lo == 0:  # first cell: S_0 = h_0, pivot h_0 + a_0
            right_a = ka[0]
            current = 1.0 / (num + right_a)
            if solve:
                r = hp[0] * rhsp[0]
                rp[0] = r * current
            bip[0] = kb[0] * current
            left_ai = right_a * current
            if adjoint:
                aip[0] = left_ai
                v = wp[0] * current
                yp[0] = v
                dp[0] = kd[0]
            left_a = right_a
            left_b = kb[0]
            start = 1
        for first in range(start, hi, RESCALE_EVERY):
            for i in range(first, min(first + RESCALE_EVERY, hi)):
                k = i - lo
                right_a = ka[k]
                right_b = kb[k]
                h = hp[i]
                following = (h + left_b) * num + h * left_a * den
                den = num + left_a * den
                num = following
                current = den / (num + right_a * den)
                if solve:
                    r = h * rhsp[i] + left_ai * r
                    rp[i] = r * current
                bip[i] = right_b * current
                right_ai = right_a * current
                if adjoint:
                    aip[i] = right_ai
                    v = wp[i] * current + left_b * current * v
                    yp[i] = v
                    dp[i] = kd[k]
                left_a = right_a
                left_b = right_b
                left_ai = right_ai
            den /= num
            num = 1.0
    # last cell (no edge to its right)
    h = hp[E]
    following = (h + left_b) * num + h * left_a * den
    den = num + left_a * den
    num = following
    current = den / num
    if solve:
        r = h * rhsp[E] + left_ai * r
        x = r * current
        rp[E] = x
    else:
        x = rp[E]
    if adjoint:
        v = wp[E] * current + left_b * current * v
    total = wp[E] * x
    absolute = abs(wp[E]) * abs(x)
    nd = ddelta.shape[1]
    directions = ddelta[p]
    few = nd <= 3  # Jacobian sums in registers, else levers stored and summed afterwards
    row0 = directions[0] if nd > 0 else dp
    row1 = directions[1] if nd > 1 else dp
    row2 = directions[2] if nd > 2 else dp
    j0 = j1 = j2 = 0.0
    for i in range(E - 1, -1, -1):
        following_x = x
        if solve:
            x = rp[i] + bip[i] * x
            rp[i] = x
        else:
            x = rp[i]
        total += wp[i] * x
        absolute += abs(wp[i]) * abs(x)
        if adjoint:
            following_v = v
            v = yp[i] + aip[i] * following_v
            der = dp[i]
            flux = sp[i] * (der * x - (der + 1.0) * following_x)
            lever = kappa * flux * (following_v - v)  # ∂(w·ρ)/∂δ_i
            if few:
                if nd > 0:
                    j0 += row0[i] * lever
                if nd > 1:
                    j1 += row1[i] * lever
                if nd > 2:
                    j2 += row2[i] * lever
            else:
                dp[i] = lever  # in place of B'(δ_i)
    if adjoint:
        if few:
            if nd > 0:
                jac[p, 0] += j0
            if nd > 1:
                jac[p, 1] += j1
            if nd > 2:
                jac[p, 2] += j2
        else:
            for q in range(nd):
                jac[p, q] += _dot(directions[q], dp, E)
    return total, absolute


@numba.njit(inline="always", **_JIT)
def _dot(u, v, n):
    """``Σ_{i<n} u_i v_i`` with four partial sums."""
    s0 = s1 = s2 = s3 = 0.0
    head = n - n % 4
    for i in range(0, head, 4):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
        s2 += u[i + 2] * v[i + 2]
        s3 += u[i + 3] * v[i + 3]
    for i in range(head, n):
        s0 += u[i] * v[i]
    return (s0 + s1) + (s2 + s3)


@numba.njit(**_JIT)
def evaluate(base, slopes, m, ddelta, scale, widths, weights, kappa, rhs, rho, work, solve,
             adjoint, readout, magnitude, jac):
    """All populations: :func:`sweep` for each (``work`` from :func:`_workspace`)."""
    if adjoint:
        jac[:, :] = 0.0
    for p in range(rhs.shape[0]):
        total, absolute = sweep(p, base, slopes, m, ddelta, scale, widths, weights, kappa, rhs,
                                rho, work, solve, adjoint, jac)
        readout[p] = total
        magnitude[p] = absolute


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def _scaled_norm(residual, magnitude):
    worst = 0.0
    for p in range(residual.size):
        value = abs(residual[p]) / magnitude[p]
        if value > worst or value != value:
            worst = value
    return worst


FUSE_JACOBIAN_ABOVE = 1e-5
"""A trial point is evaluated with its Jacobian fused in when the current scaled residual is above
this (Newton will then probably need it); otherwise the Jacobian is computed only if needed."""


@numba.njit(**_JIT)
def newton(base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol,
           work):
    """Newton with trust region on ``R(m) = w·ρ(m) − m`` (see :func:`solvers.implicit.newton_stage`).

    Returns ``(rho, m, iterations, converged, residual)``.
    """
    P, M = rhs.shape
    m = m_guess.copy()
    rho = np.empty((P, M))
    spare = np.empty((P, M))
    readout = np.empty(P)
    size = np.empty(P)
    jac = np.zeros((P, P))
    trial = np.empty(P)
    step = np.empty(P)
    direction = np.empty(P)
    evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, rho, work, True, True,
             readout, size, jac)
    residual = readout - m
    magnitude = np.maximum(size, 1e-300)
    norm = _scaled_norm(residual, magnitude)
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
            return rho, m + residual, iterations, True, norm
        if iterations >= max_iter or not np.isfinite(norm):
            return rho, m + residual, iterations, False, np.inf
        if not have_direction:
            if not jac_ready:
                evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, rho, work,
                         False, True, readout, size, jac)
            if not _newton_direction(jac, residual, direction):
                return rho, m + residual, iterations, False, np.inf
            have_direction = True
        length = 0.0
        for p in range(P):
            step[p] = direction[p]
            length = max(length, abs(step[p]))
        if not np.isfinite(length):
            return rho, m + residual, iterations, False, np.inf
        if length > radius:
            for p in range(P):
                step[p] *= radius / length
            length = radius
        for p in range(P):
            trial[p] = m[p] + step[p]
        fuse = norm > FUSE_JACOBIAN_ABOVE
        evaluate(base, slopes, trial, slopes, scale, widths, weights, kappa, rhs, spare, work,
                 True, fuse, readout, size, jac)
        iterations += 1
        new_residual = readout - trial
        new_magnitude = np.maximum(size, 1e-300)
        new_norm = _scaled_norm(new_residual, new_magnitude)
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
                return rho, m + residual, iterations, False, np.inf
            jac_ready = False


@numba.njit(**_JIT)
def finish_step(rho, rhs, kappa, rho_n, f_n, rho_prev, ratio, h, weights, widths):
    """Fused tail of a step (see :func:`solvers.kernels.finish_step_numpy`): one pass over
    ``ρ`` for its signs and masses, one for the rest."""
    P, M = rho.shape
    factor = np.ones(P)
    sums = np.empty((8, P))
    clip = False
    for p in range(P):
        rp = rho[p]
        mass = 0.0
        negative = 0.0
        lowest = np.inf
        for i in range(M):
            value = rp[i]
            mass += value * widths[i]
            negative += min(value, 0.0) * widths[i]
            lowest = min(lowest, value)
        sums[2, p] = lowest
        sums[3, p] = mass
        sums[4, p] = negative
        if lowest < 0.0:
            clip = True
            factor[p] = mass / (mass - negative)
    out = np.empty((P, M)) if clip else rho
    f = np.empty((P, M))
    slope = np.empty(P)
    bdf2 = rho_prev.shape[0] == P
    c0 = 1.0 - ratio * ratio
    c1 = ratio * ratio
    c2 = h * (1.0 + ratio)
    inv_kappa = 1.0 / kappa
    for p in range(P):
        rp, rhsp, np_, fnp, wp, fp, op = rho[p], rhs[p], rho_n[p], f_n[p], weights[p], f[p], out[p]
        pp = rho_prev[p] if bdf2 else rho_n[p]
        scale = factor[p]
        deviation = 0.0
        raw_deviation = 0.0
        size = 0.0
        raw_size = 0.0
        readout = 0.0
        moment = 0.0
        for i in range(M):
            raw = rp[i]
            value = raw
            if clip:
                value = max(raw, 0.0) * scale
                op[i] = value
            fi = (value - rhsp[i]) * inv_kappa
            fp[i] = fi
            readout += wp[i] * fi
            moment += wp[i] * value
            if bdf2:
                predicted = np_[i] * c0 + pp[i] * c1 + fnp[i] * c2
            else:
                predicted = np_[i] + fnp[i] * h
            deviation += abs(value - predicted) * widths[i]
            raw_deviation += abs(raw - predicted) * widths[i]
            size += abs(value) * widths[i]
            raw_size += abs(raw) * widths[i]
        slope[p] = readout
        sums[0, p] = deviation
        sums[1, p] = size
        sums[5, p] = moment
        sums[6, p] = raw_deviation
        sums[7, p] = raw_size
    return out, f, slope, sums


@numba.njit(**_JIT)
def combine(x, cx, y, cy):
    """``cx·x + cy·y`` in one pass."""
    out = np.empty_like(x)
    P, M = x.shape
    for p in range(P):
        for i in range(M):
            out[p, i] = x[p, i] * cx + y[p, i] * cy
    return out


def _workspace(workspace: dict[str, Any] | None, P: int, M: int) -> tuple[np.ndarray, ...]:
    """Scratch ``(a/π, b/π, B' then ∂(w·ρ)/∂δ, v, block)`` kept in the caller's dict."""
    work = workspace if workspace is not None else {}
    if work.get("numba_shape") != (P, M):
        E = M - 1
        work["numba_shape"] = (P, M)
        work["numba_work"] = (np.empty((P, E)), np.empty((P, E)), np.empty((P, E)),
                              np.empty((P, M)), np.empty((4, BLOCK)))
    return work["numba_work"]


_NO_MOMENTS = np.empty(0)


def solve_call(delta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
               weights: np.ndarray, kappa: float, rhs: np.ndarray,
               workspace: dict[str, Any] | None = None) -> Any:
    """Stage solve for given ``δ``; the returned factors hold what :func:`jacobian_call` needs."""
    delta = np.ascontiguousarray(delta, dtype=float)
    rhs = np.ascontiguousarray(rhs, dtype=float)
    P, M = rhs.shape
    work = _workspace(workspace, P, M)
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
                  _workspace(workspace, P, M))


STAGE_PIECES = {"solve": solve_call, "jacobian": jacobian_call, "newton": newton_call,
                "finish": finish_step, "combine": combine}
"""The compiled pieces of a :class:`solvers.kernels.StageKernel` (assembled there, so that this
module imports nothing from the package)."""
