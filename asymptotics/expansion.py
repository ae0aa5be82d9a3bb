r"""Stationary expansion in ``1/γ`` of the concentrated states (docs/mathematics.md §7, derived generally).

Around the principal balance point ``v`` (every ``h_p`` concentrating), per population ``p``:

.. math:: \mathrm{mean}_p = v_p + \sum_{j\ge1} μ_{p,j} γ^{-j}, \quad
          \mathrm{var}_p = \sum_{j\ge1} s_{p,j} γ^{-j}, \quad
          m_q = Ψ_q(v_q) + \sum_{j\ge1} m_{q,j} γ^{-j}.

The local data at ``v`` are ``A_p = ∂_x h_p``, ``h_{p,k} = ∂_x^k h_p`` (``k ≥ 2``, curvature of
non-affine fields), ``f_{p,k} = f_p^{(k)}``, ``ψ_{q,k} = Ψ_q^{(k)}``, ``φ_{pr,k} = g_pr Φ_pr^{(k)}``
and ``D_p``. The generic Laplace series of :mod:`asymptotics.laplace` is specialised with
``H_k^{(j)} = Σ_r φ_{pr,k} m_{r,j}``; the self-consistency ``m_q = E[Ψ_q]`` is linear in the
``m_{·,j}`` at each order ``j`` and solved order by order (``systems[j]`` = matrix and right-hand
side; ``moment_solution`` its symbolic solution; numbers come from solving the lambdified
system, never from the symbolic pivots). At order 1 this gives, with
``J_pr = -φ_{pr,0}/A_p``,

.. math:: (I - J\,\mathrm{diag}(ψ_{·,1}))\,μ = J\Big(ψ_{·,2} ⊙ \frac{D}{2A}\Big) + \frac{f(v)}{A}
          - h_{·,2} ⊙ \frac{D}{2A^2}, \qquad s_{p,1} = D_p/A_p,

which reduces to docs/mathematics.md §7 for affine ``Φ`` (``h_{·,2} = 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp

from asymptotics.balance import BalancePoint, BalancePoints, _balance, check_model
from asymptotics.bridge import compile_vector
from asymptotics.laplace import LocalExpansion, local_expansion
from asymptotics.symbols import exact_model, gamma, latex_block, population_symbol, t, x
from meanfield.errors import bad_value, check_finite_number, check_int
from meanfield.model import Model, exact


@dataclass(frozen=True, eq=False)
class LocalData:
    """Symbols of the local data at the balance point, their definitions in ``v`` and values.

    ``definitions`` maps each symbol to its expression in the balance symbols ``v_p`` (and
    ``t``); symbols whose definition vanishes identically are replaced by 0 in every formula.
    """

    A: tuple[sp.Symbol, ...]
    D: tuple[sp.Symbol, ...]
    h: dict[tuple[int, int], sp.Symbol]
    f: dict[tuple[int, int], sp.Symbol]
    psi: dict[tuple[int, int], sp.Symbol]
    phi: dict[tuple[int, int, int], sp.Symbol]
    definitions: dict[sp.Symbol, sp.Expr]

    @property
    def zero(self) -> dict[sp.Symbol, sp.Expr]:
        return {s: sp.Integer(0) for s, d in self.definitions.items() if d == 0}

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(s for s, d in self.definitions.items() if d != 0)


def local_data(model: Model, order: int, vs: tuple[sp.Symbol, ...]) -> LocalData:
    """Local data of every population at the balance symbols ``v`` (enough for ``order``)."""
    P, N = model.P, 2 * order
    ms = model.moment_symbols()
    m_at_v = {ms[q]: model.psi[q].subs(x, vs[q]) for q in range(P)}
    defs: dict[sp.Symbol, sp.Expr] = {}
    A, D = [], []
    h, f, psi, phi = {}, {}, {}, {}
    for p, name in enumerate(model.names):
        field_p = model.field(p)
        A.append(population_symbol("A", name, positive=True))
        defs[A[-1]] = sp.diff(field_p, x).subs(x, vs[p]).subs(m_at_v)
        D.append(population_symbol("D", name, positive=True))
        defs[D[-1]] = exact(model.populations[p].sigma) ** 2 / 2
        derivative = sp.diff(field_p, x)
        for k in range(2, N + 2):
            derivative = sp.diff(derivative, x)
            h[(p, k)] = population_symbol("h", name, k)
            defs[h[(p, k)]] = derivative.subs(x, vs[p]).subs(m_at_v)
        derivative = model.populations[p].drift
        for k in range(N):
            f[(p, k)] = population_symbol("f", name, k)
            defs[f[(p, k)]] = derivative.subs(x, vs[p])
            derivative = sp.diff(derivative, x)
        derivative = model.psi[p]
        for k in range(N + 1):
            psi[(p, k)] = population_symbol("psi", name, k)
            defs[psi[(p, k)]] = derivative.subs(x, vs[p])
            derivative = sp.diff(derivative, x)
        for r, source in enumerate(model.names):
            derivative = exact(model.g[p][r]) * model.phi[p][r]
            for k in range(N + 2):
                phi[(p, r, k)] = sp.Symbol(f"phi_{{{name}{source},{k}}}", real=True)
                defs[phi[(p, r, k)]] = derivative.subs(x, vs[p])
                derivative = sp.diff(derivative, x)
    defs = {s: (sp.Integer(0) if sp.expand(d) == 0 else d) for s, d in defs.items()}
    return LocalData(A=tuple(A), D=tuple(D), h=h, f=f, psi=psi, phi=phi, definitions=defs)


def correction_symbols(model: Model, order: int) -> dict[tuple[int, int], sp.Symbol]:
    """Unknowns ``m_{q,j}`` (coefficient of ``γ^{-j}`` in ``m_q``)."""
    return {(q, j): population_symbol("m", name, j) for q, name in enumerate(model.names)
            for j in range(1, order + 1)}


def specialise(generic: LocalExpansion, p: int, data: LocalData,
               corrections: dict[tuple[int, int], sp.Symbol], P: int) -> dict[sp.Symbol, sp.Expr]:
    """Substitution turning the generic local symbols into population ``p``'s data."""
    s = generic.symbols
    subs: dict[sp.Symbol, sp.Expr] = {s.a: data.A[p], s.D: data.D[p]}
    subs.update({sym: data.h[(p, k)] for k, sym in s.h.items()})
    subs.update({sym: data.f[(p, k)] for k, sym in s.f.items()})
    subs.update({sym: data.psi[(p, k)] for k, sym in s.psi.items()})
    for (k, j), sym in s.dH.items():
        subs[sym] = sum((data.phi[(p, r, k)] * corrections[(r, j)] for r in range(P)),
                        sp.Integer(0))
    zero = data.zero
    return {key: sp.sympify(value).xreplace(zero) for key, value in subs.items()}


@dataclass(frozen=True, eq=False)
class Derivation:
    """Staged symbolic solution (model-level, independent of the numeric balance point)."""

    data: LocalData
    corrections: dict[tuple[int, int], sp.Symbol]
    moment_solution: dict[tuple[int, int], sp.Expr]
    systems: dict[int, tuple[sp.Matrix, sp.Matrix]]
    mean: dict[tuple[int, int], sp.Expr]
    var: dict[tuple[int, int], sp.Expr]


@lru_cache(maxsize=32)
def derive(model: Model, order: int) -> Derivation:
    """Solve the self-consistency order by order (cached on the model)."""
    P = model.P
    generic = local_expansion(order)
    data = local_data(model, order, tuple(sp.Symbol(f"v_{n}", real=True) for n in model.names))
    corrections = correction_symbols(model, order)
    subs = [specialise(generic, p, data, corrections, P) for p in range(P)]
    solution: dict[tuple[int, int], sp.Expr] = {}
    systems: dict[int, tuple[sp.Matrix, sp.Matrix]] = {}
    mean, var = {}, {}
    for j in range(1, order + 1):
        unknowns = [corrections[(q, j)] for q in range(P)]
        equations = [sp.expand(generic.readout.get(2 * j, 0).xreplace(subs[q])) - unknowns[q]
                     for q in range(P)]
        matrix, rhs = sp.linear_eq_to_matrix(equations, unknowns)
        systems[j] = (matrix, rhs)
        values = matrix.LUsolve(rhs)
        for q in range(P):
            solution[(q, j)] = values[q]
        for p in range(P):
            mean[(p, j)] = generic.mean.get(2 * j, sp.Integer(0)).xreplace(subs[p])
            var[(p, j)] = generic.var.get(2 * j, sp.Integer(0)).xreplace(subs[p])
    return Derivation(data=data, corrections=corrections, moment_solution=solution,
                      systems=systems, mean=mean, var=var)


@dataclass(frozen=True, eq=False)
class StationaryExpansion:
    """Mean, variance and moments of the concentrated stationary state as series in ``1/γ``.

    Symbolic: ``mean[p]``, ``var[p]``, ``m[q]`` (SymPy series in ``γ`` whose coefficients are
    written with the local data and the moment corrections ``m_{q,j}``), ``moment_solution``
    (the solved ``m_{q,j}``), ``definitions`` (local data in terms of ``v``). Numeric: the
    coefficient arrays ``mean_coefficients``, ``var_coefficients``, ``m_coefficients`` of shape
    ``(order + 1, P)`` (row ``j`` multiplies ``γ^{-j}``), ``v``, ``mu``, ``A``, and
    ``predict_mean(γ)``, ``predict_var(γ)``, ``predict_m(γ)``.
    """

    model: Model
    order: int
    balance: BalancePoints
    point: BalancePoint
    derivation: Derivation = field(repr=False)
    mean: tuple[sp.Expr, ...]
    var: tuple[sp.Expr, ...]
    m: tuple[sp.Expr, ...]
    values: dict[sp.Symbol, float] = field(repr=False)
    mean_coefficients: np.ndarray
    var_coefficients: np.ndarray
    m_coefficients: np.ndarray

    @property
    def v(self) -> np.ndarray:
        return self.mean_coefficients[0]

    @property
    def mu(self) -> np.ndarray:
        """Coefficient of ``1/γ`` in the means."""
        return self.mean_coefficients[1]

    @property
    def A(self) -> np.ndarray:
        """``A_p = ∂_x h_p(v_p)`` (``var_p ≈ D_p/(γ A_p)``)."""
        return np.array([self.values[s] for s in self.derivation.data.A])

    @property
    def D(self) -> np.ndarray:
        return np.array(self.model.diffusion)

    @property
    def moment_solution(self) -> dict[tuple[int, int], sp.Expr]:
        return self.derivation.moment_solution

    @property
    def definitions(self) -> dict[sp.Symbol, sp.Expr]:
        return self.derivation.data.definitions

    def _series(self, coefficients: np.ndarray, gamma_: Any) -> np.ndarray:
        g = np.asarray(gamma_, dtype=float)
        if np.any(~np.isfinite(g)) or np.any(g <= 0):
            bad_value("gamma", gamma_, "couplings > 0")
        powers = g[..., None, None] ** -np.arange(self.order + 1)[:, None]
        return np.sum(coefficients * powers, axis=-2)

    def predict_mean(self, gamma: Any) -> np.ndarray:
        """``v + Σ_j μ_j γ^{-j}`` (shape ``gamma.shape + (P,)``)."""
        return self._series(self.mean_coefficients, gamma)

    def predict_var(self, gamma: Any) -> np.ndarray:
        """``Σ_j c_j γ^{-j}``; warns (``UserWarning``) where the prediction is not positive.

        At order 2, ``D/(γA) + c_2/γ²`` with ``c_2 < 0`` is positive only for ``γ > −c_2/c_1``:
        below that the expansion is not valid and the warning says to use ``order=1`` there.
        """
        out = self._series(self.var_coefficients, gamma)
        bad = ~(out > 0)
        if np.any(bad):
            import warnings

            g = np.broadcast_to(np.asarray(gamma, dtype=float)[..., None], out.shape)
            c1, c2 = self.var_coefficients[1], self.var_coefficients[-1]
            details = []
            for p, name in enumerate(self.model.names):
                if np.any(bad[..., p]):
                    worst = float(np.max(g[..., p][bad[..., p]]))
                    limit = (f"; order {self.order} needs gamma >> {-c2[p] / c1[p]:.3g}, use "
                             "order=1 (always positive) below" if self.order > 1
                             and c1[p] > 0 and c2[p] < 0 else "")
                    details.append(f"{name} at gamma={worst:g}{limit}")
            warnings.warn(f"the order-{self.order} expansion predicts a non-positive variance ("
                          + "; ".join(details) + "): it is not valid at these couplings",
                          UserWarning, stacklevel=2)
        return out

    def predict_m(self, gamma: Any) -> np.ndarray:
        return self._series(self.m_coefficients, gamma)

    def to_xarray(self) -> Any:
        import xarray as xr

        dims = ("power", "population")
        return xr.Dataset({"mean": (dims, self.mean_coefficients), "var": (dims, self.var_coefficients),
                           "m": (dims, self.m_coefficients)},
                          coords={"power": np.arange(self.order + 1), "population": list(self.model.names)},
                          attrs={"model": self.model.to_json(), "order": self.order,
                                 "meaning": "coefficient of gamma**-power"})

    def _repr_latex_(self) -> str:
        lines = []
        for p, name in enumerate(self.model.names):
            lines.append(rf"\mathrm{{mean}}_{{{name}}} &= {sp.latex(self.mean[p])}")
            lines.append(rf"\mathrm{{var}}_{{{name}}} &= {sp.latex(self.var[p])}")
        for (q, j), expr in self.moment_solution.items():
            lines.append(rf"{sp.latex(self.derivation.corrections[(q, j)])} &= {sp.latex(expr)}")
        return latex_block(lines)


def _numeric(derivation: Derivation, model: Model, point: BalancePoint,
             time: float) -> tuple[dict[sp.Symbol, float], np.ndarray, np.ndarray, np.ndarray, int]:
    P = model.P
    vs = tuple(sp.Symbol(f"v_{n}", real=True) for n in model.names)
    data = derivation.data
    local_syms = data.symbols
    evaluate: Callable = compile_vector([data.definitions[s] for s in local_syms], [*vs, t])
    values = dict(zip(local_syms, evaluate(*point.v, time).tolist(), strict=True))
    order = max((j for _, j in derivation.corrections), default=0)
    mean = np.zeros((order + 1, P))
    var = np.zeros((order + 1, P))
    m = np.zeros((order + 1, P))
    mean[0], m[0] = point.v, point.m
    known: dict[sp.Symbol, float] = {}
    for j in range(1, order + 1):
        args = [*local_syms, *known]
        known_values = [*values.values(), *known.values()]
        matrix, rhs = derivation.systems[j]  # solved numerically: no symbolic pivots
        system_fn = compile_vector([*matrix, *rhs], args)
        entries = system_fn(*known_values)
        m[j] = np.linalg.solve(entries[: P * P].reshape(P, P), entries[P * P:])
        known.update({derivation.corrections[(q, j)]: m[j, q] for q in range(P)})
        args = [*local_syms, *known]
        known_values = [*values.values(), *known.values()]
        mean[j] = compile_vector([derivation.mean[(p, j)] for p in range(P)], args)(*known_values)
        var[j] = compile_vector([derivation.var[(p, j)] for p in range(P)], args)(*known_values)
    return values, mean, var, m, order


def stationary_expansion(model: Model, *, order: int = 1, time: float = 0.0,
                         point: BalancePoint | None = None) -> StationaryExpansion:
    """Expansion of the concentrated stationary state near a balance point to ``O(γ^{-order})``.

    ``order`` 1 or 2; ``point`` defaults to the principal balance point of
    :func:`asymptotics.balance_points` (external inputs frozen at ``time``).
    """
    check_model(model)
    order = check_int("order", order, minimum=1)
    if order > 2:
        bad_value("order", order, "1 or 2")
    time = check_finite_number("time", time)
    model = exact_model(model)
    balance = _balance(model, time, 64)
    if not balance.concentrating:
        bad_value("model", model, "a concentrating model (fields h_p depending on x); constant "
                  "Φ gives a non-concentrating balance: see balance_points(model).multipliers")
    if point is None:
        point = balance.principal
    elif not isinstance(point, BalancePoint):
        bad_value("point", point, "an asymptotics.BalancePoint from balance_points(model).all")
    derivation = derive(model, order)
    values, mean_c, var_c, m_c, _ = _numeric(derivation, model, point, time)
    vs = tuple(sp.Symbol(f"v_{n}", real=True) for n in model.names)
    zero = sp.Integer(0)
    mean = tuple(vs[p] + sum((derivation.mean[(p, j)] / gamma**j for j in range(1, order + 1)), zero)
                 for p in range(model.P))
    var = tuple(sum((derivation.var[(p, j)] / gamma**j for j in range(1, order + 1)), zero)
                for p in range(model.P))
    m = tuple(derivation.data.psi[(q, 0)] + sum((derivation.corrections[(q, j)] / gamma**j
                                                  for j in range(1, order + 1)), zero)
              for q in range(model.P))
    return StationaryExpansion(model=model, order=order, balance=balance, point=point,
                               derivation=derivation, mean=mean, var=var, m=m, values=values,
                               mean_coefficients=mean_c, var_coefficients=var_c, m_coefficients=m_c)
