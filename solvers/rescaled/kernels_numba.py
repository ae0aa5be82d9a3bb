r"""The numba twins of :mod:`solvers.rescaled.kernels` (imported only when numba is installed).

Same formulas, one pass over the cells per population: :func:`assemble` computes Simpson's gap
integrals of ``f_p`` and every ``Φ_pj`` and writes ``base``, ``slopes``, ``scale`` and the
readout ``weights`` in the same loop; :func:`moments` sums mass and first moments, then the
centred second moments, of ``q`` and ``f``; :func:`follow` places the next frame from them
(per population, scalar arithmetic); :func:`carried` forms the predictor, carries it onto the
new frame and sums the deviation in one pass. Compiled once and cached on disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import register_jitable

from solvers.rescaled import paths

for _piece in (paths.ahead, paths.bdf2_slope, paths.hold, paths.saturate, paths.stiff_weight,
               paths.third, paths.third_at, paths.defect_at, paths.carried_third):
    register_jitable(_piece)
ahead, bdf2_slope, hold = paths.ahead, paths.bdf2_slope, paths.hold
saturate, third = paths.saturate, paths.third
stiff_weight, third_at, defect_at = paths.stiff_weight, paths.third_at, paths.defect_at
carried_third = paths.carried_third

_JIT = dict(cache=True, error_model="numpy")


@numba.njit(**_JIT)
def assemble(values, half, velocity, rate, gaps, squares, widths, D, coupling):
    P, J = coupling.shape
    M = widths.size
    base = np.empty((P, M - 1))
    slopes = np.empty((P, J, M - 1))
    scale = np.empty((P, M - 1))
    weights = np.empty((P, M))
    for p in range(P):
        move = half[p] * velocity[p]
        grow = half[p] * rate[p]
        inv_d = 1.0 / D[p]
        for i in range(M - 1):
            factor = gaps[i] / 6 * half[p]
            drift = (values[p, 0, 2 * i] + 4 * values[p, 0, 2 * i + 1]
                     + values[p, 0, 2 * i + 2]) * factor
            base[p, i] = (move * gaps[i] + grow * squares[i] - drift) * inv_d
            for j in range(J):
                integral = (values[p, 1 + j, 2 * i] + 4 * values[p, 1 + j, 2 * i + 1]
                            + values[p, 1 + j, 2 * i + 2]) * factor
                slopes[p, j, i] = coupling[p, j] * integral * inv_d
            scale[p, i] = D[p] / (half[p] * half[p] * gaps[i])
        for i in range(M):
            weights[p, i] = values[p, J + 1, 2 * i] * widths[i]
    return base, slopes, scale, weights


@numba.njit(**_JIT)
def moments(q, f, centres, widths):
    P, M = q.shape
    out = np.empty((5, P))
    for p in range(P):
        mass = 0.0
        first = 0.0
        rate = 0.0
        for i in range(M):
            mass += q[p, i] * widths[i]
            first += q[p, i] * centres[i] * widths[i]
            rate += f[p, i] * centres[i] * widths[i]
        zbar = first / mass
        second = 0.0
        spread = 0.0
        for i in range(M):
            u = (centres[i] - zbar) ** 2 * widths[i]
            second += q[p, i] * u
            spread += f[p, i] * u
        out[0, p] = mass
        out[1, p] = zbar
        out[2, p] = second / mass
        out[3, p] = rate / mass
        out[4, p] = spread / mass
    return out


@numba.njit(**_JIT)
def _placement(mean, std, lower, upper, a, b):
    lo, hi = max(mean - lower * std, a), min(mean + upper * std, b)
    return (lo + hi) / 2, (hi - lo) / 2


@numba.njit(**_JIT)
def _reach(side, fade, window):
    return window * (max(side, 1e-3) / window) ** fade


@numba.njit(**_JIT)
def follow(q, f, centres, widths, frame, previous, h, h1, h2, history, bdf2, window, D, a, b):
    stats = moments(q, f, centres, widths)
    P = q.shape[0]
    out = np.full((10, P), np.nan)
    carry = h2 > 0 and math.isfinite(previous[14, 0]) and third_at(h2, h1) > previous[14, 0]
    if not history:
        h1, h2 = h, 0.0
    weight = min(1.0, (h / h1) ** 2)
    old = 6 if h2 > 0 else 0
    for p in range(P):
        centre, half, velocity, rate = frame[0, p], frame[1, p], frame[2, p], frame[3, p]
        zbar, first_rate, var_rate = stats[1, p], stats[3, p], stats[4, p]
        std_z = math.sqrt(max(stats[2, p], 1e-300))
        mean, std = centre + half * zbar, half * std_z
        mean_rate = velocity + rate * zbar + half * first_rate
        std_rate = rate * std_z + half * var_rate / (2 * std_z)
        log_std, log_rate = math.log(std), std_rate / std
        log_half, log_half_rate = math.log(half), rate / half
        if history:
            mean_new = ahead(previous[old + 2, p], previous[2, p], mean, mean_rate, h2, h1, h)
            log_new = ahead(previous[old + 3, p], previous[3, p], log_std, log_rate, h2, h1, h)
            own_centre = ahead(previous[old, p], previous[0, p], centre, velocity, h2, h1, h)
            own_log = ahead(math.log(previous[old + 1, p]), math.log(previous[1, p]), log_half,
                            log_half_rate, h2, h1, h)
        else:
            mean_new, log_new = mean + h * mean_rate, log_std + h * log_rate
            own_centre, own_log = centre + h * velocity, log_half + h * log_half_rate
        mean_new = mean + saturate(mean_new - mean, window * std / 2)
        log_new = log_std + saturate(log_new - log_std, 1.0)
        fade = math.exp(-h * D[p] / std**2)
        lower = _reach((mean - centre + half) / std, fade, window)
        upper = _reach((centre + half - mean) / std, fade, window)
        target, wide = _placement(mean_new, math.exp(log_new), lower, upper, a, b)
        new_centre = own_centre + weight * (target - own_centre)
        new_half = math.exp(own_log + weight * (math.log(wide) - own_log))
        lo, hi = max(new_centre - new_half, a), min(new_centre + new_half, b)
        peak = q[p].max()
        lo = hold(centre - half, lo, q[p, 0] / peak, 1.0)
        hi = hold(centre + half, hi, q[p, -1] / peak, -1.0)
        new_centre, new_half = (lo + hi) / 2, (hi - lo) / 2
        if history and bdf2:
            new_velocity = bdf2_slope(previous[0, p], centre, new_centre, h1, h)
            new_log_rate = bdf2_slope(math.log(previous[1, p]), log_half, math.log(new_half),
                                      h1, h)
            if h2 > 0:
                skew = (centre - mean) / std
                path = third(previous[10, p] + skew * math.exp(previous[9, p]) * previous[11, p],
                             previous[4, p] + skew * math.exp(previous[3, p]) * previous[5, p],
                             mean_rate + skew * std * log_rate, h2, h1)
                spread = third(previous[11, p], previous[5, p], log_rate, h2, h1)
                out[8, p], out[9, p] = path, spread
                if carry:
                    at, to = third_at(h2, h1), defect_at(h, h1)
                    path = carried_third(path, previous[12, p], at, previous[14, p], to)
                    spread = carried_third(spread, previous[13, p], at, previous[14, p], to)
                if centre - half > a and centre + half < b:
                    lag = h * (h + h1) / 6 * stiff_weight(h, h1, D[p] / std**2)
                    new_velocity += lag * path
                    new_log_rate += lag * spread
            new_rate = new_half * new_log_rate
        else:
            new_velocity = (new_centre - centre) / h
            new_rate = new_half * (math.log(new_half) - log_half) / h
        out[0, p], out[1, p], out[2, p], out[3, p] = new_centre, new_half, new_velocity, new_rate
        out[4, p], out[5, p], out[6, p], out[7, p] = mean, log_std, mean_rate, log_rate
    return out


@numba.njit(**_JIT)
def carried(q, f, q_prev, q_new, frame, previous, new, h, h1, h2, centres, widths):
    P, M = q.shape
    history = q_prev.shape[0] == P
    bend = (h / h1) ** 2 if history else 0.0
    a, b, c = 1.0 - bend, bend, h * (1.0 + h / h1)
    p = np.empty(M)
    out = np.zeros(P)
    dz = widths[0]
    for k in range(P):
        centre, half, velocity, rate = frame[0, k], frame[1, k], frame[2, k], frame[3, k]
        log_half, log_rate = math.log(half), rate / half
        at, log_span = centre + h * velocity, log_half + h * log_rate
        if history:
            old = 2 if h2 > 0 else 0
            at = ahead(previous[old, k], previous[0, k], centre, velocity, h2, h1, h)
            log_span = ahead(math.log(previous[old + 1, k]), math.log(previous[1, k]), log_half,
                             log_rate, h2, h1, h)
        span = math.exp(log_half + saturate(log_span - log_half, 1.0))
        jacobian = new[1, k] / span
        shift0, shift1 = (new[0, k] - at) / span, jacobian - 1.0
        for i in range(M):
            if history:
                p[i] = q[k, i] * a + q_prev[k, i] * b + f[k, i] * c
            else:
                p[i] = q[k, i] + h * f[k, i]
        total = 0.0
        for i in range(M):
            if i == 0:
                slope, curve = (p[1] - p[0]) / dz, 0.0
            elif i == M - 1:
                slope, curve = (p[M - 1] - p[M - 2]) / dz, 0.0
            else:
                slope = (p[i + 1] - p[i - 1]) / (2 * dz)
                curve = (p[i + 1] - 2 * p[i] + p[i - 1]) / (dz * dz)
            shift = shift0 + shift1 * centres[i]
            value = jacobian * (p[i] + shift * (slope + 0.5 * shift * curve))
            total += abs(q_new[k, i] - value) * widths[i]
        out[k] = total
    return out


@numba.njit(**_JIT)
def _bernoulli(u):
    if abs(u) < 1e-8:
        return 1.0 - u / 2
    if u > 700.0:
        return 0.0
    return u / math.expm1(u)


@numba.njit(**_JIT)
def smearing(q, base, slopes, m, half, D, centres, widths):
    """Rows ``(growth, κ, cells per std)`` (3, P): the twin of
    :func:`solvers.rescaled.smearing.rates`, two passes per population."""
    P, M = q.shape
    out = np.empty((3, P))
    widest = widths.max()
    for p in range(P):
        mass = 0.0
        first = 0.0
        for i in range(M):
            mass += q[p, i] * widths[i]
            first += q[p, i] * centres[i] * widths[i]
        zbar = first / mass
        var_z = 0.0
        for i in range(M):
            var_z += q[p, i] * (centres[i] - zbar) ** 2 * widths[i]
        var_z /= mass
        diffusion = D[p] / (half[p] * half[p])
        excess = 0.0
        norm = 0.0
        zsum = 0.0
        bsum = 0.0
        zz = 0.0
        zb = 0.0
        for i in range(M - 1):
            gap = centres[i + 1] - centres[i]
            d = base[p, i]
            for k in range(m.size):
                d += slopes[p, k, i] * m[k]
            b = _bernoulli(d)  # B(−d) = B(d) + d and (|d|/2)coth(|d|/2) = B(|d|) + |d|/2
            forward = b * q[p, i]
            backward = (b + d) * q[p, i + 1]
            total = forward + backward
            share = abs(forward - backward) / total if total > 0 else 0.0
            weight = (q[p, i] + q[p, i + 1]) / 2 * gap / mass
            spurious = d * d / 12 if abs(d) < 2e-3 else min(b, b + d) + abs(d) / 2 - 1.0
            excess += spurious * share * weight
            face = (centres[i] + centres[i + 1]) / 2
            drift = -diffusion * d / gap
            norm += weight
            zsum += weight * face
            bsum += weight * drift
            zz += weight * face * face
            zb += weight * face * drift
        zmean, bmean = zsum / norm, bsum / norm
        covariance = zb / norm - zmean * bmean
        spread = zz / norm - zmean * zmean
        out[0, p] = 2 * diffusion * excess / var_z
        out[1, p] = max(-covariance / spread, 0.0)
        out[2, p] = math.sqrt(var_z) / widest
    return out
