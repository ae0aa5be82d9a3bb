r"""Early-behaviour field, balance manifold and balance points (docs/mathematics.md §4).

The points themselves come from the numeric engine :mod:`meanfield.balance`; this module adds the
symbolic field, manifold, explicit formulas, fixed-point Jacobian and the non-concentrating
multipliers, and :meth:`BalancePoints.deviation` checks that formulas and numbers agree.

At leading order in the fast time ``τ = γ t`` every agent of population ``p`` follows
``dx/dτ = -h_p(x)`` with

.. math:: h_p(x, t) = \sum_q g_{pq}\,\Phi_{pq}(x)\, m_q + \text{external terms}.

*Concentrating case* (every ``h_p`` depends on ``x``): population ``p`` collapses onto a stable
zero ``v_p`` of ``h_p`` (``∂_x h_p(v_p) > 0``) and ``m_q = Ψ_q(v_q)``, so the balance points
solve the P equations ``h_p(v_p; Ψ(v)) = 0``. When ``h_p`` is affine in ``x`` its zero is
explicit, ``v_p = -h_p(0)/∂_x h_p`` — for reversal-potential coupling the conductance-weighted
average ``v_p = Σ_q g_pq E_q Ψ_q(v_q) / Σ_q g_pq Ψ_q(v_q)``. The fixed-point iteration
``v ↦ T(v)`` (``T_p(v)`` the zero of ``h_p(·; Ψ(v))`` near ``v_p``) has Jacobian
``∂T_p/∂v_r = -∂_{m_r} h_p Ψ_r'(v_r) / ∂_x h_p``; a point is *stable* when every
``∂_x h_p(v_p) > 0`` and that Jacobian has spectral radius < 1.

*Non-concentrating case* (every ``Φ_pq`` constant): the balance manifold is the linear
constraint ``Σ_q g_pq Φ_pq m_q + e_p(t) = 0`` and ``γ h_p → λ_p(t)``; differentiating the
constraint along ``∂_t ρ_q = -∂_x[(f_q - λ_q) ρ_q] + D_q ∂_xx ρ_q`` gives

.. math:: λ_q = \frac{⟨Ψ_q' f_q⟩ + D_q ⟨Ψ_q''⟩ + (K^{-1} \dot e)_q}{⟨Ψ_q'⟩},
          \qquad K_{pq} = g_{pq} Φ_{pq}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from asymptotics.bridge import compile_scalar, compile_vector
from asymptotics.symbols import exact_model, latex_block, t, x
from meanfield import balance as engine
from meanfield.balance import BalancePoint, check_model, is_concentrating
from meanfield.errors import bad_value, check_finite_number
from meanfield.model import Model, exact


def balance_symbols(model: Model) -> tuple[sp.Symbol, ...]:
    """Symbols ``v_p`` for the balance points."""
    return tuple(sp.Symbol(f"v_{name}", real=True) for name in model.names)


@dataclass(frozen=True, eq=False, kw_only=True)
class BalancePoints(engine.BalancePoints):
    """The numeric balance points of :func:`meanfield.balance.balance_points` with their formulas.

    ``field[p]`` is ``h_p(x; m, t)``; ``manifold`` the SymPy equations defining the balance
    manifold (in ``v`` when concentrating, in ``m`` otherwise); ``formula[p]`` the explicit
    ``v_p`` when ``h_p`` is affine in ``x`` (else ``None``); ``iteration_jacobian`` the symbolic
    Jacobian of the fixed-point map. ``all``, ``principal``, ``v``, ``moments`` and ``outside``
    come from the numeric engine; :meth:`deviation` measures how far the formulas are from them.
    In the non-concentrating case ``multipliers[p]`` is the formula for ``λ_p``.
    """

    field: tuple[sp.Expr, ...]
    symbols: tuple[sp.Symbol, ...]
    manifold: tuple[sp.Eq, ...]
    formula: tuple[sp.Expr | None, ...]
    iteration_jacobian: sp.Matrix | None
    multipliers: tuple[sp.Expr, ...] = ()
    _multiplier_fn: Callable[..., np.ndarray] | None = field(default=None, repr=False)
    _symbolic_fns: tuple[Callable[..., np.ndarray], ...] = field(default=(), repr=False)

    def deviation(self) -> float:
        """Largest gap between the formulas and the numeric engine over every point found.

        Compares the symbolic ``H(v)`` (should vanish), slopes ``∂_x h_p(v_p)`` and fixed-point
        Jacobian with the engine's, and the explicit formula (affine fields) with ``v``.
        """
        if not self._symbolic_fns:
            return 0.0
        residual, slopes, iteration = self._symbolic_fns
        P, gaps = self.model.P, [0.0]
        for b in self.all:
            args = (*b.v, self.time)
            gaps.append(float(np.max(np.abs(residual(*args)))))
            gaps.append(float(np.max(np.abs(slopes(*args) - b.slope))))
            gaps.append(float(np.max(np.abs(iteration(*args).reshape(P, P)
                                            - b.iteration_jacobian))))
            if all(f is not None for f in self.formula):
                gaps.append(float(np.max(np.abs(self.formula_values(b.v) - b.v))))
        return max(gaps)

    def formula_values(self, v: np.ndarray) -> np.ndarray:
        """The explicit formula ``v_p = -h_p(0)/∂_x h_p`` evaluated at ``v`` (affine fields only)."""
        if any(f is None for f in self.formula):
            bad_value("model", self.model, "fields h_p affine in x for the explicit formula")
        fn = compile_vector(list(self.formula), [*self.symbols, t])
        return fn(*np.asarray(v, dtype=float), self.time)

    def multiplier_values(self, x_nodes: np.ndarray, rho: np.ndarray, weights: np.ndarray,
                          time: float = 0.0) -> np.ndarray:
        """``λ_p`` of the non-concentrating balance for densities ``rho`` (P, M) on nodes.

        Expectations are the quadratures ``Σ_i w_i φ(x_i) ρ_p(x_i)`` with ``weights`` ``w``.
        """
        if self._multiplier_fn is None:
            bad_value("model", self.model, "a non-concentrating model (constant Φ)")
        return self._multiplier_fn(np.asarray(x_nodes, float), np.asarray(rho, float),
                                   np.asarray(weights, float), float(time))

    def _repr_latex_(self) -> str:
        lines = [rf"h_{{{n}}}(x) &= {sp.latex(h)}" for n, h in zip(self.model.names, self.field,
                                                                     strict=True)]
        lines += [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.manifold]
        if self.concentrating:
            lines.append(r"v &= " + sp.latex(sp.Matrix(np.round(self.v, 10))))
        else:
            lines += [rf"\lambda_{{{n}}} &= {sp.latex(lam)}" for n, lam in
                      zip(self.model.names, self.multipliers, strict=True)]
        return latex_block(lines)


@lru_cache(maxsize=64)
def _balance(model: Model, time: float, starts: int) -> BalancePoints:
    P = model.P
    fields = tuple(model.field(p) for p in range(P))
    ms = model.moment_symbols()
    vs = balance_symbols(model)
    numeric = engine.balance_points(model, time=time, starts=starts)
    if not numeric.concentrating:
        return _non_concentrating(model, time, fields, ms, vs)
    m_at_v = {ms[q]: model.psi[q].subs(x, vs[q]) for q in range(P)}
    at_v = [fields[p].subs({x: vs[p], **m_at_v}) for p in range(P)]
    manifold = tuple(sp.Eq(h, 0) for h in at_v)
    formula = []
    for p in range(P):
        h = sp.expand(fields[p])
        if sp.Poly(h, x).degree() == 1 if h.is_polynomial(x) else False:
            formula.append((-h.coeff(x, 0) / h.coeff(x, 1)).subs(m_at_v))
        else:
            formula.append(None)
    slope_v = [sp.diff(fields[p], x).subs(x, vs[p]).subs(m_at_v) for p in range(P)]
    iteration = sp.Matrix(P, P, lambda p, r: -sp.diff(fields[p], ms[r]).subs(x, vs[p]).subs(m_at_v)
                          * sp.diff(model.psi[r], x).subs(x, vs[r]) / slope_v[p])
    args = [*vs, t]
    checks = (compile_vector(at_v, args), compile_vector(slope_v, args),
              compile_vector(list(iteration), args))
    return BalancePoints(model=model, time=time, concentrating=True, all=numeric.all,
                         outside=numeric.outside, field=fields, symbols=vs, manifold=manifold,
                         formula=tuple(formula), iteration_jacobian=iteration,
                         _symbolic_fns=checks)


def _expectation(expr: sp.Expr, rho: sp.Expr, model: Model) -> sp.Integral:
    a, b = model.domain
    return sp.Integral(expr * rho, (x, exact(a), exact(b)))


def _non_concentrating(model: Model, time: float, fields: tuple, ms: tuple,
                       vs: tuple) -> BalancePoints:
    P = model.P
    K = sp.Matrix(P, P, lambda p, q: sp.diff(fields[p], ms[q]))
    e = sp.Matrix([fields[p].subs({m: 0 for m in ms}) for p in range(P)])
    if K.det() == 0:
        bad_value("model", model, "an invertible balance matrix K_pq = g_pq Φ_pq (got a "
                  "singular one: the balance constraint does not fix the moments)")
    manifold = tuple(sp.Eq(fields[p], 0) for p in range(P))
    moments = engine.balanced_moments(model, time)
    forcing = K.LUsolve(sp.diff(e, t))
    rhos = [sp.Function(f"rho_{n}")(t, x) for n in model.names]
    lams = []
    for q in range(P):
        psi, f, D = model.psi[q], model.populations[q].drift, exact(model.populations[q].sigma) ** 2 / 2
        dpsi = sp.diff(psi, x)
        lams.append((_expectation(dpsi * f, rhos[q], model)
                     + D * _expectation(sp.diff(psi, x, 2), rhos[q], model) + forcing[q])
                    / _expectation(dpsi, rhos[q], model))
    integrands = []
    for q in range(P):
        psi, f, D = model.psi[q], model.populations[q].drift, exact(model.populations[q].sigma) ** 2 / 2
        integrands.append((sp.diff(psi, x) * f + D * sp.diff(psi, x, 2), sp.diff(psi, x)))
    num_fns = [compile_scalar(a, [x]) for a, _ in integrands]
    den_fns = [compile_scalar(b, [x]) for _, b in integrands]
    forcing_fn = compile_vector(list(forcing), [t])

    def multipliers(nodes: np.ndarray, rho: np.ndarray, weights: np.ndarray, time_: float) -> np.ndarray:
        force = forcing_fn(time_)
        return np.array([((num_fns[q](nodes) * rho[q]) @ weights + force[q])
                         / ((den_fns[q](nodes) * rho[q]) @ weights) for q in range(P)])

    return BalancePoints(model=model, time=time, concentrating=False, all=(), moments=moments,
                         field=fields, symbols=vs, manifold=manifold, formula=(None,) * P,
                         iteration_jacobian=None, multipliers=tuple(lams),
                         _multiplier_fn=multipliers)


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64) -> BalancePoints:
    """Balance manifold and every balance point of ``model`` (external inputs frozen at ``time``).

    The points are those of :func:`meanfield.balance.balance_points` (``starts`` seeded Sobol
    starts for P ≥ 2, a domain scan for P = 1). See :class:`BalancePoints`.
    """
    check_model(model)
    time = check_finite_number("time", time)
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        bad_value("starts", starts, "an integer >= 1")
    return _balance(exact_model(model), time, starts)


__all__ = ["BalancePoint", "BalancePoints", "balance_points", "balance_symbols", "check_model",
           "is_concentrating"]
