"""Symbols, safe parsing of user expressions, and checks of expressions on the domain.

Strings are parsed with SymPy's ``parse_expr`` after every name in them has been checked against
a whitelist (functions and the symbols ``x`` and ``t``); no other name reaches the parser.
"""

from __future__ import annotations

import io
import keyword
import tokenize
from typing import Any

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from meanfield.errors import bad_type, bad_value

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


_FUNCTIONS: dict[str, Any] = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh,
    "cosh": sp.cosh, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "atan": sp.atan,
    "erf": sp.erf, "Abs": sp.Abs, "abs": sp.Abs, "Min": sp.Min, "Max": sp.Max,
    "Piecewise": sp.Piecewise, "Heaviside": sp.Heaviside, "sigmoid": sigmoid,
    "pi": sp.pi, "E": sp.E,
}
_PARSER_NAMES = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
                 "Symbol": sp.Symbol}


def allowed_names() -> tuple[str, ...]:
    """Names a string expression may use."""
    return ("x", "t", *sorted(_FUNCTIONS))


def parse(text: str, name: str = "expression") -> sp.Expr:
    """Parse ``text`` into a SymPy expression, allowing only :func:`allowed_names`."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as err:
        bad_value(name, text, f"a well-formed expression ({err})")
    previous = None
    for token in tokens:
        if token.type == tokenize.NAME:
            if previous is not None and previous.string == ".":
                bad_value(name, text, "an arithmetic expression with no attribute access")
            if keyword.iskeyword(token.string) or token.string not in {"x", "t", *_FUNCTIONS}:
                bad_value(name, text, f"only the names {', '.join(allowed_names())} "
                          f"(found {token.string!r})")
        if token.type == tokenize.OP and token.string in {"=", "[", "]", "{", "}", ";", ":",
                                                          "@", "lambda"}:
            bad_value(name, text, f"an arithmetic expression (found {token.string!r})")
        previous = token
    local = {"x": x, "t": t, **_FUNCTIONS}
    try:
        expr = parse_expr(text, local_dict=local, global_dict=dict(_PARSER_NAMES),
                          transformations=standard_transformations, evaluate=True)
    except Exception as err:  # SymPy raises many types for malformed input
        bad_value(name, text, f"a well-formed expression ({type(err).__name__}: {err})")
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
    fn = sp.lambdify(x, expr, modules="numpy")
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
