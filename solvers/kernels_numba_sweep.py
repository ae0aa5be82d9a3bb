r"""One fused sweep per population of a Scharfetter–Gummel stage (numba; see
:mod:`solvers.kernels_numba` for the algorithm and :mod:`solvers.kernels` for the numpy twin).

:func:`sweep` computes, block by block, ``δ = base + Σ_q m_q slopes_q``, the Bernoulli
coefficients, the subtraction-free pivots, the forward substitution and the forward adjoint,
then one backward sweep gives ``ρ``, the readouts and the Jacobian row;
:func:`solvers.kernels_numba_pair.evaluate` runs it (or its paired form) for every population.
"""

from __future__ import annotations

import numba
import numpy as np

from solvers.kernels_numba_bernoulli import JIT, coefficients

BLOCK = 1024
"""Edges per block of the fused sweep (its scratch stays in the L1/L2 caches)."""
FLUSH = 1e-300
"""Values of the substitution recurrences below this are set to zero. Where a density's tail has
underflowed, the recurrences decay by a factor close to 1 per cell on fine grids and would cross
the subnormal range (below 2.2e-308, where arithmetic is about 100× slower) over thousands of
cells; the change is below 1e-300 per cell, far under any tolerance, and keeps ``ρ ≥ 0``."""

ON, OFF = np.True_, np.False_
"""The switches ``solve``/``adjoint`` of :func:`~solvers.kernels_numba_pair.evaluate` as compiled
callers pass them: numba types numpy booleans as run-time ``bool``, so the sweeps are compiled once,
whereas the literals ``True``/``False`` would each compile a specialisation (seconds each)."""

RESCALE_EVERY = 8
"""The pivot recurrence is renormalised every this many cells (its two components change by the
pivot of each cell, a factor within 1e±38, so they stay far from under- and overflow)."""


@numba.njit(**JIT)
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
        coefficients(z, count, sp, lo, kappa, ka, kb, kd, adjoint)
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
                    if abs(r) < FLUSH:
                        r = 0.0
                    rp[i] = r * current
                bip[i] = right_b * current
                right_ai = right_a * current
                if adjoint:
                    aip[i] = right_ai
                    v = wp[i] * current + left_b * current * v
                    if abs(v) < FLUSH:
                        v = 0.0
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
            if abs(x) < FLUSH:
                x = 0.0
            rp[i] = x
        else:
            x = rp[i]
        total += wp[i] * x
        absolute += abs(wp[i]) * abs(x)
        if adjoint:
            following_v = v
            v = yp[i] + aip[i] * following_v
            if abs(v) < FLUSH:
                v = 0.0
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
                jac[p, q] += dot(directions[q], dp, E)
    return total, absolute


@numba.njit(inline="always", **JIT)
def dot(u, v, n):
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
