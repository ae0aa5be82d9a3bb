"""The numeric view's derivatives, coupling-field callables and network expressions."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.numeric import numeric, population_expressions


def _two_population_model() -> mf.Model:
    pops = [mf.Population("E", "-x", 0.5), mf.Population("I", "-x**3", 0.3)]
    inp = mf.ExternalInput("drive", m="1 + t", g=[0.5, -0.25], phi=["cos(x)", "x"])
    return mf.Model(pops, g=[[1.0, -2.0], [0.75, 0.0]], phi=[["x - 1", "sin(x)"], ["x**2", "x"]],
                    psi=["tanh(x)", "x**2 + exp(x)"], domain=(-2, 2), inputs=[inp])


def test_psi_derivatives_match_closed_forms_and_finite_differences():
    nm = numeric(_two_population_model())
    z = np.linspace(-1.5, 1.5, 13)
    np.testing.assert_allclose(nm.psi_derivative(0)(z), 1 / np.cosh(z) ** 2, rtol=1e-13)
    np.testing.assert_allclose(nm.psi_derivative(0, 2)(z), -2 * np.tanh(z) / np.cosh(z) ** 2,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(nm.psi_derivative(1, 2)(z), 2 + np.exp(z), rtol=1e-13)
    step = 1e-5
    for q in range(2):
        central = (nm.psi[q](z + step) - nm.psi[q](z - step)) / (2 * step)
        np.testing.assert_allclose(nm.psi_derivative(q)(z), central, rtol=1e-8, atol=1e-9)
    shaped = nm.psi_derivative(1, 1)(np.zeros((2, 3)))
    assert shaped.shape == (2, 3)


def test_field_functions_agree_with_field_and_its_finite_difference(rng):
    nm = numeric(_two_population_model())
    z = np.sort(rng.uniform(-1.8, 1.8, 11))
    m = rng.normal(size=2)
    time = 0.3
    m_all = nm.all_moments(m, time)
    assert m_all.shape == (3,)
    step = 1e-5
    for p in range(2):
        h, dh = nm.field_functions(p)
        values = np.broadcast_to(h(z, *m_all), z.shape)
        np.testing.assert_allclose(values, nm.field(p, z, m, time), rtol=1e-13, atol=1e-14)
        central = (nm.field(p, z + step, m, time) - nm.field(p, z - step, m, time)) / (2 * step)
        slope = np.broadcast_to(dh(z, *m_all), z.shape)
        np.testing.assert_allclose(slope, central, rtol=1e-8, atol=1e-9)
    # population 0: h = (x - 1) m_E - 2 sin(x) m_I + 0.5 cos(x) m_ext, closed form
    h0, dh0 = nm.field_functions(0)
    np.testing.assert_allclose(h0(z, *m_all), (z - 1) * m_all[0] - 2 * np.sin(z) * m_all[1]
                               + 0.5 * np.cos(z) * m_all[2], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dh0(z, *m_all), m_all[0] - 2 * np.cos(z) * m_all[1]
                               - 0.5 * np.sin(z) * m_all[2], rtol=1e-13, atol=1e-14)


def test_population_expressions_compile_to_the_coupling_and_its_slope():
    model = _two_population_model()
    exprs = population_expressions(model)
    assert len(exprs) == 2
    assert not exprs[0].affine  # sin(x) in Φ_EI
    assert not exprs[1].affine  # x**2 in Φ_IE
    z = np.linspace(-1.0, 1.0, 9)
    c = np.array([0.3, -1.1, 2.0])
    coupling = exprs[1].compiled("coupling")
    stiffness = exprs[1].compiled("stiffness")
    np.testing.assert_allclose(coupling(z, c), 0.3 * z**2 - 1.1 * z + 2.0 * z, rtol=1e-14)
    np.testing.assert_allclose(stiffness(z, c), 0.6 * z - 1.1 + 2.0, rtol=1e-14)
    np.testing.assert_allclose(exprs[1].compiled("drift")(z), -(z**3), rtol=1e-14)
    np.testing.assert_allclose(exprs[1].compiled("readout")(z), z**2 + np.exp(z), rtol=1e-14)
    assert exprs[1].sigma == pytest.approx(0.3)
    linear = mf.Model([mf.Population("E", "-x", 1.0)], g=[[1.0]], phi=[["x - 2"]], psi=["x"],
                      domain=(-3, 3))
    assert population_expressions(linear)[0].affine
    with pytest.raises(ValueError, match="part must be"):
        exprs[0].compiled("noise")


def test_rng_fixture_is_seeded(rng):
    from conftest import SEED

    np.testing.assert_array_equal(rng.random(4), np.random.default_rng(SEED).random(4))


@pytest.mark.parametrize("name", ["chemical", "chemical_single", "current_balanced",
                                  "linear_ou", "two_populations_with_an_input"])
def test_table_equals_the_model_pieces_evaluated_one_by_one(name, rng):
    # the table groups populations that share an expression and prints powers as products:
    # the same numbers as f, Φ and Ψ evaluated population by population (to round-off)
    model = (_two_population_model() if name == "two_populations_with_an_input"
             else getattr(mf.models, name)())
    nm = numeric(model)
    points = rng.normal(size=(model.P, 57)) * 2
    table = nm.table(points)
    for p in range(model.P):
        np.testing.assert_allclose(table[p, 0], nm.f[p](points[p]), rtol=1e-12, atol=1e-14)
        for j in range(nm.J):
            expected = nm.phi[p][j](points[p]) if nm.g[p, j] != 0 else 0.0
            np.testing.assert_allclose(table[p, 1 + j], expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(table[p, -1], nm.psi[p](points[p]), rtol=1e-14)
