r"""The desingularized (rescaled) equation in the moving frame of the balance point (docs/mathematics.md §6).

Zoom ``x = c_p(t) + ε y``, ``ε = γ^{-1/2}``, ``ρ_p(t, x) = ε^{-1} q_p(t, y)``. Exactly,

.. math:: \partial_t q = -\partial_y\big[V q\big] + ε^{-2} D\,\partial_{yy} q,\qquad
          V = -ε^{-1} c'(t) + ε^{-1} f(c + εy) - ε^{-3} h(c + εy).

With ``h_k(t) = ∂_x^k h_p(c_p(t), t)``, ``f_k(t) = f_p^{(k)}(c_p(t))`` and ``c_p`` the zero of
``h_p`` (the equation for ``c``: ``h_p(c_p(t); m(t), t) = 0``, so ``h_0 = 0``), the drift is the
series ``V = Σ_{k ≥ -2} ε^k V_k``:

.. math:: V_{-2} = -A y,\quad V_{-1} = -c' + f_0 - h_2\frac{y^2}{2},\quad
          V_k = f_{k+1}\frac{y^{k+1}}{(k+1)!} - h_{k+3}\frac{y^{k+3}}{(k+3)!}\ (k\ge 0),

``A = h_1``: the leading operator ``∂_y(A y q) + D ∂_yy q`` is Ornstein–Uhlenbeck with
invariant law ``N(0, D/A)``; ``h_2, h_3, …`` (non-affine fields) enter from ``ε^{-1}`` on. The
moments close the system: ``m_q = Σ_k ε^k Ψ_q^{(k)}(c_q) M_{q,k}/k!``, ``M_{q,k} = ∫ y^k q_q dy``.

Numeric use (no SymPy needed): ``V_p = Σ_k ε^k drift[p][k](y, c=c, m=m, dc=c_p', t=t)`` with
``c``, ``m`` arrays of length P; ``balance_residual(c, m, t)`` gives ``h_p(c_p; m, t)`` (solve it
for ``c`` at each step), ``slope(c, m, t)`` gives ``A_p`` and ``readout(c)`` the (P, K) array of
``Ψ_q^{(k)}(c_q)/k!``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from asymptotics.balance import check_model, is_concentrating
from asymptotics.bridge import Coefficient, compile_vector
from asymptotics.symbols import epsilon, exact_model, latex_block, t, x, y
from meanfield.errors import bad_value, check_int
from meanfield.model import Model, exact


@dataclass(frozen=True, eq=False)
class RescaledEquation:
    """Rescaled equation of every population, by powers of ``ε`` up to ``order``.

    Symbolic: ``q[p]``, ``c[p]`` (functions of ``t``/``y``), ``coefficients[p]`` (the Taylor
    coefficient functions ``h_k(t)`` keyed by ``("h", k)`` and ``f_k(t)`` keyed by ``("f", k)``),
    ``drift[p][k]`` = ``V_k``, ``terms[p][k]`` = ``-∂_y(V_k q)`` (plus ``D ∂_yy q`` at ``k = -2``),
    ``equations[p]``, ``leading[p]`` (the OU operator), ``balance[p]`` (equation for ``c``),
    ``velocity[p]`` (``c_p'`` from differentiating it along ``m(t)``) and ``moment_series[q]``.
    Numeric: ``drift_numeric[p][k]`` (:class:`asymptotics.bridge.Coefficient`),
    ``balance_residual``, ``slope``, ``readout`` and ``diffusion``; see the module docstring.
    """

    model: Model
    order: int
    q: tuple[sp.Expr, ...]
    c: tuple[sp.Expr, ...]
    coefficients: tuple[dict[tuple[str, int], sp.Expr], ...]
    drift: tuple[dict[int, sp.Expr], ...]
    terms: tuple[dict[int, sp.Expr], ...]
    equations: tuple[sp.Eq, ...]
    leading: tuple[sp.Expr, ...]
    balance: tuple[sp.Eq, ...]
    velocity: tuple[sp.Eq, ...]
    moment_series: tuple[sp.Expr, ...]
    moment_symbols: tuple[tuple[sp.Expr, ...], ...]
    diffusion: np.ndarray
    drift_numeric: tuple[dict[int, Coefficient], ...] = field(repr=False)
    _balance_fn: Callable = field(repr=False)
    _slope_fn: Callable = field(repr=False)
    _readout_fn: Callable = field(repr=False)

    def explicit_coefficients(self, p: int) -> dict[sp.Expr, sp.Expr]:
        """Substitution ``h_k(t) → ∂_x^k h_p(c_p(t))``, ``f_k(t) → f_p^{(k)}(c_p(t))`` (moments as
        the symbols ``m_q``)."""
        h, f = self.model.field(p), self.model.populations[p].drift
        out = {}
        for (kind, k), fn in self.coefficients[p].items():
            base = h if kind == "h" else f
            out[fn] = sp.diff(base, x, k).subs(x, self.c[p])
        return out

    def balance_residual(self, c: np.ndarray, m: np.ndarray, t: float = 0.0) -> np.ndarray:
        """``h_p(c_p; m, t)`` for every ``p`` (zero on the balance manifold)."""
        return self._balance_fn(*np.asarray(c, float), *np.asarray(m, float), float(t))

    def slope(self, c: np.ndarray, m: np.ndarray, t: float = 0.0) -> np.ndarray:
        """``A_p = ∂_x h_p(c_p; m, t)``."""
        return self._slope_fn(*np.asarray(c, float), *np.asarray(m, float), float(t))

    def readout(self, c: np.ndarray) -> np.ndarray:
        """(P, K) array ``Ψ_q^{(k)}(c_q)/k!`` for ``k < K = order + 4`` (``m_q = Σ_k ε^k [..] M_{q,k}``)."""
        return self._readout_fn(*np.asarray(c, float)).reshape(self.model.P, -1)

    def _repr_latex_(self) -> str:
        lines = [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.equations]
        lines += [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.balance]
        return latex_block(lines)


@lru_cache(maxsize=32)
def _rescaled(model: Model, order: int) -> RescaledEquation:
    P = model.P
    ms = model.moment_symbols()
    qs = tuple(sp.Function(f"q_{n}")(t, y) for n in model.names)
    cs = tuple(sp.Function(f"c_{n}")(t) for n in model.names)
    D = [exact(pop.sigma) ** 2 / 2 for pop in model.populations]
    coefficients, drifts, terms, eqs, leading, balance = [], [], [], [], [], []
    drift_numeric = []
    c_sym, dc_sym = sp.Symbol("c", real=True), sp.Symbol("dc", real=True)
    for p, name in enumerate(model.names):
        h_fn = {k: sp.Function(f"h_{{{name},{k}}}")(t) for k in range(1, max(order + 4, 3))}
        f_fn = {k: sp.Function(f"f_{{{name},{k}}}")(t) for k in range(0, max(order + 2, 1))}
        coefficients.append({**{("h", k): v for k, v in h_fn.items()},
                             **{("f", k): v for k, v in f_fn.items()}})
        dc = sp.Derivative(cs[p], t)
        V = {-2: -h_fn[1] * y, -1: -dc + f_fn[0] - h_fn[2] * y**2 / 2}
        for k in range(0, order + 1):
            V[k] = (f_fn[k + 1] * y ** (k + 1) / sp.factorial(k + 1)
                    - h_fn[k + 3] * y ** (k + 3) / sp.factorial(k + 3))
        V = {k: v for k, v in V.items() if k <= order}
        drifts.append(V)
        term = {k: -sp.diff(v * qs[p], y) for k, v in V.items()}
        term[-2] = term[-2] + D[p] * sp.diff(qs[p], y, 2)
        terms.append(term)
        eqs.append(sp.Eq(sp.Derivative(qs[p], t), sum((epsilon**k * v for k, v in term.items()),
                                                       sp.Integer(0))))
        leading.append(sp.diff(h_fn[1] * y * qs[p], y) + D[p] * sp.diff(qs[p], y, 2))
        # numeric drift coefficients: Taylor coefficients replaced by derivatives at c
        h_expr, f_expr = model.field(p), model.populations[p].drift
        explicit = {**{fn: sp.diff(h_expr, x, k).subs(x, c_sym) for k, fn in h_fn.items()},
                    **{fn: sp.diff(f_expr, x, k).subs(x, c_sym) for k, fn in f_fn.items()},
                    dc: dc_sym}
        args = (y, t, c_sym, *ms, dc_sym)
        drift_numeric.append({k: Coefficient(expr=v.subs(explicit), args=args, population=p, P=P)
                              for k, v in V.items()})
    K = order + 4
    M = tuple(tuple(sp.Function(f"M_{{{n},{k}}}")(t) for k in range(K)) for n in model.names)
    series = tuple(sum((epsilon**k * sp.diff(model.psi[q], x, k).subs(x, cs[q]) / sp.factorial(k)
                        * M[q][k] for k in range(K)), sp.Integer(0)) for q in range(P))
    m_of_t = [sp.Function(str(m))(t) for m in ms]
    velocity = []
    for p in range(P):
        h_c = model.field(p).subs(x, cs[p])
        balance.append(sp.Eq(h_c, 0))
        # d/dt h_p(c_p(t); m(t), t) = 0
        moving = h_c.subs(dict(zip(ms, m_of_t, strict=True)))
        dc = sp.Derivative(cs[p], t)
        total = sp.diff(moving, t).subs(dc, sp.Symbol("_dc"))
        velocity.append(sp.Eq(dc, sp.solve(total, sp.Symbol("_dc"))[0]))
    c_vec = [sp.Symbol(f"c_{n}", real=True) for n in model.names]
    balance_fn = compile_vector([model.field(p).subs(x, c_vec[p]) for p in range(P)],
                                [*c_vec, *ms, t])
    slope_fn = compile_vector([sp.diff(model.field(p), x).subs(x, c_vec[p]) for p in range(P)],
                              [*c_vec, *ms, t])
    readout_fn = compile_vector([sp.diff(model.psi[q], x, k).subs(x, c_vec[q]) / sp.factorial(k)
                                 for q in range(P) for k in range(K)], c_vec)
    return RescaledEquation(
        model=model, order=order, q=qs, c=cs, coefficients=tuple(coefficients),
        drift=tuple(drifts), terms=tuple(terms), equations=tuple(eqs), leading=tuple(leading),
        balance=tuple(balance), velocity=tuple(velocity), moment_series=series, moment_symbols=M,
        diffusion=np.array([float(d) for d in D]), drift_numeric=tuple(drift_numeric),
        _balance_fn=balance_fn, _slope_fn=slope_fn, _readout_fn=readout_fn)


def rescaled_equation(model: Model, *, order: int = 1) -> RescaledEquation:
    """The rescaled equation for ``q_p(t, y)`` up to ``ε^order`` (``order >= -2``)."""
    check_model(model)
    order = check_int("order", order, minimum=-2)
    if order > 8:
        bad_value("order", order, "an order between -2 and 8")
    if not is_concentrating(model):
        bad_value("model", model, "a concentrating model (fields h_p depending on x); constant Φ "
                  "gives a non-concentrating balance: see balance_points(model).multipliers")
    return _rescaled(exact_model(model), order)
