r"""The compiled tail of a time step and its BDF2 right-hand side (twins of
:func:`solvers.kernels.finish_step_numpy` and :func:`solvers.kernels.combine_numpy`), writing
into arrays the caller owns (the compiled time loop reuses them: no fresh (P, M) arrays, hence
no page faults, per step).
"""

from __future__ import annotations

import numba
import numpy as np

from solvers.kernels_numba_bernoulli import JIT


@numba.njit(**JIT)
def finish_into(rho, rhs, kappa, rho_n, f_n, rho_prev, ratio, h, weights, widths, f):
    """Fused tail of a step (see :func:`solvers.kernels.finish_step_numpy`): one pass over
    ``ρ`` for its minimum, then one for the rest (:func:`_tail_nonnegative` when ``ρ ≥ 0``,
    the usual case: there ``M = Σ|ρ| h``, ``N = 0`` and the limited sums are the raw ones;
    else a pass for the masses and the general one). ``f`` (P, M, not ``f_n``) receives
    ``f = (ρ̃ − r)/κ``; returns ``(ρ̃, f, w·f, sums)``."""
    P, M = rho.shape
    sums = np.empty((8, P))
    clip = False
    for p in range(P):
        rp = rho[p]
        lowest = np.inf
        for i in range(M):
            lowest = min(lowest, rp[i])
        sums[2, p] = lowest
        if lowest < 0.0:
            clip = True
    bdf2 = rho_prev.shape[0] == P
    if not clip:
        slope = np.empty(P)
        for p in range(P):
            slope[p] = _tail_nonnegative(p, rho, rhs, rho_n, f_n, rho_prev, ratio, h, 1.0 / kappa,
                                         weights, widths, f, bdf2, sums)
        return rho, f, slope, sums
    factor = np.ones(P)
    for p in range(P):
        rp = rho[p]
        mass = 0.0
        negative = 0.0
        for i in range(M):
            value = rp[i]
            mass += value * widths[i]
            negative += min(value, 0.0) * widths[i]
        sums[3, p] = mass
        sums[4, p] = negative
        if sums[2, p] < 0.0:
            factor[p] = mass / (mass - negative)
    out = np.empty((P, M))
    slope = np.empty(P)
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


@numba.njit(**JIT)
def _tail_nonnegative(p, rho, rhs, rho_n, f_n, rho_prev, ratio, h, inv_kappa, weights, widths, f,
                      bdf2, sums):
    """The pass of :func:`finish_into` for population ``p`` when ``ρ ≥ 0`` (nothing limited):
    ``f_p``, the sums (rows 0, 1, 3–7) and the returned ``w·f_p``, four accumulators."""
    rp, rhsp, np_, fnp, wp, fp = rho[p], rhs[p], rho_n[p], f_n[p], weights[p], f[p]
    pp = rho_prev[p] if bdf2 else rho_n[p]  # predictor c0 ρ_n + c1 ρ_{n−1} + c2 f_n
    c0 = 1.0 - ratio * ratio if bdf2 else 1.0
    c1 = ratio * ratio if bdf2 else 0.0
    c2 = h * (1.0 + ratio) if bdf2 else h
    deviation = 0.0
    size = 0.0
    readout = 0.0
    moment = 0.0
    for i in range(rp.size):
        value = rp[i]
        fi = (value - rhsp[i]) * inv_kappa
        fp[i] = fi
        readout += wp[i] * fi
        moment += wp[i] * value
        predicted = np_[i] * c0 + pp[i] * c1 + fnp[i] * c2
        deviation += abs(value - predicted) * widths[i]
        size += value * widths[i]
    sums[0, p] = deviation
    sums[1, p] = size
    sums[3, p] = size
    sums[4, p] = 0.0
    sums[5, p] = moment
    sums[6, p] = deviation
    sums[7, p] = size
    return readout


@numba.njit(**JIT)
def combine_into(out, x, cx, y, cy):
    """``out = cx·x + cy·y`` in one pass; returns ``out``."""
    P, M = x.shape
    for p in range(P):
        for i in range(M):
            out[p, i] = x[p, i] * cx + y[p, i] * cy
    return out
