r"""Laplace expansion of a concentrating Gibbs density near a balance point (model-independent).

For one population with stationary density ``ρ ∝ exp(-U/D)``, ``U' = -f + γ H`` and ``H`` the
field at the self-consistent moments, zoom on the balance point ``v`` (``x = v + ε y``,
``ε = γ^{-1/2}``, ``δ = ε²``). With ``H_k(δ) = ∂_x^k H(v) = H_k^{(0)} + Σ_j H_k^{(j)} δ^j``
(``H_0^{(0)} = 0`` at a balance point, ``H_1^{(0)} = a``) and ``f_k = f^{(k)}(v)``:

.. math:: -\frac{U(v+εy)-U(v)}{D} = -\frac{a y^2}{2D}
          - \frac1D \sum_k \big(H_k(ε^2)\,ε^{k-1} - f_k\,ε^{k+1}\big)\frac{y^{k+1}}{(k+1)!}.

The density is the Gaussian ``N(0, D/a)`` times ``exp(R) = Σ_i ε^i P_i(y)`` (polynomials ``P_i``),
so every moment ``E[y^j]`` is a series in ``ε`` with Gaussian moments as coefficients. The
series are exact to the order requested; odd powers of ``ε`` vanish in ``ε E[y]``,
``ε² Var[y]`` and in ``E[Ψ(v + εy)]`` (invariance under ``(y, ε) → (-y, -ε)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from asymptotics.symbols import y

Series = dict[int, sp.Expr]


def truncated_product(left: Series, right: Series, order: int) -> Series:
    """Product of two series in ``ε`` keeping powers ``<= order``."""
    out: Series = {}
    for i, a in left.items():
        for j, b in right.items():
            if i + j <= order:
                out[i + j] = sp.expand(out.get(i + j, 0) + a * b)
    return out


def reciprocal(series: Series, order: int) -> Series:
    """``1/series`` for a series with leading term 1 at power 0."""
    out: Series = {0: sp.Integer(1)}
    for n in range(1, order + 1):
        out[n] = sp.expand(-sum(series.get(k, 0) * out[n - k] for k in range(1, n + 1)))
    return out


def gaussian_moment(k: int, variance: sp.Expr) -> sp.Expr:
    """``E[y^k]`` for ``y ~ N(0, variance)``: ``(k-1)!! variance^{k/2}`` (0 for odd ``k``)."""
    if k % 2:
        return sp.Integer(0)
    return sp.factorial2(k - 1) * variance ** (k // 2)


def gaussian_expectation(poly: sp.Expr, variance: sp.Expr) -> sp.Expr:
    """``E[poly(y)]`` for ``y ~ N(0, variance)``."""
    if poly == 0:
        return sp.Integer(0)
    return sp.expand(sum(coeff * gaussian_moment(k, variance)
                         for (k,), coeff in sp.Poly(sp.expand(poly), y).terms()))


@dataclass(frozen=True)
class LocalSymbols:
    """Generic symbols of one population's local data (see the module docstring)."""

    a: sp.Symbol
    D: sp.Symbol
    h: dict[int, sp.Symbol]
    f: dict[int, sp.Symbol]
    psi: dict[int, sp.Symbol]
    dH: dict[tuple[int, int], sp.Symbol]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, eq=False)
class LocalExpansion:
    """Series in ``ε`` (dict power → coefficient) up to ``ε^{2·order}`` for one population.

    ``density[i]`` is ``P_i(y)``; ``moments[j]`` the series of ``E[y^j]``; ``mean`` of
    ``x - v = ε E[y]``; ``var`` of ``ε² Var[y]``; ``readout`` of ``E[Ψ(v + εy)]``.
    """

    order: int
    symbols: LocalSymbols
    density: Series
    moments: tuple[Series, ...]
    mean: Series
    var: Series
    readout: Series


@lru_cache(maxsize=8)
def local_expansion(order: int) -> LocalExpansion:
    """The generic Laplace expansion to ``O(γ^{-order})`` (computed once per order)."""
    N = 2 * order
    a = sp.Symbol("a", positive=True)
    D = sp.Symbol("D", positive=True)
    h = {k: sp.Symbol(f"h{k}", real=True) for k in range(2, N + 2)}
    f = {k: sp.Symbol(f"f{k}", real=True) for k in range(N)}
    psi = {k: sp.Symbol(f"psi{k}", real=True) for k in range(N + 1)}
    dH = {(k, j): sp.Symbol(f"H{k}_{j}", real=True)
          for j in range(1, order + 1) for k in range(0, N + 2) if k - 1 + 2 * j <= N}
    symbols = LocalSymbols(a=a, D=D, h=h, f=f, psi=psi, dH=dH)

    exponent: Series = {}

    def add(power: int, term: sp.Expr) -> None:
        if power <= N:
            exponent[power] = exponent.get(power, 0) - term / D

    for k in range(0, N + 2):
        base = h.get(k, 0)
        if base != 0:
            add(k - 1, base * y ** (k + 1) / sp.factorial(k + 1))
        for j in range(1, order + 1):
            if (k, j) in dH:
                add(k - 1 + 2 * j, dH[(k, j)] * y ** (k + 1) / sp.factorial(k + 1))
    for k in range(N):
        add(k + 1, -f[k] * y ** (k + 1) / sp.factorial(k + 1))
    exponent = {p: sp.expand(c) for p, c in exponent.items()}

    density: Series = {0: sp.Integer(1)}
    power: Series = {0: sp.Integer(1)}
    for n in range(1, N + 1):
        power = truncated_product(power, exponent, N)
        for p, c in power.items():
            density[p] = sp.expand(density.get(p, 0) + c / sp.factorial(n))

    variance = D / a
    raw = [{p: gaussian_expectation(y**j * c, variance) for p, c in density.items()}
           for j in range(N + 1)]
    inverse = reciprocal(raw[0], N)
    moments = tuple(truncated_product(r, inverse, N) for r in raw)

    def shift(series: Series, by: int) -> Series:
        return {p + by: c for p, c in series.items() if p + by <= N}

    mean = shift(moments[1], 1)
    second = shift(moments[2], 2)
    square = truncated_product(mean, mean, N)
    var = {p: sp.expand(second.get(p, 0) - square.get(p, 0)) for p in set(second) | set(square)}
    readout: Series = {}
    for k in range(N + 1):
        for p, c in shift(moments[k], k).items():
            readout[p] = sp.expand(readout.get(p, 0) + psi[k] * c / sp.factorial(k))
    for series in (mean, var, readout):
        for p in list(series):
            series[p] = sp.factor_terms(series[p])
            if p % 2 and series[p] != 0:
                raise ArithmeticError(f"odd power ε^{p} survived in an even series")
            if series[p] == 0:
                del series[p]
    return LocalExpansion(order=order, symbols=symbols, density=density, moments=moments,
                          mean=mean, var=var, readout=readout)
