"""The expression language: a small arithmetic grammar turned into SymPy without ``eval``.

A string is parsed by :func:`ast.parse` (mode ``"eval"``) and the tree is walked against a whitelist;
nothing else is ever executed. The grammar::

    expr   := number | name | constant | "+" expr | "-" expr
            | expr ("+" | "-" | "*" | "/" | "**" | "^") expr | "(" expr ")"
            | function "(" expr ("," expr)* ")"
    number := integer (at most MAX_INTEGER_DIGITS digits) | finite decimal (1.5, 2e-3)

``^`` means power (as in mathematics and in SymPy's own parser): the ``^`` tokens are rewritten to
``**`` with :mod:`tokenize` before parsing, so it never means Python's XOR. The functions receive
only SymPy expressions built by this walker (never a string), with a fixed number of arguments.
``Piecewise((expr, cond), ..., (expr, True))`` accepts single comparisons ``a < b`` (``<=, >, >=``)
as conditions. Bounds are checked while the expression is built, before any large object exists:
:data:`MAX_LENGTH` characters, ASCII only, :data:`MAX_DEPTH` nested levels (a chain ``a + b - c``
or ``a * b / c`` is one level), :data:`MAX_NODES` syntax nodes, numeric exponents of ``**`` with
``|value| <= MAX_EXPONENT`` (also after SymPy combines powers, ``x**60*x**60 = x**120``), exact
numbers of at most :data:`MAX_NUMBER_BITS` bits (a numeric power is sized before it is computed),
roots of exact numbers of at most :data:`MAX_ROOT_BITS` bits, and, as a safety net, at most
:data:`MAX_BUILD_SECONDS` of building.
Every refusal is a ``ValueError`` naming the argument, the bound and the offending piece.
"""

from __future__ import annotations

import ast
import io
import math
import time
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import sympy as sp

MAX_LENGTH = 10_000
"""Longest accepted expression text, in characters."""
MAX_DEPTH = 100
"""Deepest nesting of parentheses, calls and operators (an operator chain counts once)."""
MAX_NODES = 2_000
"""Most syntax nodes (numbers, names, operators, calls) in one expression."""
MAX_INTEGER_DIGITS = 400
"""Longest integer literal: every double written as an exact fraction (``0.1 -> 1/10``) fits."""
MAX_EXPONENT = 100
"""Largest ``|exponent|`` of a power whose exponent is a number."""
MAX_NUMBER_BITS = 4096
"""Largest exact number (numerator or denominator) built from literals, in bits."""
MAX_ROOT_BITS = 512
"""Largest exact number whose non-integer power (``sqrt``, ``**(1/3)``) SymPy may simplify."""
MAX_BUILD_SECONDS = 3.0
"""Safety net: building stops with a refusal when it has taken longer than this."""
MAX_NESTING = 32
"""Deepest nesting of arrays/tables in model data (JSON, TOML, dictionaries)."""

_PIECE = 80  # longest excerpt of the input shown in a message

_CHAINS = ((ast.Add, ast.Sub), (ast.Mult, ast.Div))
_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}


@dataclass(frozen=True)
class Function:
    """A callable of the language: a SymPy constructor and its number of arguments."""

    build: Callable[..., Any]
    min_args: int = 1
    max_args: int = 1


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _PIECE else text[:_PIECE - 3] + "...")


def _refuse(name: str, text: str, allowed: str, piece: str | None = None) -> NoReturn:
    shown = _excerpt(text)
    found = "" if piece is None else f" (found {_excerpt(piece)})"
    raise ValueError(f"{name}={shown} is not allowed: {allowed}{found}")


def _translate_power(text: str, name: str) -> str:
    """Rewrite every ``^`` operator token to ``**`` (positions from :mod:`tokenize`).

    Parentheses nested deeper than :data:`MAX_DEPTH` are refused here, before :func:`ast.parse`.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError) as err:
        _refuse(name, text, f"a well-formed expression ({type(err).__name__}: "
                f"{str(err)[:_PIECE]})")
    depth = 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.splitlines()[tok.start[0] - 1] if text.strip() else text
                _refuse(name, text, f"at most {MAX_DEPTH} nested levels (of parentheses)",
                        line[max(0, tok.start[1] - 20):tok.start[1] + 20])
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
    starts = [0]
    for line in io.StringIO(text).readlines():
        starts.append(starts[-1] + len(line))
    carets = [starts[tok.start[0] - 1] + tok.start[1] for tok in tokens
              if tok.type == tokenize.OP and tok.string == "^"]
    for offset in reversed(carets):
        if text[offset] != "^":  # positions disagree (unusual line breaks): refuse, never guess
            _refuse(name, text, "a well-formed expression (use ** for powers here)")
        text = text[:offset] + "**" + text[offset + 1:]
    return text


class _Builder:
    """Walks a parsed tree and builds the SymPy expression, checking every bound on the way."""

    def __init__(self, text: str, name: str, symbols: Mapping[str, sp.Expr],
                 functions: Mapping[str, Function], original: str) -> None:
        self.text, self.name, self.symbols, self.functions = text, name, symbols, functions
        self.original = original  # shown in messages (``text`` has ``^`` rewritten to ``**``)
        self.deadline = time.monotonic() + MAX_BUILD_SECONDS

    def refuse(self, allowed: str, node: ast.AST | None = None, piece: str | None = None
               ) -> NoReturn:
        if piece is None and node is not None:
            piece = ast.get_source_segment(self.text, node) or type(node).__name__
        _refuse(self.name, self.original, allowed, piece)

    def grammar(self) -> str:
        return (f"only numbers, {', '.join(self.symbols)}, + - * / ** ^ and calls of the "
                "functions of meanfield.allowed_names()")

    # ------------------------------------------------------------------ numbers
    def number(self, value: Any, node: ast.AST) -> sp.Expr:
        if isinstance(value, sp.Rational):
            bits = max(abs(int(value.p)).bit_length(), int(value.q).bit_length())
            if bits > MAX_NUMBER_BITS:
                self.refuse(f"exact numbers of at most {MAX_NUMBER_BITS} bits (this one has "
                            f"{bits})", node)
        return value

    def constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = {str: "a string", bytes: "bytes", complex: "a complex number"}.get(
                type(value), f"the constant {value!r}"[:40])
            self.refuse(f"not {kind}: {self.grammar()}", node)
        if isinstance(value, int):
            if abs(value) >= 10**MAX_INTEGER_DIGITS:
                self.refuse(f"integers of at most {MAX_INTEGER_DIGITS} digits", node)
            return sp.Integer(value)
        if not math.isfinite(value):
            self.refuse("finite numbers", node)
        source = (ast.get_source_segment(self.text, node) or repr(value)).replace("_", "")
        return sp.Float(source)  # keeps the written digits, as SymPy's own parser does

    def power(self, base: sp.Expr, exponent: sp.Expr, node: ast.AST) -> sp.Expr:
        if exponent.is_number:
            try:
                size = abs(float(exponent))
            except (TypeError, ValueError, OverflowError):
                self.refuse("a real numeric exponent", node)
            if not size <= MAX_EXPONENT:
                self.refuse(f"numeric exponents with |value| <= {MAX_EXPONENT} "
                            f"(this one is {exponent if size < 1e30 else 'huge'})", node)
            if isinstance(base, sp.Rational) and isinstance(exponent, sp.Rational):
                bits = max(abs(int(base.p)).bit_length(), int(base.q).bit_length())
                if not exponent.is_Integer and bits > MAX_ROOT_BITS:
                    self.refuse(f"roots of exact numbers of at most {MAX_ROOT_BITS} bits (this "
                                f"one has {bits}; write it as a decimal)", node)
                if bits * size > MAX_NUMBER_BITS:
                    self.refuse(f"exact numbers of at most {MAX_NUMBER_BITS} bits (this power "
                                f"would have about {int(bits * size)})", node)
        return self.number(sp.Pow(base, exponent), node)

    # ------------------------------------------------------------------ the walk
    def build(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            self.refuse(f"at most {MAX_DEPTH} nested levels", node)
        if time.monotonic() > self.deadline:
            self.refuse(f"an expression that builds within {MAX_BUILD_SECONDS:g} s (stopped "
                        "here)", node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id]
            if node.id in self.functions:
                self.refuse(f"function names only in calls like {node.id}(x)", node)
            self.refuse(f"only the names {', '.join([*self.symbols, *self.functions])}", node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.build(node.operand, depth + 1)
            return self.number(-operand if isinstance(node.op, ast.USub) else operand, node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            base = self.build(node.left, depth + 1)
            return self.power(base, self.build(node.right, depth + 1), node)
        if isinstance(node, ast.BinOp):
            for group in _CHAINS:
                if isinstance(node.op, group):
                    return self.chain(node, group, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        kind = type(node).__name__
        self.refuse(f"not {_KINDS.get(kind, kind)}: {self.grammar()}", node)

    def chain(self, node: ast.BinOp, group: tuple[type, ...], depth: int) -> sp.Expr:
        """``a + b - c`` (or ``a * b / c``) as one SymPy Add (Mul): one level, built once."""
        operands: list[tuple[ast.operator | None, ast.AST]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, group):
            operands.append((current.op, current.right))
            current = current.left
        operands.append((None, current))
        terms = []
        for op, operand in reversed(operands):
            value = self.build(operand, depth + 1)
            if isinstance(op, ast.Sub):
                value = -value
            elif isinstance(op, ast.Div):
                value = sp.Pow(value, -1)
            terms.append(value)
        result = sp.Add(*terms) if group[0] is ast.Add else sp.Mul(*terms)
        return self.number(result, node)

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if isinstance(node.func, ast.Name) and node.func.id not in self.functions:
            self.refuse(f"only the names {', '.join([*self.symbols, *self.functions])}",
                        node.func)
        if not isinstance(node.func, ast.Name):
            self.refuse(f"calls of the functions {', '.join(self.functions)} by name only",
                        node.func)
        fname = node.func.id
        if node.keywords:
            self.refuse(f"positional arguments only in {fname}(...)", node)
        spec = self.functions[fname]
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.refuse(f"positional arguments only in {fname}(...)", node)
        if not spec.min_args <= len(node.args) <= spec.max_args:
            count = (str(spec.min_args) if spec.min_args == spec.max_args
                     else f"{spec.min_args} to {spec.max_args}")
            self.refuse(f"{fname} takes {count} argument(s), not {len(node.args)}", node)
        if spec.build is sp.Piecewise:
            return sp.Piecewise(*[self.piece(a, depth + 1) for a in node.args])
        args = [self.build(a, depth + 1) for a in node.args]
        if spec.build is sp.sqrt:
            return self.power(args[0], sp.Rational(1, 2), node)
        return self.number(spec.build(*args), node)

    def piece(self, node: ast.AST, depth: int) -> tuple[sp.Expr, Any]:
        if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
            self.refuse("Piecewise arguments (expression, condition)", node)
        value = self.build(node.elts[0], depth + 1)
        cond = node.elts[1]
        if isinstance(cond, ast.Constant) and cond.value is True:
            return value, sp.true
        if (isinstance(cond, ast.Compare) and len(cond.ops) == 1
                and type(cond.ops[0]) in _COMPARISONS):
            left = self.build(cond.left, depth + 1)
            right = self.build(cond.comparators[0], depth + 1)
            return value, _COMPARISONS[type(cond.ops[0])](left, right)
        self.refuse("Piecewise conditions True or one comparison a < b, <=, >, >=", cond)


_KINDS = {
    "Attribute": "attribute access", "Subscript": "subscripts", "Lambda": "lambdas",
    "ListComp": "comprehensions", "SetComp": "comprehensions", "DictComp": "comprehensions",
    "GeneratorExp": "comprehensions", "JoinedStr": "f-strings", "NamedExpr": "assignments (:=)",
    "Starred": "starred arguments", "Compare": "comparisons", "BoolOp": "and/or",
    "IfExp": "conditional expressions", "List": "lists", "Tuple": "tuples", "Dict": "dicts",
    "Set": "sets", "BinOp": "this operator (only + - * / ** ^)",
    "UnaryOp": "this operator (only unary + and -)",
}


def parse_expression(text: Any, name: str, *, symbols: Mapping[str, sp.Expr],
                     functions: Mapping[str, Function]) -> sp.Expr:
    """Build the SymPy expression of ``text`` (see the module docstring for the grammar and bounds)."""
    if not isinstance(text, str):
        raise TypeError(f"{name} has type {type(text).__name__}: expected an expression string")
    if len(text) > MAX_LENGTH:
        _refuse(name, text, f"at most {MAX_LENGTH} characters (this text has {len(text)})")
    if not text.isascii():
        where = next(i for i, c in enumerate(text) if not c.isascii())
        _refuse(name, text, f"ASCII characters only (found {text[where]!r} at position {where})")
    if not text.strip():
        _refuse(name, text, "a non-empty expression")
    source = _translate_power(text, name)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        _refuse(name, text, f"a well-formed expression (SyntaxError: {str(err.msg)[:_PIECE]})")
    except (RecursionError, MemoryError, ValueError):
        _refuse(name, text, f"at most {MAX_DEPTH} nested levels (too deep for the parser)")
    nodes = sum(1 for node in ast.walk(tree) if not isinstance(node, (ast.expr_context,
                                                                        ast.operator)))
    if nodes > MAX_NODES:
        _refuse(name, text, f"at most {MAX_NODES} numbers, names and operations (found {nodes})")
    builder = _Builder(source.strip(), name, symbols, functions, text)
    expr = builder.build(tree.body, 1)
    for power in sp.preorder_traversal(expr):
        if (isinstance(power, sp.Pow) and power.exp.is_Number
                and abs(float(power.exp)) > MAX_EXPONENT):
            _refuse(name, text, f"numeric exponents with |value| <= {MAX_EXPONENT} (SymPy "
                    "combines equal bases)", str(power))
    return expr


def check_nesting(name: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Refuse data (lists, tuples, mappings) nested deeper than ``limit`` levels, without recursion.

    The message names the path of the first too-deep entry (``name.key[0][0]...``), never its value.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, name)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, Mapping):
            children = [(child, f"{path}.{key}") for key, child in item.items()]
        elif isinstance(item, (list, tuple)):
            children = [(child, f"{path}[{i}]") for i, child in enumerate(item)]
        else:
            continue
        if depth >= limit:
            shown = path if len(path) <= _PIECE else path[:_PIECE - 3] + "..."
            raise ValueError(f"{shown} is not allowed: arrays/tables nested at most {limit} "
                             f"levels deep inside {name} (this entry is nested deeper)")
        stack.extend((child, depth + 1, where) for child, where in children)
