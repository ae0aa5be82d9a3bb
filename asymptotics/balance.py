r"""Early-behaviour field, balance manifold and balance points (docs/mathematics.md §4).

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
from typing import Any

import numpy as np
import scipy.optimize as so
import sympy as sp

from asymptotics.bridge import compile_scalar, compile_vector
from asymptotics.symbols import exact_model, latex_block, t, x
from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.model import Model, exact

ROOT_TOL = 1e-13


def check_model(model: Any) -> Model:
    """``model`` must be a :class:`meanfield.Model`."""
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def balance_symbols(model: Model) -> tuple[sp.Symbol, ...]:
    """Symbols ``v_p`` for the balance points."""
    return tuple(sp.Symbol(f"v_{name}", real=True) for name in model.names)


def is_concentrating(model: Model) -> bool:
    """True when every ``h_p`` depends on ``x``; False when none does; mixed models are rejected."""
    depends = [model.field(p).has(x) for p in range(model.P)]
    if all(depends):
        return True
    if not any(depends):
        return False
    bad_value("model", model, "populations whose fields h_p all depend on x (concentrating) or "
              f"all do not (non-concentrating balance); got {depends}")


@dataclass(frozen=True, eq=False)
class BalancePoint:
    """One balance point ``v`` with the moments ``m = Ψ(v)`` and its stability data."""

    v: np.ndarray
    m: np.ndarray
    slope: np.ndarray
    iteration_jacobian: np.ndarray
    residual: float

    @property
    def iteration_radius(self) -> float:
        """Spectral radius of the fixed-point iteration ``v ↦ T(v)``."""
        return float(np.max(np.abs(np.linalg.eigvals(self.iteration_jacobian))))

    @property
    def concentrating(self) -> bool:
        """Every ``∂_x h_p(v_p) > 0`` (each population collapses onto its point)."""
        return bool(np.all(self.slope > 0))

    @property
    def stable(self) -> bool:
        return self.concentrating and self.iteration_radius < 1

    def __repr__(self) -> str:
        return (f"BalancePoint(v={np.round(self.v, 10).tolist()}, slope="
                f"{np.round(self.slope, 6).tolist()}, radius={self.iteration_radius:.4g}, "
                f"{'stable' if self.stable else 'unstable'})")


@dataclass(frozen=True, eq=False)
class BalancePoints:
    """Balance manifold and balance points of a model (see the module docstring).

    ``field[p]`` is ``h_p(x; m, t)``; ``manifold`` the SymPy equations defining the balance
    manifold (in ``v`` when concentrating, in ``m`` otherwise); ``formula[p]`` the explicit
    ``v_p`` when ``h_p`` is affine in ``x`` (else ``None``); ``all`` every point found inside the
    domain (sorted by ``v``), ``principal`` the stable point with the smallest iteration radius
    (unstable points only if no stable one exists) and ``v`` its coordinates. In the
    non-concentrating case ``all`` is empty, ``moments`` holds the balanced ``m`` at ``time`` and
    ``multipliers[p]`` the formula for ``λ_p``.
    """

    model: Model
    time: float
    concentrating: bool
    field: tuple[sp.Expr, ...]
    symbols: tuple[sp.Symbol, ...]
    manifold: tuple[sp.Eq, ...]
    formula: tuple[sp.Expr | None, ...]
    iteration_jacobian: sp.Matrix | None
    all: tuple[BalancePoint, ...]
    moments: np.ndarray | None = None
    multipliers: tuple[sp.Expr, ...] = ()
    outside: tuple[np.ndarray, ...] = ()
    """Balance points found outside the domain (searched when none lies inside)."""
    _multiplier_fn: Callable[..., np.ndarray] | None = field(default=None, repr=False)

    @property
    def principal(self) -> BalancePoint:
        if not self.all and not self.concentrating:
            bad_value("model", self.model, "a concentrating model (this one has a "
                      "non-concentrating balance: use .moments and .multipliers)")
        if not self.all and self.outside:
            shown = [np.round(v, 6).tolist() for v in self.outside]
            bad_value("model", self.model, f"a balance point inside the domain {self.model.domain}:"
                      f" the balance point(s) v={shown} lie outside it, so the stationary mass "
                      "piles up on the wall instead of concentrating; widen the domain")
        if not self.all:
            bad_value("model", self.model, "a model with a balance point h_p(v_p) = 0 in its "
                      f"domain {self.model.domain} (none was found)")
        return min(self.all, key=lambda b: (not b.stable, b.iteration_radius, b.v.tolist()))

    @property
    def v(self) -> np.ndarray:
        """Coordinates ``v_p`` of the principal balance point."""
        return self.principal.v

    @property
    def stable(self) -> tuple[BalancePoint, ...]:
        return tuple(b for b in self.all if b.stable)

    def to_xarray(self) -> Any:
        """Every balance point found (``point`` × ``population``) with its stability data."""
        import xarray as xr

        pops = list(self.model.names)
        if not self.concentrating:
            return xr.Dataset({"m": (("population",), self.moments)},
                              coords={"population": pops},
                              attrs={"model": self.model.to_json(), "time": self.time,
                                     "concentrating": 0})
        dims = ("point", "population")
        return xr.Dataset(
            {"v": (dims, np.array([b.v for b in self.all])),
             "m": (dims, np.array([b.m for b in self.all])),
             "slope": (dims, np.array([b.slope for b in self.all])),
             "iteration_radius": (("point",), np.array([b.iteration_radius for b in self.all])),
             "stable": (("point",), np.array([b.stable for b in self.all]))},
            coords={"point": np.arange(len(self.all)), "population": pops},
            attrs={"model": self.model.to_json(), "time": self.time, "concentrating": 1})

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


def _roots_1d(residual: Callable, jac: Callable, lo: float, hi: float) -> list[np.ndarray]:
    grid = np.linspace(lo, hi, 4001)
    values = np.array([residual(np.array([v]))[0] for v in grid])
    roots = []
    for i in range(grid.size - 1):
        if values[i] == 0:
            roots.append(grid[i])
        elif values[i] * values[i + 1] < 0:
            roots.append(so.brentq(lambda v: residual(np.array([v]))[0], grid[i], grid[i + 1],
                                   xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))
    if values[-1] == 0:
        roots.append(grid[-1])
    return [np.array([r]) for r in roots]


def _roots_nd(residual: Callable, jac: Callable, lo: float, hi: float, P: int,
              starts: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    candidates = [np.full(P, (lo + hi) / 2), *(lo + (hi - lo) * rng.random((starts, P)))]
    found = []
    for start in candidates:
        sol = so.root(residual, start, jac=jac, method="hybr", options={"xtol": 1e-14})
        if sol.success and np.all(np.isfinite(sol.x)):
            found.append(sol.x)
    return found


def _polish(residual: Callable, jac: Callable, v: np.ndarray) -> np.ndarray:
    for _ in range(6):
        try:
            step = np.linalg.solve(jac(v), -residual(v))
        except np.linalg.LinAlgError:
            break
        v = v + step
        if np.max(np.abs(step)) < 1e-16 * max(1.0, float(np.max(np.abs(v)))):
            break
    return v


@lru_cache(maxsize=64)
def _balance(model: Model, time: float, starts: int) -> BalancePoints:
    P = model.P
    fields = tuple(model.field(p) for p in range(P))
    ms = model.moment_symbols()
    vs = balance_symbols(model)
    if not is_concentrating(model):
        return _non_concentrating(model, time, fields, ms, vs)
    at_v = [fields[p].subs({x: vs[p], **{ms[q]: model.psi[q].subs(x, vs[q]) for q in range(P)}})
            for p in range(P)]
    manifold = tuple(sp.Eq(h, 0) for h in at_v)
    formula = []
    for p in range(P):
        h = sp.expand(fields[p])
        if sp.Poly(h, x).degree() == 1 if h.is_polynomial(x) else False:
            slope, offset = h.coeff(x, 1), h.coeff(x, 0)
            subs = {ms[q]: model.psi[q].subs(x, vs[q]) for q in range(P)}
            formula.append((-offset / slope).subs(subs))
        else:
            formula.append(None)
    slopes = [sp.diff(fields[p], x) for p in range(P)]
    m_at_v = {ms[q]: model.psi[q].subs(x, vs[q]) for q in range(P)}
    slope_v = [s.subs(x, vs[p]).subs(m_at_v) for p, s in enumerate(slopes)]
    iteration = sp.Matrix(P, P, lambda p, r: -sp.diff(fields[p], ms[r]).subs(x, vs[p]).subs(m_at_v)
                          * sp.diff(model.psi[r], x).subs(x, vs[r]) / slope_v[p])
    args = [*vs, t]
    res_fn = compile_vector(at_v, args)
    jac_fn = compile_vector(list(sp.Matrix(at_v).jacobian(vs)), args)
    slope_fn = compile_vector(slope_v, args)
    iter_fn = compile_vector(list(iteration), args)

    def residual(v: np.ndarray) -> np.ndarray:
        return res_fn(*v, time)

    def jac(v: np.ndarray) -> np.ndarray:
        return jac_fn(*v, time).reshape(P, P)

    lo, hi = model.domain
    raw = _roots_1d(residual, jac, lo, hi) if P == 1 else _roots_nd(residual, jac, lo, hi, P, starts)
    points: list[BalancePoint] = []
    span = hi - lo
    for root in raw:
        v = _polish(residual, jac, np.asarray(root, float))
        if not (np.all(v >= lo) and np.all(v <= hi)):
            continue
        r = float(np.max(np.abs(residual(v))))
        if r > ROOT_TOL * max(1.0, span):
            continue
        if any(np.max(np.abs(v - b.v)) < 1e-8 * max(1.0, span) for b in points):
            continue
        m_values = np.array([float(model.psi[q].subs(x, v[q])) for q in range(P)])
        points.append(BalancePoint(v=v, m=m_values, slope=slope_fn(*v, time),
                                   iteration_jacobian=iter_fn(*v, time).reshape(P, P),
                                   residual=r))
    points.sort(key=lambda b: b.v.tolist())
    outside: list[np.ndarray] = []
    if not points:  # diagnose: balance points beyond the ends of the domain
        wide = (lo - 10 * span, hi + 10 * span)
        with np.errstate(all="ignore"):
            raw = (_roots_1d(residual, jac, *wide) if P == 1 else
                   _roots_nd(residual, jac, *wide, P, starts))
        for root in raw:
            v = _polish(residual, jac, np.asarray(root, float))
            with np.errstate(all="ignore"):
                r = float(np.max(np.abs(residual(v))))
                det = float(np.linalg.det(jac(v)))  # 0 where the readouts underflow: no root
            if (np.isfinite(r) and r <= ROOT_TOL * max(1.0, span) and np.isfinite(det)
                    and det != 0 and not
                    any(np.max(np.abs(v - w)) < 1e-8 * max(1.0, span) for w in outside)):
                outside.append(v)
    return BalancePoints(model=model, time=time, concentrating=True, field=fields, symbols=vs,
                         manifold=manifold, formula=tuple(formula), iteration_jacobian=iteration,
                         all=tuple(points), outside=tuple(outside))


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
    e_fn = compile_vector(list(e), [t])
    moments = -np.linalg.solve(np.array(K.tolist(), dtype=float), e_fn(time))
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

    return BalancePoints(model=model, time=time, concentrating=False, field=fields, symbols=vs,
                         manifold=manifold, formula=(None,) * P, iteration_jacobian=None, all=(),
                         moments=moments, multipliers=tuple(lams), _multiplier_fn=multipliers)


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64) -> BalancePoints:
    """Balance manifold and every balance point of ``model`` (external inputs frozen at ``time``).

    ``starts`` random (seeded) starts of Newton's method are used for P ≥ 2; P = 1 scans the
    domain. See :class:`BalancePoints`.
    """
    check_model(model)
    time = check_finite_number("time", time)
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        bad_value("starts", starts, "an integer >= 1")
    return _balance(exact_model(model), time, starts)
