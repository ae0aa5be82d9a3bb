"""Hostile inputs: no entry point runs code, hangs or allocates much; every refusal names the key.

Entry points: ``mf.parse``, ``Population(drift=...)``, ``Model.from_json``, ``Model.from_dict``,
TOML configuration files (``meanfield.config.load``) and result files (``solvers.load``).
Payloads that would run code create a marker file, which must never appear.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import netCDF4  # noqa: F401  (imported here so that its import time is not charged to a test)
import numpy as np
import pytest
import sympy as sp
import xarray as xr

import meanfield as mf
import solvers
from meanfield import config
from meanfield.numeric import antiderivative, numeric
from solvers.grid import Grid, make_grid

x = mf.x
TOUCH = '__import__("os").system("touch {marker}")'
OPEN = 'open("{marker}", "w")'

# ------------------------------------------------------------------ payloads that try to run code
CODE_PAYLOADS = [
    "exp('" + TOUCH + " or x')",  # the original finding: SymPy eval'd string arguments
    "-x + 0*exp('" + TOUCH + " or 1')",  # the silent variant
    TOUCH,
    "sin('" + TOUCH + "')",
    "sigmoid('" + TOUCH + "', 0, 1)",
    "Piecewise(('" + TOUCH + "', True))",
    "Heaviside(" + OPEN + ")",
    "(lambda: " + TOUCH + ")()",
    "[" + TOUCH + " for _ in (1,)][0]",
    "f'{{" + TOUCH.replace('"', "'") + "}}'",
    "exp(b'" + TOUCH.replace('"', "'") + "')",
    "(y := " + TOUCH + ")",
    "Max(x, key=" + TOUCH + ")",
    "exp(*[" + TOUCH + "])",
    "x if " + TOUCH + " else x",
    "x + eval('" + TOUCH.replace('"', "'") + "')",
    "x.__class__.__mro__[1].__subclasses__()",
    "getattr(x, '__class__')",
]


def _population_table(drift: str) -> dict:
    return {"populations": [{"name": "E", "drift": drift, "sigma": 1.0}], "g": [[1.0]],
            "phi": [["x - 1"]], "psi": ["x"], "domain": [-1.0, 1.0]}


def _via_parse(text: str, tmp_path: Path) -> None:
    mf.parse(text, "drift")


def _via_population(text: str, tmp_path: Path) -> None:
    mf.Population("E", drift=text, sigma=1.0)


def _via_json(text: str, tmp_path: Path) -> None:
    mf.Model.from_json(json.dumps(_population_table(text)))


def _via_dict(text: str, tmp_path: Path) -> None:
    table = _population_table("-x")
    table["phi"] = [[text]]
    mf.Model.from_dict(table)


def _via_toml(text: str, tmp_path: Path) -> None:
    file = tmp_path / "hostile.toml"
    file.write_text('[model]\ng = [[1.0]]\nphi = [["x - 1"]]\npsi = ["x"]\ndomain = [-1.0, 1.0]\n'
                    f"[[model.populations]]\nname = \"E\"\ndrift = {json.dumps(text)}\n"
                    "sigma = 1.0\n")
    config.load(file)


@lru_cache(maxsize=1)
def _valid_result() -> xr.Dataset:
    model = mf.Model.from_dict(_population_table("-x"))
    grid = Grid.uniform(-1.0, 1.0, 8)
    rho = np.exp(-grid.x**2)[None, None, :] / grid.integrate(np.exp(-grid.x**2))
    sol = solvers.Solution.from_densities(model, 1.0, "sg", grid, np.array([0.0]), rho)
    return sol.to_xarray()


def _via_result_file(text: str, tmp_path: Path) -> None:
    ds = _valid_result().copy()
    data = _population_table("-x")
    data["psi"] = [text]
    ds.attrs["model"] = json.dumps(data)
    file = tmp_path / "hostile.nc"
    ds.to_netcdf(file)
    solvers.load(file)


ENTRY_POINTS: dict[str, tuple[Callable[[str, Path], None], str]] = {
    "parse": (_via_parse, r"drift="),
    "Population": (_via_population, r"drift of population 'E'"),
    "from_json": (_via_json, r"drift of population 'E'"),
    "from_dict": (_via_dict, r"phi\[0\]\[0\]"),
    "toml": (_via_toml, r"\[model\]: drift of population 'E'"),
    "result_file": (_via_result_file, r"psi\[0\]"),
}


@pytest.fixture(scope="module")
def warm_result_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Write and load one valid result file first: first-use costs (HDF5, JIT) are not timed."""
    file = tmp_path_factory.mktemp("warm") / "valid.nc"
    _valid_result().to_netcdf(file)
    solvers.load(file)


@pytest.mark.timeout(5, func_only=True)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("payload", CODE_PAYLOADS)
def test_no_entry_point_runs_code(entry: str, payload: str, tmp_path: Path,
                                  warm_result_file: None) -> None:
    marker = tmp_path / "marker"
    call, name = ENTRY_POINTS[entry]
    with pytest.raises((ValueError, TypeError), match=name):
        call(payload.format(marker=marker), tmp_path)
    assert not marker.exists()


# ------------------------------------------------------------------ denial of service and grammar
HOSTILE_EXPRESSIONS = [
    ("-x**9999999999", r"exponents with \|value\| <= 100"),
    ("-(x + 1)**100000", r"exponents with \|value\| <= 100"),
    ("9**9**9", r"exponents with \|value\| <= 100"),
    ("(x + 1)**9999999999", r"exponents with \|value\| <= 100"),
    ("x ^ 9999999", r"exponents with \|value\| <= 100"),
    ("2**100**2", r"exponents with \|value\| <= 100"),
    ("x**60 * x**60", r"SymPy combines equal bases"),
    ("(10**60)**100 * x", r"exact numbers of at most 4096 bits"),
    ("((7**100)**100)**100", r"exact numbers of at most 4096 bits"),
    ("x**exp(1000)", r"exponents with \|value\| <= 100"),
    ("sqrt((2**100)**40 + 1)", r"roots of exact numbers of at most 512 bits"),
    ("((2**100)**40 + 1)**(1/3)", r"roots of exact numbers of at most 512 bits"),
    ("'x'*10**8", r"not a string"),
    ("x + " + "1" * 500, r"integers of at most 400 digits"),
    ("1e400 * x", r"finite numbers"),
    ("1j * x", r"not a complex number"),
    ("x + " * 2600 + "x", r"at most 10000 characters"),
    ("+".join(["x"] * 1500), r"at most 2000 numbers, names and operations"),
    ("(" * 150 + "x" + ")" * 150, r"at most 100 nested levels"),
    ("exp(" * 101 + "x" + ")" * 101, r"at most 100 nested levels"),
    ("-" * 5000 + "x", r"at most 100 nested levels"),
    ("x" + "**x" * 150, r"at most 100 nested levels"),
    ("\uff58", r"ASCII characters only"),  # fullwidth x
    ("\uff45\uff58\uff50(x)", r"ASCII characters only"),  # fullwidth exp (NFKC would map it)
    ("x\u200b", r"ASCII characters only"),  # zero-width space
    ("x \u2212 1", r"ASCII characters only"),  # unicode minus
    ("__import__", r"only the names"),
    ("__builtins__", r"only the names"),
    ("x.real", r"attribute access"),
    ("x[0]", r"subscripts"),
    ("lambda: x", r"lambdas"),
    ("{x}", r"sets"),
    ("{1: x}", r"dicts"),
    ("[x]", r"lists"),
    ("(x, x)", r"tuples"),
    ("x < 1", r"comparisons"),
    ("x and 1", r"and/or"),
    ("not x", r"this operator"),
    ("~x", r"this operator"),
    ("x // 2", r"this operator"),
    ("x % 2", r"this operator"),
    ("x @ x", r"this operator"),
    ("x << 2", r"this operator"),
    ("x | 1", r"this operator"),
    ("...", r"the constant Ellipsis"),
    ("None", r"the constant None"),
    ("True", r"the constant True"),
    ("exp", r"function names only in calls"),
    ("exp(x, x)", r"exp takes 1 argument"),
    ("exp()", r"exp takes 1 argument"),
    ("Max(" + ", ".join(["x"] * 11) + ")", r"Max takes 1 to 10"),
    ("Piecewise((x, x < 0 < 1), (0, True))", r"Piecewise conditions"),
    ("y + x", r"only the names"),
    ("x; import os", r"well-formed"),
    ("x\nimport os", r"well-formed"),
    ("x = 1", r"well-formed"),
    ("", r"a non-empty expression"),
    ("   ", r"a non-empty expression"),
    ("1/0", r"finite"),
    ("sqrt(-1) * x", r"real"),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("text", "reason"), HOSTILE_EXPRESSIONS)
def test_hostile_expressions_are_refused_fast_and_small(text: str, reason: str) -> None:
    """Refused with the argument's name and the bound, before any large object is built."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=reason) as info:
            mf.parse(text, "drift")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith("drift=")
    assert len(message) < 400  # never echoes more than ~200 characters of the input
    assert peak < 50 * 2**20


def test_building_stops_at_its_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from meanfield import expression_language

    monkeypatch.setattr(expression_language, "MAX_BUILD_SECONDS", -1.0)
    with pytest.raises(ValueError, match=r"drift=.*builds within -1 s"):
        mf.parse("x + 1", "drift")


@pytest.mark.timeout(5)
def test_a_hundred_megabyte_text_gives_a_short_message() -> None:
    text = "x" * 10**8
    with pytest.raises(ValueError, match=r"drift=.*at most 10000 characters") as info:
        mf.parse(text, "drift")
    assert len(str(info.value)) < 300


# ------------------------------------------------------------------ what the language accepts
@pytest.mark.parametrize(("text", "expected"), [
    ("x - x^3", x - x**3),
    ("x - x**3/3", x - x**3 / 3),
    ("x^2^3", x**8),  # right-associative, like **
    ("-x^2", -(x**2)),
    ("(x + 1)**100", (x + 1) ** 100),  # kept unexpanded
    ("2*pi + E", 2 * sp.pi + sp.E),
    ("sigmoid(x, 0, 2)", mf.sigmoid(x, 0, 2)),
    ("Piecewise((x, x < 0), (0, True))", sp.Piecewise((x, x < 0), (0, True))),
    ("Min(x, 1) + Max(x, -1) + Abs(x) + abs(x) + Heaviside(x)",
     sp.Min(x, 1) + sp.Max(x, -1) + 2 * sp.Abs(x) + sp.Heaviside(x)),
    ("7500000000000001*x/25000000000000000", sp.Rational(7500000000000001, 25 * 10**15) * x),
])
def test_the_language_builds_the_intended_expression(text: str, expected: sp.Expr) -> None:
    got = mf.parse(text, "drift")
    assert sp.simplify(got - expected) == 0
    assert got.count_ops() <= expected.count_ops() + 2  # nothing was expanded


def test_xor_reading_of_caret_is_gone() -> None:
    drift = mf.parse("x - x^3", "drift")
    fn = sp.lambdify(x, drift)
    assert fn(2.0) == pytest.approx(-6.0, abs=1e-15)  # not (x - x) ^ 3 = 3


def test_every_expression_the_package_writes_reads_back() -> None:
    """Exact fractions of floats (domain (0, 1.7): width 0.16999999999999998) survive JSON."""
    model = mf.Model([mf.Population("E", "-x + 0.123456789*x**2", 0.3)], [[0.30000000000000004]],
                     [[x - 0.1234567891234]], [mf.sigmoid(x, 0.5, 3)], (0.0, 1.7))
    again = mf.Model.from_json(model.to_json())
    assert again == model
    assert again.initial == model.initial


@pytest.mark.parametrize("payload", CODE_PAYLOADS[:6])
def test_moment_strings_of_the_field_are_parsed_not_run(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    model = mf.Model.from_dict(_population_table("-x"))
    with pytest.raises(ValueError, match=r"m="):
        model.field(0, m=[payload.format(marker=marker)])
    assert not marker.exists()
    assert model.field(0, m=["1/2"]) == (x - 1) / 2


def test_sympy_expressions_are_accepted_as_before() -> None:
    """Python-side SymPy objects are trusted (no string is parsed): large powers stay allowed."""
    pop = mf.Population("E", -x**201, 1.0)
    assert pop.drift == -x**201


# ------------------------------------------------------------------ symbolic integration cannot hang
@pytest.mark.timeout(20)
@pytest.mark.parametrize("drift", [
    "-x + exp(sin(x)**7)*x**13/1000",
    "-x + sin(x)**20",
    "-x + " + " + ".join(f"sin({k}*x)*x^2/100" for k in range(1, 15)),
    "-x + sin(cos(sin(cos(sin(x)))))",
])
def test_costly_drifts_use_quadrature(drift: str) -> None:
    model = mf.Model([mf.Population("E", drift, 1.0)], [[1.0]], [[x - 1]], [x], (-1.0, 1.0))
    F = numeric(model).F[0]
    assert F.closed_form is None
    # the quadrature antiderivative: F(1) - F(-1) = ∫ f against a fine trapezoid sum
    nodes = np.linspace(-1.0, 1.0, 200_001)
    values = numeric(model).f[0](nodes)
    reference = np.sum((values[1:] + values[:-1]) / 2 * np.diff(nodes))
    assert F(np.array([1.0]))[0] - F(np.array([-1.0]))[0] == pytest.approx(reference, abs=1e-8)


def test_cheap_drifts_keep_their_closed_form() -> None:
    for drift in (x - x**3 / 3, -x + (1 + sp.tanh(x)) / 2, sp.expand((x + 1) ** 30) - x**31):
        assert antiderivative(drift, -1.0).closed_form is not None


# ------------------------------------------------------------------ limits on data and sizes
def _deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.timeout(5)
def test_deep_json_is_refused_with_the_key() -> None:
    with pytest.raises(ValueError, match=r"model is not allowed: JSON nested"):
        mf.Model.from_json("[" * 100_000 + "]" * 100_000)
    data = _population_table("-x")
    data["phi"] = _deep_list(40)
    with pytest.raises(ValueError, match=r"model.phi\[0\]\[0\].* nested at most 32 levels"):
        mf.Model.from_json(json.dumps(data))
    data["phi"] = _deep_list(20_000)  # repr() of this would recurse: never shown
    with pytest.raises(ValueError, match=r"model.phi\[0\]\[0\].* nested at most 32 levels"):
        mf.Model.from_dict(data)


@pytest.mark.timeout(5)
def test_deep_toml_is_refused_with_the_file_or_key(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ValueError, match=r"config='.*deep.toml' .*nested at most 32 levels"):
        config.load(deep)
    nested = tmp_path / "nested.toml"
    nested.write_text('[model]\nname = "chemical"\n[model.parameters]\nsigma = '
                      + "[" * 40 + "]" * 40 + "\n")
    with pytest.raises(ValueError, match=r"model.parameters.sigma\[0\].* nested at most 32"):
        config.load(nested)


@pytest.mark.parametrize(("table", "match"), [
    ({**_population_table("-x"), "parameters": {"sigma": 2.0}}, r"model.parameters=.*named model"),
    ({**_population_table("-x"), "speed": 2.0}, r"model.speed=2.0 .*a key of \[model\]"),
])
def test_keys_beside_an_explicit_model_are_refused(table: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        config.from_dict({"model": table})


def test_unknown_keys_in_model_data_are_refused() -> None:
    with pytest.raises(ValueError, match=r"model.speed=2 .*only the keys populations"):
        mf.Model.from_dict({**_population_table("-x"), "speed": 2})


@pytest.mark.timeout(5)
@pytest.mark.parametrize("build", [
    lambda: Grid.uniform(0.0, 1.0, 10**9),
    lambda: make_grid((0.0, 1.0), cells=10**9),
])
def test_cells_are_capped_by_memory(build: Callable[[], Grid]) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"cells=1000000000 .*at most 10000000 cells .*"
                                             r"29.8 GiB"):
            build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_config_cells_are_capped() -> None:
    with pytest.raises(ValueError, match=r"solve.cells=1000000000 .*at most 10000000 cells"):
        config.from_dict({"model": {"name": "chemical"},
                          "solve": {"gamma": 1.0, "cells": 10**9}})


@pytest.mark.parametrize(("build", "match"), [
    (lambda: mf.Population("E", -x, True), r"sigma of population 'E' has type bool"),
    (lambda: mf.Population("E", -x, np.True_), r"sigma of population 'E' has type bool"),
    (lambda: mf.Population("E", -x, sp.true), r"sigma of population 'E' has type BooleanTrue"),
    (lambda: mf.Population("E", True, 1.0), r"drift of population 'E' has type bool"),
    (lambda: mf.Model.from_dict({**_population_table("-x"), "g": [[True]]}), r"g has type bool"),
    (lambda: mf.Model.from_dict({**_population_table("-x"), "domain": [False, 1.0]}),
     r"domain has type bool"),
    (lambda: mf.ExternalInput("X", 0.5, [np.True_], ["1"]), r"g of input 'X' has type bool"),
])
def test_booleans_are_not_numbers(build: Callable[[], object], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        build()
