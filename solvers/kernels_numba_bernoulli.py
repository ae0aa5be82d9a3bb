r"""Bernoulli coefficients of the Scharfetter–Gummel flux for the numba stage kernels.

``B(z) = z/(eᶻ − 1)``, ``B(−z)`` and ``B'(z)`` per edge (:func:`bernoulli_values`), with
:func:`exp_negative`, a branch-free ``exp`` accurate to one ulp standing in for libm so that the
coefficient loop (:func:`coefficients`) vectorises. Part of the compiled twin of
:mod:`solvers.kernels` (:mod:`solvers.kernels_numba`); imports nothing from the package.
"""

from __future__ import annotations

import math

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})
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


@numba.njit(inline="always", **JIT)
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


@numba.njit(inline="always", **JIT)
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


@numba.njit(**JIT)
def coefficients(z, count, scale, offset, kappa, a, b, d, derivative):
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
