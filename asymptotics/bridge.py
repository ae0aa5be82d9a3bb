"""The one explicit lambdify step between the symbolic derivations and numbers.

Every numeric callable of :mod:`asymptotics` is made here, from SymPy expressions and an
ordered list of argument symbols, with common-subexpression elimination.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp


def compile_vector(exprs: Sequence[sp.Expr], args: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """``fn(*values) -> array of len(exprs)`` (values broadcast; numpy back end)."""
    exprs = [sp.sympify(e) for e in exprs]
    fn = sp.lambdify(list(args), exprs, modules="numpy", cse=True)

    def call(*values: object) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            out = fn(*values)
        shape = np.broadcast_shapes(*(np.shape(v) for v in values)) if values else ()
        return np.array([np.broadcast_to(np.asarray(o, dtype=float), shape) for o in out])

    return call


def compile_scalar(expr: sp.Expr, args: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """``fn(*values) -> array`` for one expression (broadcast over the values)."""
    vector = compile_vector([expr], args)
    return lambda *values: vector(*values)[0]


@dataclass(frozen=True, eq=False)
class Coefficient:
    """A lambdified coefficient ``expr(y; c, m, dc, t)`` of the rescaled equation.

    Call as ``coef(y, c=..., m=..., dc=0.0, t=0.0)`` with ``c`` and ``m`` arrays of length P
    (balance points and moments of every population), ``dc`` the velocity ``c_p'(t)`` of the
    population the coefficient belongs to and ``y`` any array.
    """

    expr: sp.Expr
    args: tuple[sp.Symbol, ...]
    population: int
    P: int
    _fn: Callable[..., np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fn", compile_scalar(self.expr, self.args))

    def __call__(self, y: np.ndarray, *, c: Sequence[float], m: Sequence[float],
                 dc: float = 0.0, t: float = 0.0) -> np.ndarray:
        c_arr = np.asarray(c, dtype=float).reshape(self.P)
        m_arr = np.asarray(m, dtype=float).reshape(self.P)
        y_arr = np.asarray(y, dtype=float)
        return self._fn(y_arr, float(t), float(c_arr[self.population]), *m_arr, float(dc))
