"""The numba twin of :mod:`solvers.kernels` (imported only when numba is installed).

Same arrays, same algorithm (subtraction-free pivots from the reduced column sums, Thomas
substitutions, adjoint solve for the Jacobian); compiled once and cached on disk.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from solvers.kernels import StageKernel


@numba.njit(cache=True)
def bernoulli_pair(delta, em, scale, kappa, a, b):  # noqa: ANN001, ANN202
    """``a = κ s B(δ)``, ``b = κ s B(−δ)`` from ``em = expm1(−|δ|)`` (no cancellation)."""
    for e in range(delta.size):
        z = delta[e]
        if abs(z) < 1e-3:
            z2 = z * z
            even = 1.0 + z2 / 12.0 - z2 * z2 / 720.0
            bp, bm = even - z / 2.0, even + z / 2.0
        else:
            big = abs(z) / (-em[e])  # B(−|z|)
            small = big * (1.0 + em[e])  # B(|z|) = B(−|z|) e^{−|z|}
            bp, bm = (small, big) if z > 0.0 else (big, small)
        a[e] = kappa * scale[e] * bp
        b[e] = kappa * scale[e] * bm


@numba.njit(cache=True)
def inverse_pivots(widths, a, b, inverse):  # noqa: ANN001, ANN202
    """``1/(S_i + a_i)`` with the reduced column sums ``S = num/den`` of schur_pivots,
    carried as a non-negative linear recurrence (no division on the dependency chain)."""
    M = widths.size
    num = widths[0]
    den = 1.0
    inverse[0] = 1.0 / (num + a[0])
    for i in range(1, M - 1):
        ai = a[i - 1]
        following = (widths[i] + b[i - 1]) * num + widths[i] * ai * den
        den = num + ai * den
        num = following
        if num > 1e200 or num < 1e-200:
            den /= num
            num = 1.0
        inverse[i] = den / (num + a[i] * den)
    ai = a[M - 2]
    inverse[M - 1] = (num + ai * den) / ((widths[M - 1] + b[M - 2]) * num
                                         + widths[M - 1] * ai * den)


@numba.njit(cache=True)
def substitute(widths, rhs, a, b, inverse, rho):  # noqa: ANN001, ANN202
    M = widths.size
    r = widths[0] * rhs[0]
    rho[0] = r
    for i in range(1, M):
        r = widths[i] * rhs[i] + a[i - 1] * inverse[i - 1] * r
        rho[i] = r
    x = rho[M - 1] * inverse[M - 1]
    rho[M - 1] = x
    for i in range(M - 2, -1, -1):
        x = (rho[i] + b[i] * x) * inverse[i]
        rho[i] = x


@numba.njit(cache=True)
def solve(delta, em, scale, widths, weights, kappa, rhs, a, b, inverse):  # noqa: ANN001, ANN202
    P, M = rhs.shape
    rho = np.empty((P, M))
    readout = np.empty(P)
    magnitude = np.empty(P)
    for p in range(P):
        # h-scaled rows: diag h_i + a_i + b_{i-1}, off-diagonals −b_i (upper), −a_{i-1}
        bernoulli_pair(delta[p], em[p], scale[p], kappa, a[p], b[p])
        inverse_pivots(widths, a[p], b[p], inverse[p])
        substitute(widths, rhs[p], a[p], b[p], inverse[p], rho[p])
        total = 0.0
        absolute = 0.0
        for i in range(M):
            total += weights[p, i] * rho[p, i]
            absolute += abs(weights[p, i]) * abs(rho[p, i])
        readout[p] = total
        magnitude[p] = absolute
    return rho, readout, magnitude, (delta, a, b, inverse)


@numba.njit(cache=True)
def jacobian(factors, ddelta, scale, widths, weights, kappa, rho):  # noqa: ANN001, ANN202
    delta, a, b, inverse = factors
    P, M = rho.shape
    nj = ddelta.shape[1]
    jac = np.zeros((P, nj))
    y = np.empty(M)
    for p in range(P):
        # transposed solve with the same factors: U^T then L^T; A^T (h y) = w
        v = weights[p, 0] * inverse[p, 0]
        y[0] = v
        for i in range(1, M):
            v = (weights[p, i] + b[p, i - 1] * v) * inverse[p, i]
            y[i] = v
        for i in range(M - 2, -1, -1):
            y[i] = y[i] + a[p, i] * inverse[p, i] * y[i + 1]
        for e in range(M - 1):
            z = delta[p, e]
            if abs(z) < 1e-3:
                der = -0.5 + z / 6.0 - z * z * z / 180.0
            else:  # B'(z) = B(z)(1 − B(−z))/z, with B(±z) = (a, b)/(κ s)
                unit = kappa * scale[p, e]
                der = a[p, e] / unit * (1.0 - b[p, e] / unit) / z
            dj = scale[p, e] * (der * rho[p, e] - (der + 1.0) * rho[p, e + 1])
            lever = kappa * dj * (y[e + 1] - y[e])
            for j in range(nj):
                jac[p, j] += ddelta[p, j, e] * lever
    return jac


def solve_call(delta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
               weights: np.ndarray, kappa: float, rhs: np.ndarray,
               workspace: dict[str, Any] | None = None) -> Any:
    """Stage solve; ``workspace`` (a dict owned by the caller) keeps the factor arrays between
    calls, so the factors returned by one call are valid until the next call with it."""
    delta = np.ascontiguousarray(delta, dtype=float)
    shape = delta.shape
    work = workspace if workspace is not None else {}
    if work.get("shape") != shape:
        work.update(shape=shape, em=np.empty(shape), a=np.empty(shape), b=np.empty(shape),
                    inverse=np.empty((shape[0], shape[1] + 1)))
    em = work["em"]
    np.abs(delta, out=em)
    np.negative(em, out=em)
    np.expm1(em, out=em)
    return solve(delta, em, np.ascontiguousarray(scale, dtype=float),
                 np.ascontiguousarray(widths, dtype=float),
                 np.ascontiguousarray(weights, dtype=float), float(kappa),
                 np.ascontiguousarray(rhs, dtype=float), work["a"], work["b"], work["inverse"])


def jacobian_call(factors: Any, ddelta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                  weights: np.ndarray, kappa: float, rho: np.ndarray) -> np.ndarray:
    return jacobian(factors, np.ascontiguousarray(ddelta, dtype=float),
                    np.ascontiguousarray(scale, dtype=float),
                    np.ascontiguousarray(widths, dtype=float),
                    np.ascontiguousarray(weights, dtype=float), float(kappa), rho)


STAGE_NUMBA = StageKernel("numba", solve_call, jacobian_call)
