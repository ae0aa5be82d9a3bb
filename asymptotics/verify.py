r"""Substitute-back verification: the order of the residual of each derivation.

- :class:`~asymptotics.hopf_cole.HopfCole`: ``ρ = exp(γ u)`` substituted into the mean-field PDE
  minus ``γ ρ`` times the ``u`` equation must simplify to zero, and the well must solve the
  stationary Hamilton–Jacobi equation exactly (order ``oo``).
- :class:`~asymptotics.rescaled.RescaledEquation`: ``ρ(t, x) = ε^{-1} q(t, (x - c(t))/ε)`` with
  ``γ = ε^{-2}`` substituted into the PDE (chain rule by SymPy, model expressions untouched)
  minus the truncated series; the residual, expanded in ``ε``, starts at ``ε^{order+1}`` (``oo``
  when the Taylor series of ``f`` and ``h`` terminate before the truncation).
- :class:`~asymptotics.expansion.StationaryExpansion`: the expanded local density
  ``q = N(0, D/A)·Σ_i ε^i P_i(y)`` substituted into the zero-flux condition
  ``ε[(f - γ h) q - D ε^{-1} q_y] = 0`` (residual ``O(ε^{2n+1})``), and the moments recomputed
  from that density by direct Gaussian integration against the claimed series (self-consistency
  ``m_q = E[Ψ_q]``, mean and variance: residual ``O(ε^{2n+2}) = O(γ^{-(n+1)})``). The local data
  (Taylor coefficients at ``v``) are kept generic by drawing them as seeded random rationals,
  including the coefficients the truncation drops: exact arithmetic, and a coefficient that
  vanishes at a random point vanishes identically with probability one (Schwartz–Zippel).

Orders are powers of ``ε = γ^{-1/2}``; ``Verification.in_gamma`` halves them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy as sp

from asymptotics.expansion import StationaryExpansion, specialise
from asymptotics.hopf_cole import HopfCole
from asymptotics.laplace import local_expansion
from asymptotics.rescaled import RescaledEquation
from asymptotics.symbols import epsilon, gamma, t, x, y
from meanfield.errors import bad_type, check_int
from meanfield.model import exact


@dataclass(frozen=True)
class Verification:
    """Residual orders (powers of ``ε``) per checked component and the orders claimed for them."""

    subject: str
    orders: dict[str, Any]
    claimed: dict[str, Any]

    @property
    def order(self) -> Any:
        """The smallest residual order over all components."""
        return min(self.orders.values())

    @property
    def in_gamma(self) -> dict[str, Any]:
        """Residual orders as powers of ``1/γ``."""
        return {k: v / 2 for k, v in self.orders.items()}

    @property
    def ok(self) -> bool:
        """Every residual is at least of the claimed order."""
        return all(self.orders[k] >= self.claimed[k] for k in self.orders)

    def _repr_latex_(self) -> str:
        rows = r"\\ ".join(rf"\text{{{k}}} & O(\varepsilon^{{{sp.latex(v)}}})"
                           for k, v in self.orders.items())
        return rf"$\begin{{array}}{{ll}}{rows}\end{{array}}$"


def lowest_power(expr: sp.Expr, variable: sp.Symbol, shift: int = 0) -> Any:
    """Lowest power of ``variable`` with a non-zero coefficient in a Laurent polynomial (``oo`` if 0)."""
    expr = sp.expand(expr * variable**shift)
    if expr == 0:
        return sp.oo
    poly = sp.Poly(expr, variable)
    powers = [k for (k,), c in poly.terms() if sp.expand(c) != 0]
    return (min(powers) - shift) if powers else sp.oo


def rationalize(expr: sp.Expr) -> sp.Expr:
    """Floats in ``expr`` replaced by the rationals they print as (exact cancellation)."""
    return expr.xreplace({f: exact(float(f)) for f in expr.atoms(sp.Float)})


def _verify_hopf_cole(hc: HopfCole) -> Verification:
    orders, claimed = {}, {}
    for p, name in enumerate(hc.model.names):
        u = hc.u[p]
        rho = sp.exp(gamma * u)
        residual = hc.mean_field.residual(p, rho) - gamma * rho * (sp.diff(u, t) - hc.rhs(p))
        residual = sp.simplify(rationalize(sp.expand(residual * sp.exp(-gamma * u))))
        orders[f"transform[{name}]"] = sp.oo if residual == 0 else 0
        claimed[f"transform[{name}]"] = sp.oo
        well = hc.well[p]
        if well is not None:
            D, h = hc.mean_field.diffusion[p], hc.mean_field.field[p]
            hj = sp.simplify(rationalize(D * sp.diff(well, x) ** 2 + h * sp.diff(well, x)))
            at_zero = sp.simplify(rationalize(well.subs(x, hc.zeros[p])))
            orders[f"well[{name}]"] = sp.oo if hj == 0 and at_zero == 0 else 0
            claimed[f"well[{name}]"] = sp.oo
    return Verification("hopf_cole", orders, claimed)


def _verify_rescaled(eq: RescaledEquation) -> Verification:
    model, order = eq.model, eq.order
    orders, claimed = {}, {}
    q0, q1, q2, qt = sp.symbols("Q0 Q1 Q2 Qt")
    c_sym, dc_sym = sp.Symbol("C", real=True), sp.Symbol("dC", real=True)
    for p, name in enumerate(model.names):
        q, c = eq.q[p], eq.c[p]
        q_fn = q.func
        rho = q_fn(t, (x - c) / epsilon) / epsilon
        f, h = model.populations[p].drift, model.field(p)
        D = _exact_diffusion(model, p)
        pde = sp.diff(rho, t) + sp.diff((f - h / epsilon**2) * rho, x) - D * sp.diff(rho, x, 2)
        exact_eq = (epsilon * pde).subs(x, c + epsilon * y).doit()
        # truncated series, with the h_0 term of the equation for c restored
        truncated = sp.diff(q, t) - sum((epsilon**k * v for k, v in eq.terms[p].items()),
                                        sp.Integer(0))
        truncated -= epsilon**-3 * sp.diff(h.subs(x, c) * q, y)
        truncated = truncated.subs(eq.explicit_coefficients(p)).doit()
        residual = exact_eq - truncated
        replace = {sp.Derivative(q, (y, 2)): q2, sp.Derivative(q, y): q1, sp.Derivative(q, t): qt}
        residual = residual.subs(replace).subs(q, q0).subs(sp.Derivative(c, t), dc_sym).subs(c, c_sym)
        residual = sp.expand(rationalize(residual) * epsilon**3)
        orders[f"equation[{name}]"] = _series_order(residual, epsilon, order + 5) - 3
        claimed[f"equation[{name}]"] = order + 1
    return Verification("rescaled_equation", orders, claimed)


def _series_order(expr: sp.Expr, variable: sp.Symbol, terms: int) -> Any:
    """Lowest power of ``variable`` in the expansion of ``expr`` at 0 (``oo`` if none).

    Non-polynomial pieces (functions of ``variable``) are replaced by their Taylor polynomials
    with ``terms`` terms, innermost first; powers below ``terms`` are then exact. When no
    coefficient below ``terms`` survives, ``oo`` is returned if nothing was truncated (the
    residual is identically zero), otherwise the expansion is redone with more terms.
    """
    while True:
        functions = [e for e in expr.atoms(sp.Function) if e.has(variable)]
        poly = sp.expand(_taylor(expr, variable, terms))
        found = lowest_power(poly, variable)
        if found != sp.oo and found < terms:
            return found
        if not functions:
            return found
        if terms > 24:
            return terms
        terms *= 2


def _taylor(expr: sp.Expr, variable: sp.Symbol, terms: int) -> sp.Expr:
    """Replace every function of ``variable`` in ``expr`` by its Taylor polynomial at 0."""
    return expr.replace(lambda e: isinstance(e, sp.Function) and e.has(variable),
                        lambda e: sp.series(e, variable, 0, terms).removeO())


def _exact_diffusion(model: Any, p: int) -> sp.Expr:
    return exact(model.populations[p].sigma) ** 2 / 2


@lru_cache(maxsize=64)
def _standard_moment(k: int) -> sp.Expr:
    """``E[z^k]`` for a standard normal ``z``, by direct integration."""
    z = sp.Symbol("z", real=True)
    return sp.integrate(z**k * sp.exp(-z**2 / 2), (z, -sp.oo, sp.oo)) / sp.sqrt(2 * sp.pi)


def _expect(poly: sp.Expr, variance: sp.Expr) -> sp.Expr:
    """``E[poly(y)]``, ``y ~ N(0, variance)``, by direct integration of each power."""
    poly = sp.expand(poly)
    if poly == 0:
        return sp.Integer(0)
    total = sp.Integer(0)
    for (k,), coeff in sp.Poly(poly, y).terms():
        total += coeff * _standard_moment(k) * sp.sqrt(variance) ** k
    return sp.expand(total)


def _divide(numerator: sp.Expr, denominator: sp.Expr, order: int) -> sp.Expr:
    """Taylor polynomial in ``ε`` to ``ε^order`` of ``numerator/denominator`` (polynomials in ``ε``)."""
    a = [sp.expand(numerator).coeff(epsilon, k) for k in range(order + 1)]
    d = [sp.expand(denominator).coeff(epsilon, k) for k in range(order + 1)]
    if d[0] == 0:
        raise ZeroDivisionError("the normalisation of the expanded density vanishes at ε = 0")
    out: list[sp.Expr] = []
    for n in range(order + 1):
        out.append(sp.expand((a[n] - sum((d[k] * out[n - k] for k in range(1, n + 1)),
                                         sp.Integer(0))) / d[0]))
    return sum((c * epsilon**k for k, c in enumerate(out)), sp.Integer(0))


def _verify_expansion(expansion: StationaryExpansion, seed: int) -> Verification:
    model, n = expansion.model, expansion.order
    P, N = model.P, 2 * n
    derivation = expansion.derivation
    data = derivation.data
    rng = random.Random(seed)

    def draw(positive: bool = False) -> sp.Rational:
        value = sp.Rational(rng.randint(1, 40), 20) if positive else sp.Rational(rng.randint(-40, 40), 20)
        return value if value != 0 else sp.Rational(1, 7)

    corrections = derivation.corrections
    for _attempt in range(20):  # redraw on the measure-zero set where a symbolic pivot vanishes
        values: dict[sp.Symbol, sp.Expr] = dict(data.zero)
        for s in data.symbols:
            values[s] = draw(positive=s in data.A or s in data.D)
        for j in range(1, n + 1):
            for q in range(P):
                values[corrections[(q, j)]] = sp.sympify(
                    derivation.moment_solution[(q, j)]).xreplace(values)
        if all(value.is_finite for value in values.values()):
            break
    # coefficients the truncation drops: generic (random) values
    extra_f = {p: draw() for p in range(P)}  # f^{(2n)}(v)
    extra_h = {p: draw() for p in range(P)}  # ∂_x^{2n+2} h at v
    extra_m = {q: draw() for q in range(P)}  # m_{q,n+1}
    extra_phi = {(p, r): draw() for p in range(P) for r in range(P)}  # φ_{pr,2n+2}
    generic = local_expansion(n)
    orders, claimed = {}, {}
    for p, name in enumerate(model.names):
        subs = specialise(generic, p, data, corrections, P)
        A, D = values[data.A[p]], values[data.D[p]]
        B = sum((epsilon**i * sp.sympify(c).xreplace(subs).xreplace(values)
                 for i, c in generic.density.items()), sp.Integer(0))
        f_taylor = sum((values.get(data.f[(p, k)], 0) * (epsilon * y) ** k / sp.factorial(k)
                        for k in range(N)), sp.Integer(0))
        f_taylor += extra_f[p] * (epsilon * y) ** N / sp.factorial(N)
        h_taylor = A * epsilon * y + extra_h[p] * (epsilon * y) ** (N + 2) / sp.factorial(N + 2)
        h_taylor += sum((values[data.h[(p, k)]] if data.h[(p, k)] in values else 0)
                        * (epsilon * y) ** k / sp.factorial(k) for k in range(2, N + 2))
        for r in range(P):
            dm = sum((values[corrections[(r, j)]] * epsilon ** (2 * j) for j in range(1, n + 1)),
                     sp.Integer(0)) + extra_m[r] * epsilon ** (2 * n + 2)
            phi_taylor = sum((values.get(data.phi[(p, r, k)], 0) * (epsilon * y) ** k / sp.factorial(k)
                              for k in range(N + 2)), sp.Integer(0))
            phi_taylor += extra_phi[(p, r)] * (epsilon * y) ** (N + 2) / sp.factorial(N + 2)
            h_taylor += phi_taylor * dm
        # zero flux divided by the Gaussian factor: ε f B − ε^{-1} h B − D (B_y − (A/D) y B)
        flux = epsilon * f_taylor * B - h_taylor * B / epsilon - D * (sp.diff(B, y) - A / D * y * B)
        flux = sp.expand(flux)
        flux_terms = sum((flux.coeff(epsilon, k) * epsilon**k for k in range(-1, N + 2)),
                         sp.Integer(0))
        orders[f"flux[{name}]"] = lowest_power(flux_terms, epsilon, shift=1)
        claimed[f"flux[{name}]"] = N + 1
        variance = D / A
        norm = _expect(B, variance)

        def expectation(weight: sp.Expr, norm: sp.Expr = norm, B: sp.Expr = B,
                        variance: sp.Expr = variance) -> sp.Expr:
            return _divide(_expect(weight * B, variance), norm, N + 2)

        mean_claim = sum((sp.sympify(derivation.mean[(p, j)]).xreplace(values) * epsilon ** (2 * j)
                          for j in range(1, n + 1)), sp.Integer(0))
        var_claim = sum((sp.sympify(derivation.var[(p, j)]).xreplace(values) * epsilon ** (2 * j)
                         for j in range(1, n + 1)), sp.Integer(0))
        mean_y = expectation(epsilon * y)
        second = expectation((epsilon * y) ** 2)
        mean_residual = mean_y - mean_claim
        var_residual = sp.expand(second - mean_y**2 - var_claim)
        psi_taylor = sum((values.get(data.psi[(p, k)], 0) * (epsilon * y) ** k / sp.factorial(k)
                          for k in range(N + 1)), sp.Integer(0))
        m_claim = values.get(data.psi[(p, 0)], 0) + sum(
            (values[corrections[(p, j)]] * epsilon ** (2 * j) for j in range(1, n + 1)), sp.Integer(0))
        m_residual = expectation(psi_taylor) - m_claim

        def truncate(expr: sp.Expr) -> sp.Expr:
            expr = sp.expand(expr)
            return sum((expr.coeff(epsilon, k) * epsilon**k for k in range(0, N + 3)), sp.Integer(0))

        for label, residual in (("mean", mean_residual), ("var", var_residual),
                                ("self_consistency", m_residual)):
            orders[f"{label}[{name}]"] = lowest_power(truncate(residual), epsilon)
            claimed[f"{label}[{name}]"] = N + 2
    return Verification("stationary_expansion", orders, claimed)


def verify(result: Any, *, seed: int = 0) -> Verification:
    """Substitute ``result`` back into the equations it came from; see the module docstring.

    ``result`` is what :func:`hopf_cole`, :func:`rescaled_equation` or
    :func:`stationary_expansion` returned; ``seed`` draws the generic local data of expansions.
    """
    seed = check_int("seed", seed, minimum=0)
    if isinstance(result, HopfCole):
        return _verify_hopf_cole(result)
    if isinstance(result, RescaledEquation):
        return _verify_rescaled(result)
    if isinstance(result, StationaryExpansion):
        return _verify_expansion(result, seed)
    bad_type("result", result, "the result of hopf_cole, rescaled_equation or stationary_expansion")
