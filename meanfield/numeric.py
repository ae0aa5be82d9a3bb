r"""The numeric view of a model: one explicit lambdify step, then plain vectorised callables.

For every population ``p`` and coupling source ``j`` (the P populations, then the external
inputs) it holds ``f_p``, ``Φ_pj``, ``Ψ_q`` and the antiderivatives ``F_p`` (``F_p' = f_p``) and
``G_pj`` (``G_pj' = Φ_pj``), in closed form when SymPy finds one (checked by differentiating back),
otherwise by composite Gauss–Legendre quadrature between the requested points. The potential is

.. math:: U_p(x, t) = -F_p(x) + \gamma \sum_j g_{pj}\, m_j(t)\, G_{pj}(x),
          \qquad \text{drift} = -\partial_x U_p .
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from meanfield.expressions import t, x
from meanfield.model import Model

ArrayFn = Callable[[np.ndarray], np.ndarray]

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)
_PANEL = 0.05  # longest sub-interval of the composite Gauss–Legendre rule


def _vectorise(expr: sp.Expr, symbol: sp.Symbol = x) -> ArrayFn:
    fn = sp.lambdify(symbol, expr, modules="numpy", docstring_limit=0)

    def call(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        with np.errstate(over="ignore", under="ignore"):
            out = fn(values)
        return np.broadcast_to(np.asarray(out, dtype=float), values.shape).copy()

    call.expr = expr  # type: ignore[attr-defined]  # what it evaluates (printing it costs ~1 ms)
    return call


@lru_cache(maxsize=512)
def derivative(expr: sp.Expr, order: int = 1) -> ArrayFn:
    """The vectorised ``d^order expr / dx^order`` (exact: SymPy differentiates, then lambdify)."""
    return _vectorise(sp.diff(expr, x, order))


@dataclass(frozen=True)
class Antiderivative:
    """``F(x) = ∫_{x0}^{x} expr``: closed form when available, else Gauss–Legendre per interval."""

    expr: sp.Expr
    closed_form: sp.Expr | None
    x0: float
    _closed: ArrayFn | None = field(init=False, repr=False, compare=False)
    _integrand: ArrayFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        closed = None if self.closed_form is None else _vectorise(self.closed_form)
        object.__setattr__(self, "_closed", closed)
        object.__setattr__(self, "_integrand", _vectorise(self.expr))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        if self._closed is not None:
            return self._closed(points) - float(self._closed(np.array([self.x0]))[0])
        flat = points.ravel()
        order = np.argsort(flat, kind="stable")
        knots = np.concatenate([[self.x0], flat[order]])
        increments = self.integrate_between(knots[:-1], knots[1:])
        out = np.empty_like(flat)
        out[order] = np.cumsum(increments)
        return out.reshape(points.shape)

    def integrate_between(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``∫_left^right expr`` for each pair (exact for closed forms, else composite 8-point Gauss)."""
        left, right = np.asarray(left, float), np.asarray(right, float)
        if self._closed is not None:
            return self._closed(right) - self._closed(left)
        integrand = self._integrand
        if left.size == 0:
            return np.zeros_like(left)
        panels = int(min(1000, max(1, np.ceil(np.max(np.abs(right - left)) / _PANEL))))
        total = np.zeros(np.broadcast(left, right).shape)
        for k in range(panels):
            a = left + (right - left) * (k / panels)
            b = left + (right - left) * ((k + 1) / panels)
            half, mid = (b - a) / 2, (b + a) / 2
            nodes = mid[..., None] + half[..., None] * _GAUSS_NODES
            total += half * (integrand(nodes) @ _GAUSS_WEIGHTS)
        return total


SYMBOLIC_MAX_DEGREE = 100
"""Polynomials up to this degree are integrated exactly (expanded first)."""
SYMBOLIC_MAX_OPS = 24
"""Other expressions go to SymPy's integrator only when this small (operations counted)."""
SYMBOLIC_MAX_POWER = 4
"""... and when every numeric power in them (of x or of a function) is at most this."""
SYMBOLIC_MAX_TERMS = 8
"""... and when they are a sum of at most this many terms (each is integrated separately)."""


def _degree_bound(expr: sp.Expr) -> int | None:
    """An upper bound on the degree in ``x`` of a polynomial expression, without expanding it."""
    if not expr.has(x):
        return 0
    if expr == x:
        return 1
    if isinstance(expr, sp.Add):
        degrees = [_degree_bound(a) for a in expr.args]
        return None if None in degrees else max(degrees)
    if isinstance(expr, sp.Mul):
        degrees = [_degree_bound(a) for a in expr.args]
        return None if None in degrees else sum(degrees)
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp >= 0:
        base = _degree_bound(expr.base)
        return None if base is None else base * int(expr.exp)
    return None


def symbolic_is_cheap(expr: sp.Expr) -> bool:
    """Whether SymPy may integrate ``expr`` symbolically without risking a long search.

    Polynomials of degree <= :data:`SYMBOLIC_MAX_DEGREE`; other expressions only when small, with
    low powers, few terms and no function of a function (``sin(x)**20`` alone takes SymPy minutes,
    ``exp(sin(x))`` has no closed form). Everything else is integrated by quadrature.
    """
    if expr.is_polynomial(x):
        degree = _degree_bound(expr)
        return degree is not None and degree <= SYMBOLIC_MAX_DEGREE
    if sp.count_ops(expr) > SYMBOLIC_MAX_OPS or len(sp.Add.make_args(expr)) > SYMBOLIC_MAX_TERMS:
        return False
    for power in expr.atoms(sp.Pow):
        if power.exp.is_Number and abs(power.exp) > SYMBOLIC_MAX_POWER:
            return False
    return not any(arg.atoms(sp.Function) for fn in expr.atoms(sp.Function) for arg in fn.args)


@lru_cache(maxsize=512)
def antiderivative(expr: sp.Expr, x0: float) -> Antiderivative:
    """Antiderivative of ``expr`` in ``x`` vanishing at ``x0`` (closed form checked by d/dx).

    The closed form is sought only when :func:`symbolic_is_cheap`; otherwise (and when SymPy finds
    none) ``closed_form`` is ``None`` and composite Gauss–Legendre quadrature is used.
    """
    closed = None
    if not symbolic_is_cheap(expr):
        return Antiderivative(expr=expr, closed_form=None, x0=x0)
    if expr.is_polynomial(x) or not expr.has(x):
        closed = sp.integrate(sp.expand(expr), x)
    else:
        try:
            candidate = sp.integrate(expr, x, manual=True)
        except Exception:  # SymPy's integrators raise various errors on hard input
            candidate = None
        if candidate is not None and not candidate.has(sp.Integral):
            probe = np.linspace(x0 - 1.0, x0 + 1.0, 7)
            try:
                with np.errstate(all="ignore"):
                    diff = _vectorise(sp.diff(candidate, x))(probe) - _vectorise(expr)(probe)
            except Exception:  # e.g. DiracDelta in the derivative: no numeric check possible
                diff = np.array([np.nan])
            if np.all(np.isfinite(diff)) and np.max(np.abs(diff)) < 1e-10:
                closed = candidate
    return Antiderivative(expr=expr, closed_form=closed, x0=x0)


@dataclass(frozen=True, eq=False)
class NumericModel:
    """Vectorised callables of a :class:`Model` (build once with :func:`numeric`).

    ``g`` is P×J with J = P + K (populations, then the K external inputs); ``phi[p][j]`` and
    ``G[p][j]`` follow the same order. ``external_m(t)`` gives the K frozen moments.
    """

    model: Model
    f: tuple[ArrayFn, ...]
    F: tuple[Antiderivative, ...]
    phi: tuple[tuple[ArrayFn, ...], ...]
    G: tuple[tuple[Antiderivative, ...], ...]
    psi: tuple[ArrayFn, ...]
    g: np.ndarray
    D: np.ndarray
    initial: tuple[ArrayFn, ...]
    external: tuple[Callable[[float], float], ...]

    @property
    def P(self) -> int:
        return self.model.P

    @property
    def J(self) -> int:
        return self.g.shape[1]

    def external_m(self, time: float = 0.0) -> np.ndarray:
        """Moments of the external inputs at ``time``."""
        return np.array([float(fn(time)) for fn in self.external])

    def all_moments(self, m: np.ndarray, time: float = 0.0) -> np.ndarray:
        """Population moments followed by the external ones: the J-vector ``m_j``."""
        return np.concatenate([np.asarray(m, float), self.external_m(time)])

    def psi_derivative(self, q: int, order: int = 1) -> ArrayFn:
        """The vectorised ``d^order Ψ_q / dx^order`` (exact derivative of the read-out)."""
        return derivative(self.model.psi[q], order)

    def field_functions(self, p: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """``(h_p, ∂_x h_p)`` as fast callables of ``(x, m_1, …, m_J)``.

        ``h_p(x; m) = Σ_j g_pj Φ_pj(x) m_j`` with the J moments passed as separate scalars (the
        populations', then the external inputs'; see :meth:`all_moments`), for Newton iterations
        that evaluate the field at many moments.
        """
        cached = self.__dict__.get("_fields")
        if cached is None:
            cached = all_field_functions(self.model)
            object.__setattr__(self, "_fields", cached)
        return cached[p]

    def field(self, p: int, points: np.ndarray, m: np.ndarray, time: float = 0.0) -> np.ndarray:
        """``h_p(x) = Σ_j g_pj Φ_pj(x) m_j``."""
        mj = self.all_moments(m, time)
        return sum((self.g[p, j] * mj[j] * self.phi[p][j](points) for j in range(self.J)),
                   np.zeros_like(np.asarray(points, float)))

    def table(self, points: np.ndarray) -> np.ndarray:
        """``[f_p, Φ_p0, …, Φ_p(J−1), Ψ_p]`` at ``points[p]`` (P, N) for every ``p``: (P, J + 2, N).

        One lambdified call per distinct expression of the model, on the stacked points of
        every population that uses it (``Φ_pj`` is 0 where ``g_pj = 0``; powers printed as
        products), for solvers that evaluate the model at new points every step.
        """
        points = np.asarray(points, dtype=float)
        out = np.empty((self.P, self.J + 2, points.shape[-1]))
        groups = self.__dict__.get("_table")
        if groups is None:  # compiled on first use, kept with this numeric view
            groups = _table_groups(self.model)
            object.__setattr__(self, "_table", groups)
        with np.errstate(over="ignore", under="ignore"):
            for function, rows, columns in groups:
                if rows is None:  # every population, the same column
                    out[:, columns] = function(points)
                else:
                    out[rows, columns] = function(points[rows])
        return out

    def potential(self, p: int, points: np.ndarray, m: np.ndarray, gamma: float,
                  time: float = 0.0) -> np.ndarray:
        """``U_p(x) = -F_p(x) + γ Σ_j g_pj m_j G_pj(x)``."""
        mj = self.all_moments(m, time)
        out = -self.F[p](points)
        for j in range(self.J):
            if self.g[p, j] != 0 and mj[j] != 0:
                out = out + gamma * self.g[p, j] * mj[j] * self.G[p][j](points)
        return out


def field_functions(model: Model, p: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(h_p, ∂_x h_p)`` of ``model`` as callables of ``(x, m_1, …, m_J)`` (compiled once per
    distinct ``(Φ_p, g_p)``: the cache is keyed by the expressions, not by the model, whose hash
    prints it, ~1.5 ms)."""
    phis = (*model.phi[p], *(inp.phi[p] for inp in model.inputs))
    g = (*model.g[p], *(inp.g[p] for inp in model.inputs))
    return _field_pair(tuple(sp.sympify(e) for e in phis), tuple(float(v) for v in g))


def all_field_functions(model: Model) -> tuple[tuple[Callable[..., Any], Callable[..., Any]], ...]:
    """:func:`field_functions` of every population."""
    return tuple(field_functions(model, p) for p in range(model.P))


@lru_cache(maxsize=256)
def _field_pair(phis: tuple[sp.Expr, ...], g: tuple[float, ...]
                ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    symbols = sp.symbols(f"_m0:{len(phis)}", real=True)
    expr = sum((sp.Float(g[j]) * phis[j] * symbols[j] for j in range(len(phis)) if g[j] != 0),
               sp.Integer(0))
    return (sp.lambdify((x, *symbols), expr, modules="numpy", docstring_limit=0),
            sp.lambdify((x, *symbols), sp.diff(expr, x), modules="numpy", docstring_limit=0))


class _ProductPrinter(NumPyPrinter):
    """numpy code with every power ``u**k``, ``2 ≤ k ≤ 8``, printed as the product
    ``(u*u*…*u)``: numpy evaluates ``x**3`` elementwise through ``pow``, ~30× slower."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        if expr.exp.is_Integer and 2 <= int(expr.exp) <= 8:
            return "(" + "*".join([f"({self._print(expr.base)})"] * int(expr.exp)) + ")"
        return super()._print_Pow(expr, rational=rational)


def _table_groups(model: Model) -> tuple[tuple[Callable[..., Any], Any, Any], ...]:
    """``[f_p, Φ_pj (g_pj ≠ 0, else 0), Ψ_p]`` over ``p``, grouped by expression: one
    lambdified function per distinct expression of ``x`` with the ``(rows, columns)`` of the
    table it fills (populations with the same drift, the same ``Φ_pj`` or the same read-out
    share one evaluation on the stacked points of their windows; ``rows`` is ``None`` and
    ``columns`` one index when every population uses it in the same column). Compiled once
    per distinct table of expressions."""
    table = []
    for p, pop in enumerate(model.populations):
        phis = [*model.phi[p], *(inp.phi[p] for inp in model.inputs)]
        g = [*model.g[p], *(inp.g[p] for inp in model.inputs)]
        table.append(tuple(sp.sympify(e) for e in (
            pop.drift, *(phi if float(gj) != 0 else sp.Integer(0)
                         for phi, gj in zip(phis, g, strict=True)), model.psi[p])))
    return _compiled_groups(tuple(table))


@lru_cache(maxsize=64)
def _compiled_groups(table: tuple[tuple[sp.Expr, ...], ...]
                     ) -> tuple[tuple[Callable[..., Any], Any, Any], ...]:
    """:func:`_table_groups` of the expressions ``table[p][k]`` (the cached work)."""
    groups: dict[sp.Expr, list[tuple[int, int]]] = {}
    for p, row in enumerate(table):
        for k, entry in enumerate(row):
            groups.setdefault(entry, []).append((p, k))
    out = []
    for expression, places in groups.items():
        rows, columns = (np.array(index) for index in zip(*places, strict=True))
        function = sp.lambdify(x, expression, modules="numpy", docstring_limit=0,
                               printer=_ProductPrinter)
        if np.array_equal(rows, np.arange(len(table))) and np.all(columns == columns[0]):
            out.append((function, None, int(columns[0])))
        else:
            out.append((function, rows[:, None], columns[:, None]))
    return tuple(out)


COEFFICIENTS = sp.IndexedBase("c")
"""The symbol of the frozen coefficient vector ``c`` in the compiled coupling functions."""


@dataclass(frozen=True)
class PopulationExpressions:
    """The pieces of one population for the network kernels: ``f``, ``Σ c_j Φ_j``, ``Σ c_j Φ_j'``, ``Ψ``.

    ``coupling`` and ``stiffness`` are functions of ``x`` and the coefficient vector ``c``
    (:data:`COEFFICIENTS`); ``drift`` and ``readout`` of ``x`` alone.
    """

    drift: sp.Expr
    coupling: sp.Expr
    stiffness: sp.Expr
    readout: sp.Expr
    sigma: float

    @property
    def affine(self) -> bool:
        """``Φ_pj`` affine in ``x`` for every ``j``: the stiffness ``κ`` does not depend on ``x``."""
        return not self.stiffness.has(x)

    def compiled(self, part: str, modules: Any = "numpy") -> Callable[..., Any]:
        """The lambdified ``part`` (``"drift"``, ``"coupling"``, ``"stiffness"`` or ``"readout"``).

        Called as ``fn(x)`` for the drift and the read-out, ``fn(x, c)`` for the coupling and the
        stiffness; ``modules`` as for :func:`sympy.lambdify` (numba passes its math replacements).
        """
        if part not in ("drift", "coupling", "stiffness", "readout"):
            raise ValueError(f"part must be 'drift', 'coupling', 'stiffness' or 'readout', got {part!r}")
        args = (x, COEFFICIENTS) if part in ("coupling", "stiffness") else (x,)
        return sp.lambdify(args, getattr(self, part), modules=modules, docstring_limit=0)


def population_expressions(model: Model) -> tuple[PopulationExpressions, ...]:
    """The per-population expressions of ``model`` (columns: populations, then external inputs)."""
    out = []
    for p, pop in enumerate(model.populations):
        phis = [*model.phi[p], *(inp.phi[p] for inp in model.inputs)]
        coupling = sp.Add(*(COEFFICIENTS[j] * phi for j, phi in enumerate(phis)))
        stiffness = sp.Add(*(COEFFICIENTS[j] * sp.diff(phi, x) for j, phi in enumerate(phis)))
        out.append(PopulationExpressions(pop.drift, coupling, stiffness, model.psi[p], pop.sigma))
    return tuple(out)


def numeric(model: Model) -> NumericModel:
    """The explicit lambdify step: compile every expression of ``model`` once."""
    a, _ = model.domain
    P, inputs = model.P, model.inputs
    phis = [[*model.phi[p], *(inp.phi[p] for inp in inputs)] for p in range(P)]
    g = np.array([[*model.g[p], *(inp.g[p] for inp in inputs)] for p in range(P)], dtype=float)

    return NumericModel(
        model=model,
        f=tuple(_vectorise(pop.drift) for pop in model.populations),
        F=tuple(antiderivative(pop.drift, a) for pop in model.populations),
        phi=tuple(tuple(_vectorise(e) for e in row) for row in phis),
        G=tuple(tuple(antiderivative(e, a) for e in row) for row in phis),
        psi=tuple(_vectorise(e) for e in model.psi),
        g=g,
        D=np.array(model.diffusion, dtype=float),
        initial=tuple(_vectorise(e) for e in model.initial),
        external=external_functions(model),
    )


@dataclass(frozen=True, eq=False)
class PointwiseModel:
    """Scalar callables of a model for root finding (balance points): cheap, no antiderivatives.

    ``h[p]``, ``dh[p]`` as :func:`field_functions`; ``phi[p][q]``, ``psi[q]``, ``dpsi[q]`` (the
    exact ``Ψ_q'``) of one ``x``; ``g`` (P, P) the population couplings; ``external`` the input
    moments as functions of ``t``.
    """

    h: tuple[Callable[..., Any], ...]
    dh: tuple[Callable[..., Any], ...]
    phi: tuple[tuple[Callable[[float], float], ...], ...]
    psi: tuple[Callable[[float], float], ...]
    dpsi: tuple[Callable[[float], float], ...]
    g: np.ndarray
    external: tuple[Callable[[float], float], ...]


@lru_cache(maxsize=64)
def pointwise(model: Model) -> PointwiseModel:
    """The :class:`PointwiseModel` of ``model`` (compiled once per model)."""
    pairs = [field_functions(model, p) for p in range(model.P)]

    def one(expr: sp.Expr) -> Callable[[float], float]:
        return sp.lambdify(x, expr, modules="numpy", docstring_limit=0)

    return PointwiseModel(
        h=tuple(h for h, _ in pairs), dh=tuple(dh for _, dh in pairs),
        phi=tuple(tuple(one(e) for e in row) for row in model.phi),
        psi=tuple(one(e) for e in model.psi), dpsi=tuple(one(sp.diff(e, x)) for e in model.psi),
        g=np.array(model.g, dtype=float), external=external_functions(model))


def external_functions(model: Model) -> tuple[Callable[[float], float], ...]:
    """The moments ``m_k(t)`` of the external inputs as functions of the slow time."""
    def one(expr: sp.Expr) -> Callable[[float], float]:
        return sp.lambdify(t, expr, modules="math", docstring_limit=0) if expr.has(t) else (
            lambda _time, value=float(expr): value)

    return tuple(one(inp.m) for inp in model.inputs)
