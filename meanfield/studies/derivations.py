r"""The text of ``meanfield derive``: the equations of a model and their symbolic asymptotics.

Sections, in order: the mean-field equations, the balance manifold and balance points, the
Hopf–Cole transform ``u_p = γ^{-1} log ρ_p`` (with its fast-time Hamilton–Jacobi limit and the
stationary well), the rescaled equation for ``q(t, y)`` with ``x = c(t) + ε y``, ``ε = γ^{-1/2}``
(by powers of ε up to ``order``) and the equation for ``c`` (docs/mathematics.md §2–6), then
the meaning of every symbol. Each section comes from the public :mod:`asymptotics` function of the
same name; a section whose function this installation does not provide (or which does not apply
to the model, e.g. a rescaled equation for a non-concentrating model) is replaced by one line
saying so — nothing is made up.

Plain text uses SymPy's ``sstr``. LaTeX puts every equation in a labelled ``equation``
environment (``\label{eq:<section>-<population>}``), writes derivatives of products with explicit
parentheses (``\partial_{x}\left(b \rho\right)``), drops the arguments ``(t, x)`` of the unknowns
and uses valid symbol names (``u_{\mathrm{well},E}``); :func:`document` wraps it in a standalone
``article``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

from meanfield.errors import check_int
from meanfield.model import Model


class _Printer(LatexPrinter):
    r"""LaTeX with ``\partial_x\left(\cdot\right)`` derivatives, bare unknowns and plain integrals."""

    def _print_Derivative(self, expr: Any) -> str:
        ops = "".join(rf"\partial_{{{self._print(v)}}}" + (f"^{{{n}}}" if n > 1 else "")
                      for v, n in expr.variable_count)
        inner = expr.expr
        body = self._print(inner)
        if not (inner.is_Symbol or isinstance(inner, AppliedUndef)):
            body = rf"\left({body}\right)"
        return rf"{ops} {body}"

    def _print_Function(self, expr: Any, exp: Any = None) -> str:
        if isinstance(expr, AppliedUndef):
            text = self._print(sp.Symbol(expr.func.__name__))
            return text if exp is None else rf"{{{text}}}^{{{exp}}}"
        return super()._print_Function(expr, exp)

    def _print_Integral(self, expr: Any) -> str:
        body = self._print(expr.function)
        if expr.function.is_Add:
            body = rf"\left({body}\right)"
        out = ""
        for limit in expr.limits:
            bounds = (f"_{{{self._print(limit[1])}}}^{{{self._print(limit[2])}}}"
                      if len(limit) == 3 else "")
            out += rf"\int{bounds} "
        dvars = "".join(rf"\, d{self._print(limit[0])}" for limit in expr.limits)
        return f"{out}{body}{dvars}"


def latex(expr: Any) -> str:
    """One SymPy expression (or ``Eq``) as unambiguous LaTeX (see the module docstring)."""
    printer = _Printer()
    if isinstance(expr, sp.Eq):
        return f"{printer.doprint(expr.lhs)} = {printer.doprint(expr.rhs)}"
    return printer.doprint(expr)


def _equation(eq: Any, latex_mode: bool, label: str | None = None) -> str:
    if latex_mode:
        tag = rf"\label{{eq:{label}}}" if label else ""
        return f"\\begin{{equation}}{tag}\n  {latex(eq)}\n\\end{{equation}}"
    if isinstance(eq, sp.Eq):
        return f"{sp.sstr(eq.lhs)} = {sp.sstr(eq.rhs)}"
    return sp.sstr(eq)


def _lines(equations: Sequence[Any], latex_mode: bool, labels: Sequence[str]) -> list[str]:
    return [_equation(eq, latex_mode, label) for eq, label in zip(equations, labels, strict=True)]


def _section(title: str, body: Callable[[], list[str]], latex_mode: bool) -> list[str]:
    head = f"% {title}" if latex_mode else f"== {title}"
    try:
        lines = body()
    except ValueError as err:
        lines = [f"does not apply to this model ({err})"]
    prefix = "% " if latex_mode and lines and lines[0].startswith("does not") else ""
    return [head, *(prefix + line for line in lines), ""]


_MEANINGS: tuple[tuple[str, str], ...] = (
    (r"rho_(\w+)", "probability density of population {0} over the membrane potential x"),
    (r"m_(\w+)", "readout of population {0}, m = ∫ Ψ ρ dx (its activity)"),
    (r"u_well_(\w+)", "stationary Hopf–Cole well of population {0} as γ → ∞"),
    (r"u_(\w+)", "Hopf–Cole potential of population {0}, u = log(ρ)/γ"),
    (r"q_(\w+)", "rescaled density of population {0}, q(t, y) = ε ρ(t, c + ε y)"),
    (r"c_(\w+)", "centre of the zoom of population {0}: the zero of its field h (the balance "
     "voltage at a stationary state)"),
    (r"v_(\w+)", "balance voltage of population {0} (a zero of its field h)"),
    (r"lambda_(\w+)", "balance multiplier of population {0}, the limit of γ h"),
    (r"h_\{(\w+),(\d+)\}", "derivative of order {1} in x of the field h of population {0} at c"),
    (r"f_\{(\w+),(\d+)\}", "derivative of order {1} of the drift f of population {0} at c"),
)
_FIXED = {"x": "membrane potential", "t": "time", "gamma": "coupling strength γ",
          "tau": "fast time τ = γ t", "y": "rescaled voltage y = (x − c)/ε",
          "epsilon": "zoom factor ε = γ^(-1/2)"}


def symbol_meanings(names: Sequence[str], populations: Sequence[str] = ()) -> list[str]:
    """``"name: meaning"`` for every symbol and unknown name in ``names`` (sorted).

    ``m_<X>`` with ``X`` not among ``populations`` (when given) is an external input's level.
    """
    out = []
    for name in sorted(set(names)):
        meaning = _FIXED.get(name)
        if meaning is None:
            for pattern, text in _MEANINGS:
                match = re.fullmatch(pattern, name)
                if match:
                    meaning = text.format(*match.groups())
                    if pattern == r"m_(\w+)" and populations and \
                            match.group(1) not in populations:
                        meaning = f"level of the external input {match.group(1)} (given)"
                    break
        out.append(f"{name}: {meaning or 'a parameter of the model'}")
    return out


def report(model: Model, *, order: int = 2, latex: bool = False) -> str:
    """All sections for ``model`` as plain text (SymPy ``sstr``) or LaTeX (labelled equations)."""
    import asymptotics as asy

    order = check_int("order", order, minimum=1)
    names = model.names
    seen: set[str] = set()

    def collect(exprs: Sequence[Any]) -> Sequence[Any]:
        for e in exprs:
            seen.update(s.name for s in e.free_symbols)
            seen.update(f.func.__name__ for f in e.atoms(AppliedUndef))
        return exprs

    def mean_field() -> list[str]:
        eqs = asy.mean_field_equation(model)
        labels = [f"mean-field-{n}" for n in names] + [f"readout-{n}" for n in names]
        return _lines(collect([*eqs.equations, *eqs.moments]), latex, labels)

    def note(text: str) -> str:
        return f"% {text}" if latex else text

    def balance() -> list[str]:
        bal = asy.balance_points(model)
        lines = _lines(collect(bal.manifold), latex, [f"balance-manifold-{n}" for n in names])
        if bal.concentrating:
            for point in bal.all:
                stable = "stable" if point.stable else "unstable"
                lines.append(note(f"balance point v = {point.v.tolist()} ({stable})"))
            lines.append(note(f"principal: v = {bal.v.tolist()}"))
        else:
            lines.append(note(f"balanced moments m = {[float(v) for v in bal.moments]}"))
            seen.update(f"lambda_{n}" for n in names)
            lines += _lines([sp.Eq(sp.Symbol(f"lambda_{n}"), e) for n, e in
                             zip(names, collect(bal.multipliers), strict=True)], latex,
                            [f"multiplier-{n}" for n in names])
        return lines

    def hopf_cole() -> list[str]:
        hc = asy.hopf_cole(model)
        lines = _lines(collect([*hc.equations, *hc.fast_time]), latex,
                       [f"hopf-cole-{n}" for n in names] + [f"fast-time-{n}" for n in names])
        wells = [(n, w) for n, w in zip(names, hc.well, strict=True) if w is not None]
        collect([w for _, w in wells])
        seen.update(f"u_well_{n}" for n, _ in wells)
        well_symbols = [sp.Symbol(rf"u_{{\mathrm{{well}},{n}}}") if latex else
                        sp.Symbol(f"u_well_{n}") for n, _ in wells]
        lines += _lines([sp.Eq(s, w) for s, (_, w) in zip(well_symbols, wells, strict=True)],
                        latex, [f"well-{n}" for n, _ in wells])
        return lines

    def rescaled() -> list[str]:
        eq = asy.rescaled_equation(model, order=order)
        return _lines(collect([*eq.equations, *eq.balance]), latex,
                      [f"rescaled-{n}" for n in names] + [f"centre-{n}" for n in names])

    text: list[str] = []
    text += _section("mean-field equations", mean_field, latex)
    text += _section("balance manifold and balance points", balance, latex)
    text += _section("Hopf–Cole transform u = log(rho)/gamma", hopf_cole, latex)
    text += _section(f"rescaled equation, x = c(t) + eps*y, eps = gamma^(-1/2), order {order}",
                     rescaled, latex)
    text += _section("symbols", lambda: [note(line) for line in symbol_meanings(seen, names)], latex)
    return "\n".join(text).rstrip() + "\n"


def document(body: str, *, title: str) -> str:
    """A standalone LaTeX ``article`` (amsmath) around the output of ``report(..., latex=True)``.

    Section comments ``% <title>`` become ``\\section*{<title>}``, symbol comments a list.
    """
    out = [r"\documentclass{article}", r"\usepackage{amsmath}", r"\usepackage[utf8]{inputenc}",
           r"\usepackage[T1]{fontenc}", r"\allowdisplaybreaks", "",
           rf"\title{{{_escape(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle", ""]
    in_symbols = False
    for line in body.splitlines():
        if line.startswith("% ") and not in_symbols and _is_heading(line[2:]):
            in_symbols = line[2:] == "symbols"
            out.append(rf"\section*{{{_escape(line[2:])}}}")
            if in_symbols:
                out.append(r"\begin{itemize}")
        elif in_symbols and line.startswith("% "):
            name, _, meaning = line[2:].partition(": ")
            out.append(rf"  \item \texttt{{{_escape(name)}}}: {_escape(meaning)}")
        elif line.startswith("% "):
            out.append(_escape(line[2:]) + r"\par")
        else:
            out.append(line)
    if in_symbols:
        out.append(r"\end{itemize}")
    out += ["", r"\end{document}", ""]
    return "\n".join(out)


_HEADINGS = ("mean-field equations", "balance manifold", "Hopf–Cole transform",
             "rescaled equation", "symbols")


def _is_heading(text: str) -> bool:
    return text.startswith(_HEADINGS)


def _escape(text: str) -> str:
    """Text for a LaTeX text paragraph: special characters escaped, Unicode Greek spelled out."""
    table = {"\\": r"\textbackslash{}", "_": r"\_", "^": r"\^{}", "&": r"\&", "%": r"\%",
             "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\~{}"}
    greek = {"γ": r"$\gamma$", "ρ": r"$\rho$", "τ": r"$\tau$", "ε": r"$\varepsilon$",
             "Ψ": r"$\Psi$", "λ": r"$\lambda$", "∫": r"$\int$", "→": r"$\to$", "∞": r"$\infty$",
             "–": "--", "−": "-"}
    return "".join(table.get(ch, greek.get(ch, ch)) for ch in text)
