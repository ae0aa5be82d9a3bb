r"""The text of ``meanfield derive``: the equations of a model and their symbolic asymptotics.

Sections, in order: the mean-field equations, the balance manifold and balance points, the
Hopf–Cole transform ``u_p = γ^{-1} log ρ_p`` (with its fast-time Hamilton–Jacobi limit and the
stationary well), the rescaled equation for ``q(t, y)`` with ``x = c(t) + ε y``, ``ε = γ^{-1/2}``
(by powers of ε up to ``order``) and the equation for ``c``. Each section comes from the public
:mod:`asymptotics` function of the same name; a section whose function this installation does
not provide (or which does not apply to the model, e.g. a rescaled equation for a
non-concentrating model) is replaced by one line saying so — nothing is made up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp

from meanfield.errors import check_int
from meanfield.model import Model


def _equation(eq: Any, latex: bool) -> str:
    if isinstance(eq, sp.Eq):
        if latex:
            return f"{sp.latex(eq.lhs)} = {sp.latex(eq.rhs)}"
        return f"{sp.sstr(eq.lhs)} = {sp.sstr(eq.rhs)}"
    return sp.latex(eq) if latex else sp.sstr(eq)


def _lines(equations: Sequence[Any], latex: bool) -> list[str]:
    return [_equation(eq, latex) for eq in equations]


def _section(title: str, body: Callable[[], list[str]], latex: bool) -> list[str]:
    head = f"% {title}" if latex else f"== {title}"
    try:
        lines = body()
    except (AttributeError, ImportError) as err:
        lines = [f"not available in this installation ({err})"]
    except ValueError as err:
        lines = [f"does not apply to this model ({err})"]
    prefix = "% " if latex and lines and lines[0].startswith(("not available", "does not")) else ""
    return [head, *(prefix + line for line in lines), ""]


def _asy(name: str) -> Callable[..., Any]:
    import asymptotics

    fn = getattr(asymptotics, name, None)
    if fn is None:
        raise AttributeError(f"asymptotics.{name} is missing")
    return fn


def report(model: Model, *, order: int = 2, latex: bool = False) -> str:
    """All sections for ``model`` as plain text (SymPy ``sstr``) or LaTeX (one equation a line)."""
    order = check_int("order", order, minimum=1)

    def mean_field() -> list[str]:
        try:
            eqs = _asy("mean_field_equation")(model)
        except AttributeError:
            return [model.latex()] if latex else [repr(model)]
        return _lines([*eqs.equations, *eqs.moments], latex)

    def note(text: str) -> str:
        return f"% {text}" if latex else text

    def balance() -> list[str]:
        bal = _asy("balance_points")(model)
        lines = _lines(bal.manifold, latex)
        if bal.concentrating:
            for point in bal.all:
                stable = "stable" if point.stable else "unstable"
                lines.append(note(f"balance point v = {point.v.tolist()} ({stable})"))
            lines.append(note(f"principal: v = {bal.v.tolist()}"))
        else:
            lines.append(note(f"balanced moments m = {[float(v) for v in bal.moments]}"))
            lines += [rf"\lambda_{{{n}}} = {sp.latex(e)}" if latex else f"lambda_{n} = {sp.sstr(e)}"
                      for n, e in zip(model.names, bal.multipliers, strict=True)]
        return lines

    def hopf_cole() -> list[str]:
        hc = _asy("hopf_cole")(model)
        lines = _lines([*hc.equations, *hc.fast_time], latex)
        lines += [f"u_well_{n} = {_equation(w, latex)}" for n, w in
                  zip(model.names, hc.well, strict=True) if w is not None]
        return lines

    def rescaled() -> list[str]:
        eq = _asy("rescaled_equation")(model, order=order)
        return _lines([*eq.equations, *eq.balance], latex)

    text: list[str] = []
    text += _section("mean-field equations", mean_field, latex)
    text += _section("balance manifold and balance points", balance, latex)
    text += _section("Hopf–Cole transform u = log(rho)/gamma", hopf_cole, latex)
    text += _section(f"rescaled equation, x = c(t) + eps*y, eps = gamma^(-1/2), order {order}",
                     rescaled, latex)
    return "\n".join(text).rstrip() + "\n"
