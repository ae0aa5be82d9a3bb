"""Symbols, safe parsing of user expressions, and checks of expressions on the domain.

Strings are parsed by the expression language of :mod:`meanfield.expression_language` (a walk of
Python's ``ast`` against a whitelist, never ``eval`` or ``sympify``): numbers, ``x``, ``t``, ``pi``,
``E``, ``+ - * / ** ^`` and the functions of :func:`allowed_names`, with bounded size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from meanfield.errors import bad_type, bad_value
from meanfield.expression_language import Function, parse_expression

x = sp.Symbol("x", real=True)
"""The state variable of an agent."""
t = sp.Symbol("t", real=True, nonnegative=True)
"""Time (used by time-dependent external inputs)."""


def sigmoid(arg: Any = x, threshold: Any = 0, slope: Any = 1) -> sp.Expr:
    r"""Logistic activation :math:`S(v) = 1/(1 + e^{-s(v-\theta)})`, written with ``tanh``.

    The ``tanh`` form, :math:`(1 + \tanh(s(v-\theta)/2))/2`, is the same function and never
    overflows when evaluated numerically.
    """
    arg, threshold, slope = (as_expression(v, name) for v, name in
                             ((arg, "arg"), (threshold, "threshold"), (slope, "slope")))
    return (1 + sp.tanh(slope * (arg - threshold) / 2)) / 2


_FUNCTIONS: dict[str, Function] = {
    "exp": Function(sp.exp), "log": Function(sp.log, 1, 2), "sqrt": Function(sp.sqrt),
    "tanh": Function(sp.tanh), "sinh": Function(sp.sinh), "cosh": Function(sp.cosh),
    "sin": Function(sp.sin), "cos": Function(sp.cos), "tan": Function(sp.tan),
    "atan": Function(sp.atan), "erf": Function(sp.erf), "Abs": Function(sp.Abs),
    "abs": Function(sp.Abs), "Min": Function(sp.Min, 1, 10), "Max": Function(sp.Max, 1, 10),
    "Piecewise": Function(sp.Piecewise, 1, 10), "Heaviside": Function(sp.Heaviside, 1, 2),
    "sigmoid": Function(sigmoid, 1, 3),
}
_CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}


def allowed_names() -> tuple[str, ...]:
    """Names a string expression may use."""
    return ("x", "t", *sorted([*_FUNCTIONS, *_CONSTANTS]))


def parse(text: str, name: str = "expression") -> sp.Expr:
    """Parse ``text`` with the expression language of :mod:`meanfield.expression_language`.

    Numbers, ``x``, ``t``, ``pi``, ``E``, ``+ - * / **`` (``^`` is power too) and calls of
    :func:`allowed_names` functions; nothing is evaluated as Python, every bound is checked while
    the expression is built, and a refusal is a ``ValueError`` naming ``name``.
    """
    symbols = {"x": x, "t": t, **_CONSTANTS}
    expr = parse_expression(text, name, symbols=symbols, functions=_FUNCTIONS)
    return as_expression(expr, name)


def as_expression(value: Any, name: str = "expression") -> sp.Expr:
    """Turn a number, string or SymPy expression into a SymPy expression (strings parsed safely)."""
    if isinstance(value, str):
        return parse(value, name)
    if isinstance(value, bool):
        bad_type(name, value, "a number, a string or a SymPy expression")
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            bad_value(name, value, "a finite number")
        return sp.Rational(repr(float(value)))  # exact decimal: 0.8 -> 4/5
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            bad_type(name, value, "a SymPy expression (not a relation or set)")
        if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            bad_value(name, value, "a finite expression")
        if value.has(sp.I):
            bad_value(name, value, "a real expression (no imaginary unit)")
        return value
    bad_type(name, value, "a number, a string or a SymPy expression")


def check_symbols(expr: sp.Expr, name: str, allowed: tuple[sp.Symbol, ...] = (x,)) -> None:
    """Reject expressions that depend on any symbol outside ``allowed``."""
    extra = expr.free_symbols - set(allowed)
    if extra:
        names = ", ".join(sorted(str(s) for s in extra))
        allowed_text = ", ".join(str(s) for s in allowed) or "no symbol (a constant)"
        bad_value(name, expr, f"expressions in {allowed_text} only (found {names})")


def check_on_domain(expr: sp.Expr, name: str, domain: tuple[float, float], *,
                    samples: int = 2001, nonnegative: bool = False) -> None:
    """Evaluate ``expr(x)`` on a dense sample of ``domain``; reject complex, infinite, NaN values."""
    fn = sp.lambdify(x, expr, modules="numpy", docstring_limit=0)
    grid = np.linspace(domain[0], domain[1], samples)
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(fn(grid) * np.ones_like(grid))
        except Exception as err:  # lambdify may fail for exotic functions
            bad_value(name, expr, f"an expression that evaluates on the domain ({err})")
    if np.iscomplexobj(values) and np.any(np.abs(values.imag) > 0):
        bad_value(name, expr, f"a real expression on the domain {domain}")
    values = np.real(values).astype(float)
    bad = ~np.isfinite(values)
    if bad.any():
        where = grid[np.argmax(bad)]
        bad_value(name, expr, f"an expression finite on the whole domain {domain} "
                  f"(not finite at x={where:.6g})")
    if nonnegative and values.min() < 0:
        bad_value(name, expr, f"an expression >= 0 on the domain {domain}")
