r"""Leading order in ``1/γ`` of the finite-size fluctuations (docs/mathematics.md §9).

In the concentrating case each population is a Gaussian cloud of width ``√(D_p/(γ A_p))``
around its balance point ``v_p``; the ``n^{-1/2}`` noise moves the cloud as a whole. With
``m_q ≈ Ψ_q(X̄_q)`` the population means obey the linearised balance dynamics

.. math:: d\,\delta\bar X_p = -\gamma \sum_q K_{pq}\,\delta\bar X_q\,dt + \frac{\sigma_p}{\sqrt n}\,dW_p,
   \qquad K_{pq} = \partial_x h_p(v_p)\,\delta_{pq} + \partial_{m_q} h_p(v_p)\,\Psi_q'(v_q),

so ``n·Cov(X̄) = Σ`` with ``(γK) Σ + Σ (γK)ᵀ = diag(2D)``, ``n·Cov(m) = diag(Ψ') Σ diag(Ψ')``
and the correlation time of ``y = wᵀX̄`` is ``wᵀ(γK)⁻¹Σw / wᵀΣw``. Everything is derived in
SymPy with ``γ`` symbolic (the Lyapunov equation is solved as a linear system in the entries of
``Σ``, on abstract entries of ``K`` then replaced by their expressions); the exponents of ``γ``
are read off the formulas; numbers come from one lambdify
step at the principal balance point. Derivation: docs/fluctuations.md §7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from asymptotics.balance import balance_points, balance_symbols, check_model
from asymptotics.bridge import compile_vector
from asymptotics.symbols import exact_model, gamma, t, x
from meanfield.errors import bad_value, check_finite_number
from meanfield.model import Model, exact


@dataclass(frozen=True, eq=False)
class FluctuationScaling:
    """Leading-order fluctuations at large γ (all variances ``n ×``, at n agents per population).

    Symbolic (in the balance symbols ``v`` and ``γ``): ``K``, ``covariance`` (``n·Cov(X̄)``),
    ``m_covariance`` (``n·Cov(m)``), ``m_correlation_time`` and ``mean_correlation_time``
    (P-tuples). ``order_var`` and ``order_time`` are the exponents of γ (``-1`` for both).
    Numeric coefficients at the principal balance point ``v``: ``n·Var ≈ coefficient · γ^order``.
    """

    model: Model
    v: np.ndarray
    K: sp.Matrix
    covariance: sp.Matrix
    m_covariance: sp.Matrix
    m_correlation_time: tuple[sp.Expr, ...]
    mean_correlation_time: tuple[sp.Expr, ...]
    order_var: sp.Expr
    order_time: sp.Expr
    m_var_coefficient: np.ndarray
    mean_var_coefficient: np.ndarray
    m_time_coefficient: np.ndarray
    mean_time_coefficient: np.ndarray

    def m_var(self, gamma_value: float) -> np.ndarray:
        """Leading-order ``n·Var(m_q)`` at coupling ``gamma_value``."""
        g = check_finite_number("gamma", gamma_value, positive=True)
        return self.m_var_coefficient * g ** float(self.order_var)

    def m_time(self, gamma_value: float) -> np.ndarray:
        """Leading-order correlation time of ``m_q`` at coupling ``gamma_value``."""
        g = check_finite_number("gamma", gamma_value, positive=True)
        return self.m_time_coefficient * g ** float(self.order_time)

    def __repr__(self) -> str:
        return (f"FluctuationScaling(v={np.round(self.v, 8).tolist()}, n·Var(m) ≈ "
                f"{np.round(self.m_var_coefficient, 8).tolist()}·γ^{self.order_var}, τ_m ≈ "
                f"{np.round(self.m_time_coefficient, 8).tolist()}·γ^{self.order_time})")


def _lyapunov(Kg: sp.Matrix, noise: sp.Matrix) -> sp.Matrix:
    """Symmetric ``Σ`` with ``Kg Σ + Σ Kgᵀ = noise``, as a linear system in its entries."""
    P = Kg.shape[0]
    entries = {(i, j): sp.Symbol(f"s_{i}{j}") for i in range(P) for j in range(i, P)}
    S = sp.Matrix(P, P, lambda i, j: entries[(min(i, j), max(i, j))])
    equations = Kg * S + S * Kg.T - noise
    unknowns = list(entries.values())
    solution = sp.linsolve([equations[i, j] for i in range(P) for j in range(i, P)], unknowns)
    if not solution or any(e.free_symbols & set(unknowns) for e in next(iter(solution))):
        bad_value("model", "balance dynamics", "a balance point whose linearised dynamics has "
                  "a unique stationary covariance (no eigenvalue pair summing to zero)")
    return S.subs(dict(zip(unknowns, next(iter(solution)), strict=True))).applyfunc(sp.factor)


def _exponent(expr: sp.Expr) -> sp.Expr:
    """The exponent ``k`` with ``expr ∝ γ^k`` (``γ ∂_γ log expr``, constant for a monomial)."""
    k = sp.simplify(gamma * sp.diff(sp.log(expr), gamma))
    if k.has(gamma):
        bad_value("model", expr, "a fluctuation monomial in gamma")
    return k


def fluctuation_scaling(model: Model, *, time: float = 0.0) -> FluctuationScaling:
    """Leading order in ``1/γ`` of ``n·Var(m_q)``, ``n·Var(X̄_p)`` and the correlation times.

    Concentrating models only (every ``h_p`` depends on ``x``); uses the principal balance point
    of :func:`asymptotics.balance_points` (external inputs frozen at ``time``).
    """
    check_model(model)
    bal = balance_points(model, time=time)
    if not bal.concentrating:
        bad_value("model", model, "a concentrating model (h_p depending on x), where the "
                  "populations collapse onto balance points")
    em = exact_model(model)
    P = em.P
    vs = balance_symbols(em)
    ms = em.moment_symbols()
    m_at_v = {ms[q]: em.psi[q].subs(x, vs[q]) for q in range(P)}
    fields = [em.field(p) for p in range(P)]
    dpsi = [sp.diff(em.psi[q], x).subs(x, vs[q]) for q in range(P)]
    K = sp.Matrix(P, P, lambda p, q: (sp.diff(fields[p], x).subs(x, vs[p]) if p == q else 0)
                  + sp.diff(fields[p], ms[q]).subs(x, vs[p]) * dpsi[q]).subs(m_at_v)
    D = [exact(pop.sigma) ** 2 / 2 for pop in model.populations]
    # the Lyapunov algebra on abstract entries k_pq, s'_q (rational functions), then K substituted
    k = sp.Matrix(P, P, lambda p, q: sp.Symbol(f"k_{p}{q}"))
    ds = [sp.Symbol(f"psi1_{q}") for q in range(P)]
    Sigma_k = _lyapunov(gamma * k, sp.diag(*[2 * d for d in D]))
    Dpsi = sp.diag(*ds)
    m_cov_k = (Dpsi * Sigma_k * Dpsi).applyfunc(sp.factor)
    integral = (gamma * k).inv() * Sigma_k
    m_int = Dpsi * integral * Dpsi
    m_time_k = [sp.factor(m_int[q, q] / m_cov_k[q, q]) for q in range(P)]
    mean_time_k = [sp.factor(integral[q, q] / Sigma_k[q, q]) for q in range(P)]
    order_var = _exponent(m_cov_k[0, 0])
    order_time = _exponent(m_time_k[0])
    concrete = {**{k[p, q]: K[p, q] for p in range(P) for q in range(P)},
                **{ds[q]: dpsi[q] for q in range(P)}}
    Sigma = Sigma_k.xreplace(concrete)
    m_cov = m_cov_k.xreplace(concrete)
    m_time = tuple(e.xreplace(concrete) for e in m_time_k)
    mean_time = tuple(e.xreplace(concrete) for e in mean_time_k)
    args = [*vs, t]
    v = bal.v

    def at(exprs: list[sp.Expr]) -> np.ndarray:
        return compile_vector([e.subs(gamma, 1) for e in exprs], args)(*v, time)

    return FluctuationScaling(
        model=model, v=v, K=K, covariance=Sigma, m_covariance=m_cov, m_correlation_time=m_time,
        mean_correlation_time=mean_time, order_var=order_var, order_time=order_time,
        m_var_coefficient=at([m_cov[q, q] for q in range(P)]),
        mean_var_coefficient=at([Sigma[q, q] for q in range(P)]),
        m_time_coefficient=at(list(m_time)), mean_time_coefficient=at(list(mean_time)))

