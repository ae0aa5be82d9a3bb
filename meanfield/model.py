r"""The model: populations of one-dimensional agents with separable coupling (docs/mathematics.md §1–2).

Agent dynamics, for an agent of population :math:`p`:

.. math::
    dX = \Big[f_p(X) - \gamma \sum_q g_{pq}\,\Phi_{pq}(X)\, m_q(t)
         - \gamma \sum_k g^{ext}_{pk}\,\Phi^{ext}_{pk}(X)\, m^{ext}_k(t)\Big] dt + \sigma_p\, dW,
    \qquad m_q = \int \Psi_q\, \rho_q .

External inputs are populations with a frozen law: their moment :math:`m^{ext}_k(t)` is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from meanfield.errors import bad_type, bad_value
from meanfield.errors import check_finite_number as _check_finite_number
from meanfield.expression_language import check_nesting
from meanfield.expressions import as_expression, check_on_domain, check_symbols, t, x

MODEL_KEYS = ("populations", "g", "phi", "psi", "domain", "inputs", "initial")
MAX_JSON_CHARS = 10_000_000
"""Longest model JSON text accepted by :meth:`Model.from_json`."""


def check_finite_number(name: str, value: Any) -> float:
    """A finite real number; booleans (``True``, ``numpy.True_``, ``sympy.true``) are refused."""
    if isinstance(value, (bool, np.bool_, sp.logic.boolalg.Boolean)):
        bad_type(name, value, "a real number (not a boolean)")
    return _check_finite_number(name, value)


def exact(value: float) -> sp.Expr:
    """A float as the exact rational it prints as (``0.8 -> 4/5``), for symbolic work."""
    return sp.Rational(repr(float(value)))


@dataclass(frozen=True)
class Population:
    """One population: its name, intrinsic drift ``f(x)`` and noise intensity ``sigma`` (> 0)."""

    name: str
    drift: sp.Expr
    sigma: float

    def __init__(self, name: str, drift: Any, sigma: Any) -> None:
        if not isinstance(name, str):
            bad_type("name", name, "a string")
        if not name.strip():
            bad_value("name", name, "a non-empty population name")
        expr = as_expression(drift, f"drift of population {name!r}")
        check_symbols(expr, f"drift of population {name!r}")
        sig = check_finite_number(f"sigma of population {name!r}", sigma)
        if sig <= 0:
            bad_value(f"sigma of population {name!r}", sigma, "a noise intensity > 0")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "drift", expr)
        object.__setattr__(self, "sigma", sig)

    @property
    def diffusion(self) -> float:
        """:math:`D = \\sigma^2/2`."""
        return self.sigma**2 / 2

    def __repr__(self) -> str:
        return f"Population({self.name!r}, drift={self.drift}, sigma={self.sigma:g})"


@dataclass(frozen=True)
class ExternalInput:
    """A population with a frozen law: moment ``m(t)`` acting on population p through ``g[p]*phi[p]``."""

    name: str
    m: sp.Expr
    g: tuple[float, ...]
    phi: tuple[sp.Expr, ...]

    def __init__(self, name: str, m: Any, g: Sequence[Any], phi: Sequence[Any]) -> None:
        if not isinstance(name, str) or not name.strip():
            bad_value("name", name, "a non-empty input name")
        m_expr = as_expression(m, f"m of input {name!r}")
        check_symbols(m_expr, f"m of input {name!r}", allowed=(t,))
        if isinstance(g, (str, bytes)) or not isinstance(g, Sequence):
            bad_type(f"g of input {name!r}", g, "a sequence with one weight per population")
        if isinstance(phi, (str, bytes)) or not isinstance(phi, Sequence):
            bad_type(f"phi of input {name!r}", phi, "a sequence with one expression per population")
        weights = tuple(check_finite_number(f"g of input {name!r}", w) for w in g)
        phis = tuple(as_expression(p, f"phi of input {name!r}") for p in phi)
        for p in phis:
            check_symbols(p, f"phi of input {name!r}")
        if len(weights) != len(phis):
            bad_value(f"phi of input {name!r}", phi, f"{len(weights)} expressions (one per g entry)")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "m", m_expr)
        object.__setattr__(self, "g", weights)
        object.__setattr__(self, "phi", phis)

    def __repr__(self) -> str:
        return f"ExternalInput({self.name!r}, m={self.m}, g={list(self.g)}, phi={list(self.phi)})"


def _matrix(name: str, value: Any, rows: int, cols: int | None) -> tuple:
    """Check a (rows × cols) nested sequence (cols=None: a flat sequence of length rows)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        try:
            value = value.tolist()  # numpy arrays and SymPy matrices
        except AttributeError:
            bad_type(name, value, f"a sequence of length {rows}")
    if len(value) != rows:
        shape = f"{rows}×{cols}" if cols else f"{rows}"
        bad_value(name, value, f"shape {shape} (one entry per population; got {len(value)} rows)")
    if cols is None:
        return tuple(value)
    out = []
    for i, row in enumerate(value):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            try:
                row = row.tolist()
            except AttributeError:
                bad_value(name, value, f"shape {rows}×{cols} (row {i} is not a sequence)")
        if len(row) != cols:
            bad_value(name, value, f"shape {rows}×{cols} (row {i} has {len(row)} entries)")
        out.append(tuple(row))
    return tuple(out)


@dataclass(frozen=True)
class Model:
    """P populations with separable coupling ``g[p][q] * phi[p][q](x) * psi[q](y)`` on ``domain``.

    Parameters
    ----------
    populations : list of :class:`Population`
    g : P×P finite weights (sign conventions: docs/mathematics.md §1, drift ``f - γ Σ g Φ m``)
    phi : P×P expressions in ``x`` (postsynaptic factor ``Φ_pq``)
    psi : P expressions in ``x`` (presynaptic readout ``Ψ_q``; ``m_q = ∫Ψ_q ρ_q``)
    domain : finite interval ``(a, b)`` with zero-flux ends
    inputs : external inputs (frozen populations), optional
    initial : P expressions in ``x`` (unnormalised initial densities, >= 0); default a Gaussian at
        the middle of the domain with standard deviation a tenth of its length
    """

    populations: tuple[Population, ...]
    g: tuple[tuple[float, ...], ...]
    phi: tuple[tuple[sp.Expr, ...], ...]
    psi: tuple[sp.Expr, ...]
    domain: tuple[float, float]
    inputs: tuple[ExternalInput, ...] = ()
    initial: tuple[sp.Expr, ...] = field(default=())

    def __init__(self, populations: Sequence[Population], g: Any, phi: Any, psi: Any,
                 domain: Any, inputs: Sequence[ExternalInput] = (),
                 initial: Any = None) -> None:
        if isinstance(populations, Population):
            populations = [populations]
        if isinstance(populations, (str, bytes)) or not isinstance(populations, Sequence):
            bad_type("populations", populations, "a list of meanfield.Population")
        if len(populations) == 0:
            bad_value("populations", populations, "at least one population")
        for pop in populations:
            if not isinstance(pop, Population):
                bad_type("populations", pop, "meanfield.Population entries")
        names = [pop.name for pop in populations]
        if len(set(names)) != len(names):
            bad_value("populations", names, "distinct population names")
        P = len(populations)

        dom = _matrix("domain", domain, 2, None)
        a = check_finite_number("domain", dom[0])
        b = check_finite_number("domain", dom[1])
        if not a < b:
            bad_value("domain", domain, "a finite interval (a, b) with a < b")
        domain_t = (a, b)

        g_t = tuple(tuple(check_finite_number("g", w) for w in row)
                    for row in _matrix("g", g, P, P))
        phi_t = tuple(tuple(as_expression(e, f"phi[{p}][{q}]") for q, e in enumerate(row))
                      for p, row in enumerate(_matrix("phi", phi, P, P)))
        psi_t = tuple(as_expression(e, f"psi[{q}]") for q, e in enumerate(_matrix("psi", psi, P, None)))

        for p, row in enumerate(phi_t):
            for q, e in enumerate(row):
                check_symbols(e, f"phi[{p}][{q}]")
                check_on_domain(e, f"phi[{p}][{q}]", domain_t)
        for q, e in enumerate(psi_t):
            check_symbols(e, f"psi[{q}]")
            check_on_domain(e, f"psi[{q}]", domain_t)
        for pop in populations:
            check_on_domain(pop.drift, f"drift of population {pop.name!r}", domain_t)

        if isinstance(inputs, ExternalInput):
            inputs = [inputs]
        inputs_t = tuple(inputs)
        for inp in inputs_t:
            if not isinstance(inp, ExternalInput):
                bad_type("inputs", inp, "meanfield.ExternalInput entries")
            if len(inp.g) != P:
                bad_value("inputs", inp, f"g and phi with {P} entries (one per population)")
            for p, e in enumerate(inp.phi):
                check_on_domain(e, f"phi of input {inp.name!r}[{p}]", domain_t)
        if len({inp.name for inp in inputs_t} | set(names)) != len(inputs_t) + P:
            bad_value("inputs", [i.name for i in inputs_t], "names distinct from each other "
                      "and from the populations")

        if initial is None:
            mid, width = (a + b) / 2, (b - a) / 10
            rational = sp.Rational(repr(mid)), sp.Rational(repr(width))
            init_t = tuple(sp.exp(-((x - rational[0]) ** 2) / (2 * rational[1] ** 2))
                           for _ in range(P))
        else:
            init_t = tuple(as_expression(e, f"initial[{p}]")
                           for p, e in enumerate(_matrix("initial", initial, P, None)))
            for p, e in enumerate(init_t):
                check_symbols(e, f"initial[{p}]")
                check_on_domain(e, f"initial[{p}]", domain_t, nonnegative=True)

        object.__setattr__(self, "populations", tuple(populations))
        object.__setattr__(self, "g", g_t)
        object.__setattr__(self, "phi", phi_t)
        object.__setattr__(self, "psi", psi_t)
        object.__setattr__(self, "domain", domain_t)
        object.__setattr__(self, "inputs", inputs_t)
        object.__setattr__(self, "initial", init_t)

    # ----------------------------------------------------------------- views
    @property
    def P(self) -> int:
        """Number of populations."""
        return len(self.populations)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pop.name for pop in self.populations)

    @property
    def diffusion(self) -> tuple[float, ...]:
        """``D_p = sigma_p**2 / 2``."""
        return tuple(pop.diffusion for pop in self.populations)

    def field(self, p: int, m: Sequence[Any] | None = None) -> sp.Expr:
        """Early-behaviour field ``h_p(x) = Σ_q g_pq Φ_pq(x) m_q + external terms`` (docs/mathematics.md §4).

        ``m`` defaults to symbols ``m_<name>``; external inputs enter with their ``m(t)``.
        """
        ms = self.moment_symbols() if m is None else tuple(
            as_expression(v, "m") if isinstance(v, str) else sp.sympify(v, strict=True) for v in m)
        h = sum((exact(self.g[p][q]) * self.phi[p][q] * ms[q] for q in range(self.P)),
                sp.Integer(0))
        for inp in self.inputs:
            h += exact(inp.g[p]) * inp.phi[p] * inp.m
        return h

    def moment_symbols(self) -> tuple[sp.Symbol, ...]:
        """Symbols ``m_<name>`` for the coupling moments."""
        return tuple(sp.Symbol(f"m_{name}", real=True) for name in self.names)

    def with_inputs(self, inputs: Sequence[ExternalInput]) -> Model:
        """The same model with other external inputs."""
        return Model(self.populations, self.g, self.phi, self.psi, self.domain, inputs,
                     self.initial)

    # --------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain data (strings and numbers) that :meth:`from_dict` turns back into this model."""
        return {
            "populations": [{"name": p.name, "drift": str(p.drift), "sigma": p.sigma}
                            for p in self.populations],
            "g": [list(row) for row in self.g],
            "phi": [[str(e) for e in row] for row in self.phi],
            "psi": [str(e) for e in self.psi],
            "domain": list(self.domain),
            "inputs": [{"name": i.name, "m": str(i.m), "g": list(i.g),
                        "phi": [str(e) for e in i.phi]} for i in self.inputs],
            "initial": [str(e) for e in self.initial],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        """Build a model from :meth:`to_dict` output (every string parsed by the expression language)."""
        if not isinstance(data, Mapping):
            bad_type("model", data, "a mapping with keys populations, g, phi, psi, domain")
        check_nesting("model", data)
        missing = [k for k in MODEL_KEYS[:5] if k not in data]
        if missing:
            bad_value("model", sorted(map(str, data)), f"the keys {missing} as well")
        unknown = sorted(str(k) for k in data if k not in MODEL_KEYS)
        if unknown:
            bad_value(f"model.{unknown[0]}", data[unknown[0]],
                      f"only the keys {', '.join(MODEL_KEYS)}")
        entries = data["populations"]
        if not isinstance(entries, (list, tuple)):
            bad_type("populations", entries, "a list of tables with keys name, drift, sigma")
        pops = []
        for entry in entries:
            if not isinstance(entry, Mapping) or set(entry) - {"name", "drift", "sigma"}:
                bad_value("populations", entry, "tables with keys name, drift, sigma")
            pops.append(Population(entry.get("name", ""), entry.get("drift", 0),
                                   entry.get("sigma", 0)))
        inputs_data = data.get("inputs", ())
        if not isinstance(inputs_data, (list, tuple)):
            bad_type("inputs", inputs_data, "a list of tables with keys name, m, g, phi")
        inputs = []
        for entry in inputs_data:
            if not isinstance(entry, Mapping) or set(entry) != {"name", "m", "g", "phi"}:
                bad_value("inputs", entry, "tables with the keys name, m, g, phi")
            inputs.append(ExternalInput(entry["name"], entry["m"], entry["g"], entry["phi"]))
        return cls(pops, data["g"], data["phi"], data["psi"], data["domain"], inputs,
                   data.get("initial"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Model:
        """The model of :meth:`to_json` text (plain JSON data; expressions parsed, never run)."""
        if not isinstance(text, (str, bytes)):
            bad_type("model", text, "a JSON string")
        if len(text) > MAX_JSON_CHARS:
            bad_value("model", text, f"a JSON text of at most {MAX_JSON_CHARS} characters "
                      f"(this one has {len(text)})")
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("model is not allowed: JSON nested at most 32 levels deep (this "
                             "text is nested deeper)") from None
        except ValueError as err:
            bad_value("model", text, f"valid JSON ({str(err)[:80]})")
        return cls.from_dict(data)

    # -------------------------------------------------------------- display
    def __repr__(self) -> str:
        pops = ", ".join(repr(p) for p in self.populations)
        extra = f", inputs={list(self.inputs)}" if self.inputs else ""
        return (f"Model(populations=[{pops}], g={[list(r) for r in self.g]}, "
                f"phi={[[str(e) for e in r] for r in self.phi]}, psi={[str(e) for e in self.psi]}, "
                f"domain={self.domain}{extra})")

    def latex(self) -> str:
        """The mean-field equations of the model in LaTeX (an ``aligned`` block)."""
        gamma = sp.Symbol("gamma", positive=True)
        lines = []
        for p, pop in enumerate(self.populations):
            rho = sp.Function(f"rho_{pop.name}")(t, x)
            h = self.field(p)
            lines.append(
                rf"\partial_t {sp.latex(rho)} &= -\partial_x\Big[\big({sp.latex(pop.drift - gamma * h)}"
                rf"\big)\,{sp.latex(rho)}\Big] + {sp.latex(exact(pop.diffusion))}"
                rf"\,\partial_{{xx}} {sp.latex(rho)}"
            )
        for q, m in enumerate(self.moment_symbols()):
            rho = sp.Function(f"rho_{self.names[q]}")(t, x)
            lines.append(rf"{sp.latex(m)} &= \int \Big({sp.latex(self.psi[q])}\Big)\,{sp.latex(rho)}\,dx")
        a, b = self.domain
        lines.append(rf"x &\in [{a:g}, {b:g}] \quad \text{{(zero-flux ends)}}")
        return r"\begin{aligned}" + r"\\ ".join(lines) + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$" + self.latex() + "$"

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_json() == other.to_json()
