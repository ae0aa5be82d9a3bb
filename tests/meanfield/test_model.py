"""The model layer: construction, safe parsing, numeric view, serialisation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate as si
import sympy as sp

import meanfield as mf
from meanfield.numeric import antiderivative

x = mf.x


def two_population_model(**changes):
    args = dict(
        populations=[mf.Population("E", x - x**3 / 3, 0.8), mf.Population("I", "x - x**3/3", 0.6)],
        g=[[1, 2], [1.5, 1]],
        phi=[[x - 2, x + 1.5], ["x - 2", "x + 1.5"]],
        psi=[mf.sigmoid(x, 0, 2), "sigmoid(x, 0, 2)"],
        domain=(-5, 5),
    )
    args.update(changes)
    return mf.Model(**args)


def test_strings_numbers_and_expressions_give_the_same_model():
    model = two_population_model()
    assert model.phi[0] == model.phi[1]
    assert model.psi[0] == model.psi[1]
    assert model.populations[0].drift == model.populations[1].drift
    assert model.P == 2
    assert model.names == ("E", "I")
    assert model.diffusion == pytest.approx((0.32, 0.18), abs=1e-15)


def test_sigmoid_is_the_logistic_function():
    values = np.linspace(-6, 6, 13)
    fn = sp.lambdify(x, mf.sigmoid(x, 0.5, 3))
    assert np.allclose(fn(values), 1 / (1 + np.exp(-3 * (values - 0.5))), atol=1e-15, rtol=0)


def test_field_is_the_separable_input():
    model = two_population_model()
    mE, mI = model.moment_symbols()
    assert sp.simplify(model.field(0) - (mE * (x - 2) + 2 * mI * (x + sp.Rational(3, 2)))) == 0


def test_round_trip_through_plain_data_and_json():
    model = mf.models.current_balanced(m_drive="0.4 + 0.1*sin(t)")
    again = mf.Model.from_json(model.to_json())
    assert again == model
    assert hash(again) == hash(model)
    assert again.inputs[0].m == model.inputs[0].m


def test_repr_and_latex_name_the_pieces():
    model = mf.models.chemical()
    assert "Population('E'" in repr(model)
    latex = model._repr_latex_()
    assert latex.startswith("$\\begin{aligned}")
    assert "\\partial_t" in latex
    assert "m_{I}" in latex


def test_numeric_view_matches_the_expressions_and_antiderivatives():
    model = mf.models.chemical()
    nm = mf.numeric(model)
    pts = np.linspace(-5, 5, 101)
    assert np.allclose(nm.f[0](pts), pts - pts**3 / 3, atol=1e-14)
    assert np.allclose(nm.F[0](pts), (pts**2 / 2 - pts**4 / 12) - (25 / 2 - 625 / 12), atol=1e-11)
    assert np.allclose(nm.G[0][1](np.array([1.0])) - nm.G[0][1](np.array([0.0])), 0.5 + 1.5)
    m = np.array([0.3, 0.6])
    assert np.allclose(nm.field(0, pts, m), 0.3 * (pts - 2) + 2 * 0.6 * (pts + 1.5), atol=1e-14)


def test_quadrature_antiderivative_when_no_closed_form():
    expr = sp.exp(sp.sin(x)) * sp.tanh(x)
    anti = antiderivative(expr, -1.0)
    assert anti.closed_form is None
    pts = np.array([-0.5, 0.3, 1.7])
    reference = [si.quad(lambda s: np.exp(np.sin(s)) * np.tanh(s), -1.0, p, epsabs=1e-14)[0]
                 for p in pts]
    assert np.max(np.abs(anti(pts) - reference)) < 1e-12


def test_time_dependent_external_input():
    model = mf.models.current_balanced(m_drive="0.4 + 0.1*sin(t)")
    nm = mf.numeric(model)
    assert nm.external_m(np.pi / 2) == pytest.approx([0.5], abs=1e-15)


@pytest.mark.parametrize("name", sorted(mf.models.CATALOGUE))
def test_named_models_build_and_document_themselves(name):
    model = mf.models.CATALOGUE[name]()
    assert isinstance(model, mf.Model)
    assert "γ → ∞" in mf.models.CATALOGUE[name].__doc__


P = mf.Population
ONE = {"populations": [{"name": "E", "drift": "-x", "sigma": 1.0}], "g": [[1.0]],
       "phi": [["x - 1"]], "psi": ["x"], "domain": [-1.0, 1.0]}
BAD_INPUTS = [
    (lambda: two_population_model(g=[[1, 2]]), ValueError, r"g=.*shape 2×2"),
    (lambda: two_population_model(g=[[1, 2, 3], [1, 2, 3]]), ValueError, r"g=.*shape 2×2"),
    (lambda: two_population_model(phi=[[x], [x]]), ValueError, r"phi=.*shape 2×2"),
    (lambda: two_population_model(psi=[x]), ValueError, r"psi=.*shape 2"),
    (lambda: two_population_model(g=[[1, float("nan")], [1, 1]]), ValueError, r"g=nan.*finite"),
    (lambda: P("E", -x, 0), ValueError, r"sigma of population 'E'=0.*> 0"),
    (lambda: P("E", -x, -1.0), ValueError, r"sigma of population 'E'=-1.0"),
    (lambda: P("E", "-x + y", 1), ValueError, r"drift of population 'E'.*found 'y'"),
    (lambda: P("E", -x + sp.Symbol("y"), 1), ValueError, r"drift of population 'E'=.*in x only \(found y\)"),
    (lambda: P("", -x, 1), ValueError, r"name=''.*non-empty"),
    (lambda: two_population_model(populations=[P("E", -x, 1), P("E", -x, 1)]), ValueError,
     r"populations=.*distinct"),
    (lambda: two_population_model(populations=[]), ValueError, r"populations=\[\].*at least one"),
    (lambda: two_population_model(domain=(1, -1)), ValueError, r"domain=\(1, -1\).*a < b"),
    (lambda: two_population_model(domain=(0, float("inf"))), ValueError, r"domain=inf.*finite"),
    (lambda: two_population_model(psi=[sp.log(x), x]), ValueError, r"psi\[0\]=log\(x\).*finite"),
    (lambda: two_population_model(psi=[sp.sqrt(x), x]), ValueError, r"psi\[0\]=sqrt\(x\)"),
    (lambda: two_population_model(phi=[[1 / x, x], [x, x]]), ValueError, r"phi\[0\]\[0\]=1/x"),
    (lambda: two_population_model(psi=["__import__('os')", x]), ValueError,
     r"psi\[0\]=.*only the names"),
    (lambda: two_population_model(psi=["x.real", x]), ValueError, r"psi\[0\]=.*attribute"),
    (lambda: two_population_model(psi=["x +* 2", x]), ValueError, r"psi\[0\]=.*well-formed"),
    (lambda: two_population_model(psi=[1 + sp.I * x, x]), ValueError, r"psi\[0\]=.*real"),
    (lambda: two_population_model(g="abc"), TypeError, r"g has type str"),
    (lambda: two_population_model(populations=["E"]), TypeError, r"populations has type str"),
    (lambda: P("E", -x, "fast"), TypeError, r"sigma of population 'E' has type str"),
    (lambda: P("E", [1, 2], 1), TypeError, r"drift of population 'E' has type list"),
    (lambda: two_population_model(initial=[-1 + 0 * x, x**2]), ValueError, r"initial\[0\].*>= 0"),
    (lambda: mf.ExternalInput("X", "x", [1], [1]), ValueError, r"m of input 'X'=x.*in t only"),
    (lambda: mf.models.chemical(reversal=(1, 2, 3)), ValueError, r"reversal=.*2 entries"),
    (lambda: mf.Model.from_dict({**ONE, "populations": 5}), TypeError, r"populations has type int"),
    (lambda: mf.Model.from_dict({**ONE, "inputs": [{"name": "X"}]}), ValueError,
     r"inputs=.*keys name, m, g, phi"),
    (lambda: mf.Model.from_dict({**ONE, "inputs": "X"}), TypeError, r"inputs has type str"),
    (lambda: mf.Model.from_json("{not json"), ValueError, r"model=.*valid JSON"),
    (lambda: mf.Model.from_json(5), TypeError, r"model has type int"),
    (lambda: P("E", "x - x^3 + y", 1), ValueError, r"drift of population 'E'=.*found 'y'"),
]


@pytest.mark.parametrize(("build", "error", "message"), BAD_INPUTS)
def test_bad_inputs_are_rejected_with_named_messages(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_at_least_twelve_bad_inputs_are_covered():
    assert len(BAD_INPUTS) >= 12


def test_piecewise_drift_gets_a_numeric_antiderivative():
    model = mf.Model([mf.Population("E", "-x + Heaviside(x - 1)", 0.5)], [[1]], [[x - 2]],
                     [mf.sigmoid(x, 0, 1)], (-3, 3))
    F = mf.numeric(model).F[0]
    assert F(np.array([2.0]))[0] - F(np.array([0.0]))[0] == pytest.approx(-1.0, abs=1e-3)
