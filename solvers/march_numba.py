r"""The compiled time loop on a fixed grid: the twin of :func:`solvers.stepping.march`.

For a stage problem with a constant affine coupling ``δ = base + Σ_q m_q slopes_q`` (the native
:func:`solvers.solve` without time-dependent inputs) every step is the one of
:func:`solvers.stepping.take_step` — BDF2 right-hand side (:func:`~solvers.kernels_numba_step.
combine_into`), moment predictor, compiled Newton with continuation in ``κ``
(:func:`solvers.implicit.solve_stage`), fused tail (:func:`~solvers.kernels_numba_step.
finish_into`), positivity limiting or backward-Euler fallback — and the step sizes follow
:class:`solvers.stepping.Controller` and its :func:`~solvers.stepping.ladder`, all with the
constants of :class:`solvers.stepping.StepRules` handed in as ``rules``. Every floating-point
operation is the one the Python loop performs, in the same order (compiled without fast-math
contraction), so both engines take the same steps, count the same and agree to round-off
(``tests/solvers/test_march_engines.py``). The Python front is :mod:`solvers.march_compiled`.
New densities, derivatives and right-hand sides are written into a pool of arrays allocated once
(:func:`buffers`), not allocated per step (fresh arrays of 16 MB at 10⁶ cells cost page faults).

``rules`` (float64 array): ``[safety, shrink, growth, ladder_steps, step_floor, clip_slack,
predictor_trust]``. ``counters`` (int64): ``[steps, rejected, newton, fallbacks, clips]``.
``clock`` (float64): ``[t, t_prev, h, rejected_last, dt_min, dt_max, has_prev]``.
Status codes returned by :func:`run`: :data:`OK`, :data:`STAGE_FAILED` (fixed ``dt``),
:data:`UNDERFLOW`, :data:`BUDGET`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from solvers.kernels_numba_newton import newton
from solvers.kernels_numba_step import combine_into, finish_into

OK, STAGE_FAILED, UNDERFLOW, BUDGET = 0, 1, 2, 3

_EXACT = dict(cache=True, error_model="numpy")
"""No fast-math: each operation rounded as numpy rounds it (the twin takes the same steps)."""

MAX_DEPTH = 40
"""Levels of ``κ`` halving of :func:`solvers.implicit.solve_stage`."""


@numba.njit(**_EXACT)
def ladder(h, steps):
    """``h`` rounded down to ``2^{k/steps}`` (:func:`solvers.stepping.ladder`)."""
    if not (h > 0 and h < np.inf):
        return h
    k = math.floor(steps * math.log2(h))
    if 2.0 ** ((k + 1) / steps) <= h:
        k += 1
    elif 2.0 ** (k / steps) > h:
        k -= 1
    return 2.0 ** (k / steps)


@numba.njit(**_EXACT)
def next_step(h, error, order, accepted, rejected_last, rules):
    """:meth:`solvers.stepping.Controller.next_step` (Python's two-argument min/max rules)."""
    limit = 1.0 if (rejected_last or not accepted) else rules[2]
    if error == 0:
        factor = limit
    else:
        x = rules[0] * error ** (-1.0 / (order + 1))
        y = x if x > rules[1] else rules[1]
        factor = y if y < limit else limit
    return ladder(h * factor, rules[3])


@numba.njit(**_EXACT)
def stage(base, slopes, scale, widths, weights, kappa, rhs, t, m, slope, has_prev, t_prev,
          m_prev, h, max_iter, rtol, trust, work, buffers):
    """The stage with the moment predictor as its first guess (``_stage`` of
    :mod:`solvers.stepping`), retried from ``m`` if that fails; each attempt is Newton from its
    start and, on failure, first a solve with ``κ/2^k`` (smallest ``k`` that converges,
    ``k ≤ MAX_DEPTH``) and the climb back (:func:`solvers.implicit.solve_stage`, written out
    here: one compiled level less). ``buffers``: the two (P, M) arrays of
    :func:`~solvers.kernels_numba_newton.newton`. Returns ``(converged, rho, m, iterations)``."""
    P = m.size
    change = np.empty(P)
    small = True
    for p in range(P):
        c = h * slope[p]
        if has_prev:
            h1 = t - t_prev
            q = h / h1
            c = c + (m_prev[p] - m[p] + slope[p] * h1) * (q * q)
        change[p] = c
        if not (abs(c) <= trust * (abs(m[p]) + 1e-12)):
            small = False
    a, b = buffers
    start = m + change if small else m.copy()
    total = 0
    for attempt in range(2 if small else 1):
        if attempt == 1:
            start = m.copy()
        rho, mm, its, ok, _ = newton(base, slopes, scale, widths, weights, kappa, rhs, start,
                                     max_iter, rtol, work, a, b)
        total += its
        level = 0
        while not ok and level < MAX_DEPTH:
            level += 1
            rho, mm, its, ok, _ = newton(base, slopes, scale, widths, weights,
                                         kappa / 2.0 ** level, rhs, start, max_iter, rtol, work,
                                         a, b)
            total += its
        j = level - 1
        while ok and j >= 0:  # climb back from κ/2^level
            rho, mm, its, ok, _ = newton(base, slopes, scale, widths, weights, kappa / 2.0 ** j,
                                         rhs, mm, max_iter, rtol, work, a, b)
            total += its
            j -= 1
        if ok:
            break
    return ok, rho, mm, total


@numba.njit(**_EXACT)
def _find(pool, first, count, array):
    """Index of the buffer among ``pool[first:first + count]`` that is ``array`` (−1: none)."""
    for k in range(first, first + count):
        if pool[k].ctypes.data == array.ctypes.data:
            return k
    return -1


@numba.njit(**_EXACT)
def buffers(pool, rho, rho_prev, f):
    """Arrays for the next step from ``pool`` (7, P, M), none holding the state ``ρ_n``,
    ``ρ_{n−1}`` or ``f_n``: ``pool[0:4]`` the densities (two for Newton's current and trial
    points, the others hold ``ρ_n`` and ``ρ_{n−1}`` once they come from the loop),
    ``pool[4:6]`` the derivative ``f`` (alternating), ``pool[6]`` the BDF2 right-hand side.
    Returns ``((a, b), f_out, rhs_out)``."""
    taken_rho, taken_prev = _find(pool, 0, 4, rho), _find(pool, 0, 4, rho_prev)
    a = b = -1
    for k in range(4):
        if k != taken_rho and k != taken_prev:
            if a < 0:
                a = k
            elif b < 0:
                b = k
    f_slot = 5 if _find(pool, 4, 2, f) == 4 else 4
    return (pool[a], pool[b]), pool[f_slot], pool[6]


@numba.njit(**_EXACT)
def take_step(base, slopes, scale, widths, weights, t, rho, m, f, slope, has_prev, t_prev,
              rho_prev, m_prev, h, bdf2, rtol, atol, max_iter, moment_rtol, rules, work, pool):
    """One step (:func:`solvers.stepping.take_step`). Returns ``(ok, rho, m, f, slope, norm,
    order, newton, fallback, clipped)``; ``ok`` False when a Newton solve failed. The new
    arrays are taken from ``pool`` (:func:`buffers`)."""
    use_bdf2 = bdf2 and has_prev
    its = 0
    fallback = False
    clipped = False
    P = m.size
    error = np.empty(P)
    sums = np.empty((8, P))
    new_rho, new_f, new_slope, new_m = rho, f, slope, m
    stage_buffers, f_out, rhs_out = buffers(pool, rho, rho_prev, f)
    if use_bdf2:
        h1 = t - t_prev
        ratio = h / h1
        kappa = h * (h + h1) / (2 * h + h1)
        rhs = combine_into(rhs_out, rho, kappa * (h + h1) / (h * h1), rho_prev,
                           -(kappa * h / (h1 * (h + h1))))
        ok, srho, sm, its = stage(base, slopes, scale, widths, weights, kappa, rhs, t, m, slope,
                                  has_prev, t_prev, m_prev, h, max_iter, moment_rtol, rules[6],
                                  work, stage_buffers)
        if not ok:
            return False, rho, m, f, slope, np.inf, 2, its, False, False
        new_rho, new_f, new_slope, sums = finish_into(srho, rhs, kappa, rho, f, rho_prev, ratio,
                                                      h, weights, widths, f_out)
        new_m = sm
        negative = False
        for p in range(P):
            if sums[2, p] < 0:
                negative = True
        if negative:
            factor = (h + h1) / (3 * h + 2 * h1)
            allowed = True
            for p in range(P):
                limit = factor * sums[6, p] + rules[5] * (atol + rtol * sums[7, p])
                if -sums[4, p] > limit or sums[3, p] <= 0:
                    allowed = False
            if not allowed:
                use_bdf2 = False
                fallback = True
            else:
                clipped = True
                new_m = sums[5].copy()
        if use_bdf2:
            for p in range(P):
                error[p] = sums[0, p] * ((h + h1) / (3 * h + 2 * h1))
    if not use_bdf2:
        ok, srho, sm, extra = stage(base, slopes, scale, widths, weights, h, rho, t, m, slope,
                                    has_prev, t_prev, m_prev, h, max_iter, moment_rtol,
                                    rules[6], work, stage_buffers)
        its += extra
        if not ok:
            return False, rho, m, f, slope, np.inf, 1, its, fallback, False
        # no history: a local (mutable) array, so finish_into is compiled once for both
        # schemes and both engines (a global array is read-only: a second specialisation)
        no_history = np.empty((0, 0))
        new_rho, new_f, new_slope, sums = finish_into(srho, rho, h, rho, f, no_history, 0.0, h,
                                                      weights, widths, f_out)
        new_m = sm
        for p in range(P):
            error[p] = sums[0, p] * 0.5
    norm = -np.inf
    for p in range(P):
        value = error[p] / (atol + rtol * sums[1, p])
        if value > norm or value != value:
            norm = value
    return (True, new_rho, new_m, new_f, new_slope, norm, 2 if use_bdf2 else 1, its, fallback,
            clipped)


@numba.njit(**_EXACT)
def accept(counters, clock, h_step, fallback, clipped, max_steps):
    """Counters of an accepted step of size ``h_step`` (fixed or adaptive, :func:`run`): the
    step, its positivity fallback and clip, the extreme step sizes. True when the number of
    steps exceeds ``max_steps``."""
    counters[0] += 1
    counters[3] += fallback
    counters[4] += clipped
    clock[4] = min(clock[4], h_step)
    clock[5] = max(clock[5], h_step)
    return counters[0] > max_steps


@numba.njit(**_EXACT)
def _store(frame, rho):
    """``frame[...] = rho`` for arrays of one shape, as a plain loop (the broadcasting assignment
    compiles its shape-mismatch error message: seconds of numba string code on a cold cache)."""
    P, M = rho.shape
    for p in range(P):
        for i in range(M):
            frame[p, i] = rho[p, i]


@numba.njit(**_EXACT)
def run(base, slopes, scale, widths, weights, save_at, k_start, k_stop, bdf2, dt, rtol, atol,
        max_steps, max_iter, moment_rtol, rules, work, pool, rho, m, f, slope, rho_prev, m_prev,
        clock, counters, frames):
    """March from ``save_at[k_start − 1]`` through ``save_at[k_stop − 1]`` (:func:`solvers.
    stepping.march`; ``dt ≤ 0``: adaptive), writing ``frames[k]``; the state arrays and
    ``clock``/``counters`` are updated in place, the densities of new steps written into
    ``pool`` (7, P, M) (see :func:`buffers`). Returns a status code."""
    t, t_prev, h = clock[0], clock[1], clock[2]
    rejected_last = clock[3] != 0.0
    has_prev = clock[6] != 0.0
    status = OK
    fixed = dt > 0
    for k in range(k_start, k_stop):
        target = save_at[k]
        start, j, count = t, 0, 0
        if fixed:
            count = max(1, math.ceil((target - t) / dt * (1 - 1e-12)))
        while (j < count) if fixed else (t < target):
            if fixed:  # count equal steps to the target
                j += 1
                t_next = target if j == count else start + (target - start) * j / count
                h_step = t_next - t
                lands = t_next == target
            else:  # the controller's step, not overshooting nor leaving a sliver
                remaining = target - t  # within one rung of the ladder below: land
                if h >= remaining * 2.0 ** (-1.0 / rules[3]) * (1 - 1e-12):
                    h_step = remaining
                elif h > remaining / 2:
                    h_step = remaining / 2
                else:
                    h_step = h
                lands = h_step == remaining
            ok, nr, nm_, nf, ns, norm, order, its, fb, cl = take_step(
                base, slopes, scale, widths, weights, t, rho, m, f, slope, has_prev, t_prev,
                rho_prev, m_prev, h_step, bdf2, rtol, atol, max_iter, moment_rtol, rules, work,
                pool)
            counters[2] += its
            if fixed:
                if not ok:
                    clock[2] = h_step
                    status = STAGE_FAILED
                    break
            else:
                accepted = ok and norm <= 1.0
                h = next_step(h_step, norm if ok else 1e6, order, accepted, rejected_last, rules)
                rejected_last = not accepted
                if not accepted:
                    counters[1] += 1
                    if h < rules[4] * abs(t) or h < 1e-300:
                        status = UNDERFLOW
                        break
                    continue
            t_prev, rho_prev, m_prev = t, rho, m
            t = target if lands else t + h_step
            rho, m, f, slope, has_prev = nr, nm_, nf, ns, True
            if accept(counters, clock, h_step, fb, cl, max_steps):
                status = BUDGET
                break
        if status != OK:
            break
        _store(frames[k], rho)
    clock[0], clock[1] = t, t_prev
    if status != STAGE_FAILED:
        clock[2] = h
    clock[3] = 1.0 if rejected_last else 0.0
    clock[6] = 1.0 if has_prev else 0.0
    return status, rho, m, f, slope, rho_prev, m_prev
