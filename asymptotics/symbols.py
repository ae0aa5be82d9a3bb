"""The symbols shared by every derivation: ``γ``, ``ε = γ^{-1/2}``, the zoom variable ``y``.

``x`` and ``t`` are the model layer's own symbols (:data:`meanfield.x`, :data:`meanfield.t`).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from meanfield.expressions import t, x

gamma = sp.Symbol("gamma", positive=True)
"""Coupling strength ``γ``."""
epsilon = sp.Symbol("epsilon", positive=True)
"""Small parameter of the rescaling, ``ε = γ^{-1/2}``."""
y = sp.Symbol("y", real=True)
"""Zoomed variable ``x = c(t) + ε y``."""

__all__ = ["epsilon", "gamma", "t", "x", "y"]


def population_symbol(stem: str, name: str, *indices: int | str, positive: bool = False) -> sp.Symbol:
    """A symbol ``stem_{name,i,...}`` attached to population ``name`` (e.g. ``h_{E,2}``)."""
    sub = ",".join([name, *(str(i) for i in indices)])
    return sp.Symbol(f"{stem}_{{{sub}}}", real=True, positive=positive or None)


def latex_block(lines: list[str]) -> str:
    """Join LaTeX lines into one display ``aligned`` block for ``_repr_latex_``."""
    return "$\\begin{aligned}" + r"\\ ".join(lines) + "\\end{aligned}$"


def exact_expression(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every Float replaced by the rational it prints as (``2.0 -> 2``)."""
    from meanfield.model import exact

    return expr.xreplace({f: exact(float(f)) for f in expr.atoms(sp.Float)})


def exact_model(model: Any) -> Any:
    """The same model with exact rationals in place of Floats in its expressions.

    Derivations run on this copy so that cancellations are exact.
    """
    from meanfield.model import ExternalInput, Model, Population

    pops = [Population(p.name, exact_expression(p.drift), p.sigma) for p in model.populations]
    inputs = [ExternalInput(i.name, exact_expression(i.m), i.g, [exact_expression(e) for e in i.phi])
              for i in model.inputs]
    return Model(pops, model.g, [[exact_expression(e) for e in row] for row in model.phi],
                 [exact_expression(e) for e in model.psi], model.domain, inputs,
                 [exact_expression(e) for e in model.initial])
