r"""The mean-field PDE of every population as SymPy equations (docs/mathematics.md §2).

.. math:: \partial_t ρ_p = -\partial_x\big[(f_p(x) - γ h_p(x, t))\,ρ_p\big] + D_p\,\partial_{xx} ρ_p,
          \qquad m_q = \int_a^b Ψ_q ρ_q\,dx,

with zero flux ``J_p = (f_p - γ h_p) ρ_p - D_p ∂_x ρ_p = 0`` at both ends. The moments enter
``h_p`` as the symbols ``m_q`` (their values at time ``t``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from asymptotics.balance import check_model
from asymptotics.symbols import exact_model, gamma, latex_block, t, x
from meanfield.model import Model, exact


@dataclass(frozen=True, eq=False)
class MeanFieldEquation:
    """``equations[p]``: ``Eq(∂_t ρ_p, rhs)`` (derivatives unevaluated for display); ``rhs[p]``
    the evaluated right-hand side; ``flux[p]`` the probability flux; ``moments[q]``:
    ``Eq(m_q, ∫ Ψ_q ρ_q)``; ``field[p]`` = ``h_p``; ``drift[p]`` = ``f_p − γ h_p``."""

    model: Model
    rho: tuple[sp.Expr, ...]
    field: tuple[sp.Expr, ...]
    drift: tuple[sp.Expr, ...]
    diffusion: tuple[sp.Expr, ...]
    equations: tuple[sp.Eq, ...]
    rhs: tuple[sp.Expr, ...]
    flux: tuple[sp.Expr, ...]
    moments: tuple[sp.Eq, ...]

    def residual(self, p: int, density: sp.Expr) -> sp.Expr:
        """``∂_t ρ − rhs`` for the expression ``density`` substituted for ``ρ_p``."""
        rho = self.rho[p]
        return sp.diff(density, t) - self.rhs[p].subs(rho, density).doit()

    def _repr_latex_(self) -> str:
        lines = [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.equations]
        lines += [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in self.moments]
        return latex_block(lines)


@lru_cache(maxsize=32)
def _mean_field(model: Model) -> MeanFieldEquation:
    a, b = (exact(v) for v in model.domain)
    rho = tuple(sp.Function(f"rho_{n}")(t, x) for n in model.names)
    fields = tuple(model.field(p) for p in range(model.P))
    drift = tuple(pop.drift - gamma * h for pop, h in zip(model.populations, fields, strict=True))
    diff = tuple(exact(pop.sigma) ** 2 / 2 for pop in model.populations)
    eqs, rhs, flux = [], [], []
    for p in range(model.P):
        eqs.append(sp.Eq(sp.Derivative(rho[p], t),
                         -sp.Derivative(drift[p] * rho[p], x) + diff[p] * sp.Derivative(rho[p], (x, 2))))
        rhs.append(eqs[-1].rhs.doit())
        flux.append(drift[p] * rho[p] - diff[p] * sp.diff(rho[p], x))
    moments = tuple(sp.Eq(m, sp.Integral(psi * r, (x, a, b))) for m, psi, r in
                    zip(model.moment_symbols(), model.psi, rho, strict=True))
    return MeanFieldEquation(model=model, rho=rho, field=fields, drift=drift, diffusion=diff,
                             equations=tuple(eqs), rhs=tuple(rhs), flux=tuple(flux), moments=moments)


def mean_field_equation(model: Model) -> MeanFieldEquation:
    """The mean-field PDE of ``model`` (one SymPy equation per population)."""
    return _mean_field(exact_model(check_model(model)))
