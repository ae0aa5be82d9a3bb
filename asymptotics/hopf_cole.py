r"""Hopf–Cole transform of the mean-field PDE (docs/mathematics.md §5), exact.

With ``ρ_p = exp(γ u_p)``:

.. math:: \partial_t u = γ\big(D u_x^2 + h u_x\big) + \big(D u_{xx} - f u_x + h_x\big) - \frac{f'}{γ}.

In the fast time ``τ = γ t`` the leading part is the Hamilton–Jacobi equation
``∂_τ u = D u_x² + h u_x``; near a zero ``c`` of ``h`` its stationary, normalised solution is the
well ``u = -∫_c^x h(s)/D ds`` (``max u = 0`` at ``c`` when ``∂_x h(c) > 0``), a Gaussian of
variance ``D/(γ ∂_x h(c))`` for affine ``h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from asymptotics.balance import check_model, is_concentrating
from asymptotics.equations import MeanFieldEquation, _mean_field
from asymptotics.symbols import exact_model, gamma, latex_block, t, x
from meanfield.model import Model

tau = sp.Symbol("tau", nonnegative=True)
"""Fast time ``τ = γ t``."""


@dataclass(frozen=True, eq=False)
class HopfCole:
    """The equation for ``u_p = γ^{-1} log ρ_p``.

    ``terms[p]`` maps a power ``k`` of ``γ`` (1, 0, −1) to its coefficient; ``equations[p]`` is
    ``Eq(∂_t u_p, Σ_k γ^k terms[p][k])``; ``fast_time[p]`` the Hamilton–Jacobi limit in ``τ``;
    ``zeros[p]`` the symbol ``c_p`` of the zero of ``h_p`` the well is built on and ``well[p]``
    the stationary well (``None`` for a non-concentrating model).
    """

    model: Model
    mean_field: MeanFieldEquation
    u: tuple[sp.Expr, ...]
    terms: tuple[dict[int, sp.Expr], ...]
    equations: tuple[sp.Eq, ...]
    fast_time: tuple[sp.Eq, ...]
    zeros: tuple[sp.Symbol, ...]
    well: tuple[sp.Expr | None, ...]

    def rhs(self, p: int) -> sp.Expr:
        return sum((gamma**k * c for k, c in self.terms[p].items()), sp.Integer(0))

    def _repr_latex_(self) -> str:
        lines = [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.equations]
        lines += [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.fast_time]
        lines += [rf"u^{{\mathrm{{well}}}}_{{{n}}} &= {sp.latex(w)}"
                  for n, w in zip(self.model.names, self.well, strict=True) if w is not None]
        return latex_block(lines)


@lru_cache(maxsize=32)
def _hopf_cole(model: Model) -> HopfCole:
    mfe = _mean_field(model)
    concentrating = is_concentrating(model)
    s = sp.Symbol("s", real=True)
    us, terms, eqs, fast, zeros, wells = [], [], [], [], [], []
    for p, name in enumerate(model.names):
        u = sp.Function(f"u_{name}")(t, x)
        f, h, D = model.populations[p].drift, mfe.field[p], mfe.diffusion[p]
        ux = sp.diff(u, x)
        term = {1: D * ux**2 + h * ux, 0: D * sp.diff(u, x, 2) - f * ux + sp.diff(h, x),
                -1: -sp.diff(f, x)}
        us.append(u)
        terms.append(term)
        eqs.append(sp.Eq(sp.Derivative(u, t), sum((gamma**k * c for k, c in term.items()),
                                                  sp.Integer(0))))
        u_tau = sp.Function(f"u_{name}")(tau, x)
        fast.append(sp.Eq(sp.Derivative(u_tau, tau), term[1].subs(u, u_tau).doit()))
        c = sp.Symbol(f"c_{name}", real=True)
        zeros.append(c)
        wells.append(-sp.integrate(h.subs(x, s), (s, c, x)) / D if concentrating else None)
    return HopfCole(model=model, mean_field=mfe, u=tuple(us), terms=tuple(terms),
                    equations=tuple(eqs), fast_time=tuple(fast), zeros=tuple(zeros),
                    well=tuple(wells))


def hopf_cole(model: Model) -> HopfCole:
    """Hopf–Cole transform ``ρ_p = exp(γ u_p)`` of the mean-field PDE of ``model``."""
    return _hopf_cole(exact_model(check_model(model)))
