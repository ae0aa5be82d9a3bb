r"""Two populations in one fused sweep (numba; the paired form of
:func:`solvers.kernels_numba_sweep.sweep`).

The sweep is bound by the latency of its recurrences (pivots, forward and backward
substitutions, forward adjoint: each cell waits for the previous one), not by arithmetic.
:func:`sweep_pair` runs the recurrences of two populations ``p`` and ``q`` interleaved in the
same loops, so the processor overlaps two independent dependency chains: about half the time of
two sweeps in a row. Every operation of each population is the one of
:func:`~solvers.kernels_numba_sweep.sweep`, in the same order (same results to round-off, bit
for bit where the compiler forms the same fused multiply–adds; tested in
``tests/solvers/test_kernels_pair.py``). :func:`evaluate` pairs the
populations (``0, 1``, ``2, 3``, …; an odd last one gets the single sweep).
"""

from __future__ import annotations

import numba

from solvers.kernels_numba_bernoulli import JIT, coefficients
from solvers.kernels_numba_sweep import BLOCK, FLUSH, RESCALE_EVERY, dot, sweep


@numba.njit(**JIT)
def _block_coefficients(p, lo, hi, base, slopes, m, scale, kappa, z, ka, kb, kd, adjoint):
    """``δ = base[p] + Σ_q m_q slopes[p, q]`` on edges ``lo..hi`` into ``z``, then its
    Bernoulli coefficients (:func:`~solvers.kernels_numba_bernoulli.coefficients`)."""
    count = hi - lo
    source = base[p, lo:hi]
    for k in range(count):
        z[k] = source[k]
    for j in range(m.size):
        mj = m[j]
        row = slopes[p, j, lo:hi]
        for k in range(count):
            z[k] += mj * row[k]
    coefficients(z, count, scale[p], lo, kappa, ka, kb, kd, adjoint)


@numba.njit(**JIT)
def sweep_pair(p, q, base, slopes, m, ddelta, scale, widths, weights, kappa, rhs, rho, work,
               solve, adjoint, jac):
    """:func:`~solvers.kernels_numba_sweep.sweep` for the populations ``p ≠ q`` at once.

    Returns ``(Σ w ρ, Σ |w| |ρ|)`` of ``p``, then of ``q``; ``work[4]`` needs 8 rows.
    """
    ai_all, bi_all, d_all, y_all, block = work
    M = widths.size
    E = M - 1
    aip, bip, dp, yp, rp = ai_all[p], bi_all[p], d_all[p], y_all[p], rho[p]
    aiq, biq, dq, yq, rq = ai_all[q], bi_all[q], d_all[q], y_all[q], rho[q]
    zp, kap, kbp, kdp = block[0], block[1], block[2], block[3]
    zq, kaq, kbq, kdq = block[4], block[5], block[6], block[7]
    hp, wp, wq, rhsp, rhsq = widths, weights[p], weights[q], rhs[p], rhs[q]
    num_p = num_q = hp[0]
    den_p = den_q = 1.0
    r_p = r_q = v_p = v_q = 0.0
    la_p = lb_p = lai_p = la_q = lb_q = lai_q = 0.0
    for lo in range(0, E, BLOCK):
        hi = min(lo + BLOCK, E)
        _block_coefficients(p, lo, hi, base, slopes, m, scale, kappa, zp, kap, kbp, kdp, adjoint)
        _block_coefficients(q, lo, hi, base, slopes, m, scale, kappa, zq, kaq, kbq, kdq, adjoint)
        start = lo
        if lo == 0:  # first cell: S_0 = h_0, pivot h_0 + a_0
            ra_p = kap[0]
            ra_q = kaq[0]
            cur_p = 1.0 / (num_p + ra_p)
            cur_q = 1.0 / (num_q + ra_q)
            if solve:
                r_p = hp[0] * rhsp[0]
                r_q = hp[0] * rhsq[0]
                rp[0] = r_p * cur_p
                rq[0] = r_q * cur_q
            bip[0] = kbp[0] * cur_p
            biq[0] = kbq[0] * cur_q
            lai_p = ra_p * cur_p
            lai_q = ra_q * cur_q
            if adjoint:
                aip[0] = lai_p
                aiq[0] = lai_q
                v_p = wp[0] * cur_p
                v_q = wq[0] * cur_q
                yp[0] = v_p
                yq[0] = v_q
                dp[0] = kdp[0]
                dq[0] = kdq[0]
            la_p = ra_p
            la_q = ra_q
            lb_p = kbp[0]
            lb_q = kbq[0]
            start = 1
        for first in range(start, hi, RESCALE_EVERY):
            for i in range(first, min(first + RESCALE_EVERY, hi)):
                k = i - lo
                h = hp[i]
                ra_p = kap[k]
                rb_p = kbp[k]
                ra_q = kaq[k]
                rb_q = kbq[k]
                following_p = (h + lb_p) * num_p + h * la_p * den_p
                following_q = (h + lb_q) * num_q + h * la_q * den_q
                den_p = num_p + la_p * den_p
                den_q = num_q + la_q * den_q
                num_p = following_p
                num_q = following_q
                cur_p = den_p / (num_p + ra_p * den_p)
                cur_q = den_q / (num_q + ra_q * den_q)
                if solve:
                    r_p = h * rhsp[i] + lai_p * r_p
                    r_q = h * rhsq[i] + lai_q * r_q
                    if abs(r_p) < FLUSH:
                        r_p = 0.0
                    if abs(r_q) < FLUSH:
                        r_q = 0.0
                    rp[i] = r_p * cur_p
                    rq[i] = r_q * cur_q
                bip[i] = rb_p * cur_p
                biq[i] = rb_q * cur_q
                rai_p = ra_p * cur_p
                rai_q = ra_q * cur_q
                if adjoint:
                    aip[i] = rai_p
                    aiq[i] = rai_q
                    v_p = wp[i] * cur_p + lb_p * cur_p * v_p
                    v_q = wq[i] * cur_q + lb_q * cur_q * v_q
                    if abs(v_p) < FLUSH:
                        v_p = 0.0
                    if abs(v_q) < FLUSH:
                        v_q = 0.0
                    yp[i] = v_p
                    yq[i] = v_q
                    dp[i] = kdp[k]
                    dq[i] = kdq[k]
                la_p = ra_p
                la_q = ra_q
                lb_p = rb_p
                lb_q = rb_q
                lai_p = rai_p
                lai_q = rai_q
            den_p /= num_p
            den_q /= num_q
            num_p = 1.0
            num_q = 1.0
    # last cell (no edge to its right)
    h = hp[E]
    following_p = (h + lb_p) * num_p + h * la_p * den_p
    following_q = (h + lb_q) * num_q + h * la_q * den_q
    den_p = num_p + la_p * den_p
    den_q = num_q + la_q * den_q
    cur_p = den_p / following_p
    cur_q = den_q / following_q
    if solve:
        r_p = h * rhsp[E] + lai_p * r_p
        r_q = h * rhsq[E] + lai_q * r_q
        x_p = r_p * cur_p
        x_q = r_q * cur_q
        rp[E] = x_p
        rq[E] = x_q
    else:
        x_p = rp[E]
        x_q = rq[E]
    if adjoint:
        v_p = wp[E] * cur_p + lb_p * cur_p * v_p
        v_q = wq[E] * cur_q + lb_q * cur_q * v_q
    total_p = wp[E] * x_p
    total_q = wq[E] * x_q
    absolute_p = abs(wp[E]) * abs(x_p)
    absolute_q = abs(wq[E]) * abs(x_q)
    nd = ddelta.shape[1]
    dir_p, dir_q = ddelta[p], ddelta[q]
    few = nd <= 3  # Jacobian sums in registers, else levers stored and summed afterwards
    p0 = dir_p[0] if nd > 0 else dp
    p1 = dir_p[1] if nd > 1 else dp
    p2 = dir_p[2] if nd > 2 else dp
    q0 = dir_q[0] if nd > 0 else dq
    q1 = dir_q[1] if nd > 1 else dq
    q2 = dir_q[2] if nd > 2 else dq
    sp, sq = scale[p], scale[q]
    jp0 = jp1 = jp2 = jq0 = jq1 = jq2 = 0.0
    for i in range(E - 1, -1, -1):
        following_xp = x_p
        following_xq = x_q
        if solve:
            x_p = rp[i] + bip[i] * x_p
            x_q = rq[i] + biq[i] * x_q
            if abs(x_p) < FLUSH:
                x_p = 0.0
            if abs(x_q) < FLUSH:
                x_q = 0.0
            rp[i] = x_p
            rq[i] = x_q
        else:
            x_p = rp[i]
            x_q = rq[i]
        total_p += wp[i] * x_p
        total_q += wq[i] * x_q
        absolute_p += abs(wp[i]) * abs(x_p)
        absolute_q += abs(wq[i]) * abs(x_q)
        if adjoint:
            following_vp = v_p
            following_vq = v_q
            v_p = yp[i] + aip[i] * following_vp
            v_q = yq[i] + aiq[i] * following_vq
            if abs(v_p) < FLUSH:
                v_p = 0.0
            if abs(v_q) < FLUSH:
                v_q = 0.0
            der_p = dp[i]
            der_q = dq[i]
            flux_p = sp[i] * (der_p * x_p - (der_p + 1.0) * following_xp)
            flux_q = sq[i] * (der_q * x_q - (der_q + 1.0) * following_xq)
            lever_p = kappa * flux_p * (following_vp - v_p)  # ∂(w·ρ_p)/∂δ_{p,i}
            lever_q = kappa * flux_q * (following_vq - v_q)
            if few:
                if nd > 0:
                    jp0 += p0[i] * lever_p
                    jq0 += q0[i] * lever_q
                if nd > 1:
                    jp1 += p1[i] * lever_p
                    jq1 += q1[i] * lever_q
                if nd > 2:
                    jp2 += p2[i] * lever_p
                    jq2 += q2[i] * lever_q
            else:
                dp[i] = lever_p  # in place of B'(δ_i)
                dq[i] = lever_q
    if adjoint:
        if few:
            if nd > 0:
                jac[p, 0] += jp0
                jac[q, 0] += jq0
            if nd > 1:
                jac[p, 1] += jp1
                jac[q, 1] += jq1
            if nd > 2:
                jac[p, 2] += jp2
                jac[q, 2] += jq2
        else:
            for j in range(nd):
                jac[p, j] += dot(dir_p[j], dp, E)
                jac[q, j] += dot(dir_q[j], dq, E)
    return total_p, absolute_p, total_q, absolute_q


@numba.njit(**JIT)
def evaluate(base, slopes, m, ddelta, scale, widths, weights, kappa, rhs, rho, work, solve,
             adjoint, readout, magnitude, jac):
    """All populations, two at a time (:func:`sweep_pair`; ``work`` from
    :func:`solvers.kernels_numba.workspace_arrays`). Writes ``readout[p] = Σ w ρ`` and
    ``magnitude[p] = Σ |w| |ρ|``; with ``adjoint``, ``jac`` is overwritten."""
    if adjoint:
        jac[:, :] = 0.0
    P = rhs.shape[0]
    for p in range(0, P - 1, 2):
        total_p, absolute_p, total_q, absolute_q = sweep_pair(
            p, p + 1, base, slopes, m, ddelta, scale, widths, weights, kappa, rhs, rho, work,
            solve, adjoint, jac)
        readout[p], magnitude[p] = total_p, absolute_p
        readout[p + 1], magnitude[p + 1] = total_q, absolute_q
    if P % 2:
        readout[P - 1], magnitude[P - 1] = sweep(P - 1, base, slopes, m, ddelta, scale, widths,
                                                 weights, kappa, rhs, rho, work, solve, adjoint,
                                                 jac)
