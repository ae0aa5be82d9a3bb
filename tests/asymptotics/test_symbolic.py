"""Mean-field PDE, Hopf–Cole transform and rescaled equations: substitute back, residual orders."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from asy_cases import SYMBOLIC, fit_slope

import asymptotics as asy
import meanfield as mf
from asymptotics.symbols import x, y


@pytest.mark.parametrize("name", ["chemical_single", "chemical3", "cubic_coupling"])
def test_mean_field_equation_is_the_fokker_planck_equation(name):
    model = SYMBOLIC[name]()
    mfe = asy.mean_field_equation(model)
    gamma = asy.gamma
    for p in range(model.P):
        # a Gibbs density with frozen moments is stationary: zero flux, zero residual
        h = mfe.field[p]
        s = sp.Symbol("s")
        U = -sp.integrate(model.populations[p].drift.subs(x, s), (s, 0, x)) + gamma * sp.integrate(
            h.subs(x, s), (s, 0, x))
        gibbs = sp.exp(-U / mfe.diffusion[p])
        assert sp.simplify(mfe.flux[p].subs(mfe.rho[p], gibbs).doit() / gibbs) == 0
        assert sp.simplify(mfe.residual(p, gibbs) / gibbs) == 0
    assert len(mfe.moments) == model.P
    assert "rho" in mfe._repr_latex_()


@pytest.mark.parametrize("name", ["chemical_single", "chemical", "chemical3", "cubic_coupling"])
def test_hopf_cole_substitutes_back_exactly(name):
    hc = asy.hopf_cole(SYMBOLIC[name]())
    check = asy.verify(hc)
    assert check.order == sp.oo
    assert check.ok
    assert set(hc.terms[0]) == {1, 0, -1}
    assert "u" in hc._repr_latex_()


def test_hopf_cole_well_is_the_gaussian_of_math_md_for_affine_fields():
    model = mf.models.chemical()
    hc = asy.hopf_cole(model)
    c = hc.zeros[0]
    h = hc.mean_field.field[0]
    A = sp.diff(h, x)
    zero = sp.solve(h.subs(x, c), c)[0]
    well = hc.well[0].subs(c, zero)
    assert sp.simplify(well + A * (x - zero) ** 2 / (2 * hc.mean_field.diffusion[0])) == 0


@pytest.mark.parametrize(("name", "order", "expected"), [
    ("chemical_single", 0, sp.oo),    # linear f, affine h: the series terminates
    ("chemical", 0, 1), ("chemical", 1, 2), ("chemical", 2, sp.oo),   # cubic f
    ("chemical3", 1, 2),
    ("cubic_coupling", -2, -1), ("cubic_coupling", 1, 2), ("cubic_coupling", 2, sp.oo),
    ("saturating_coupling", 0, 1), ("saturating_coupling", 2, 3),     # tanh: never terminates
])
def test_rescaled_equation_substitutes_back_to_the_claimed_order(name, order, expected):
    eq = asy.rescaled_equation(SYMBOLIC[name](), order=order)
    check = asy.verify(eq)
    assert check.order == expected, check.orders
    assert check.ok


def test_rescaled_leading_operator_is_ornstein_uhlenbeck_with_invariant_gaussian():
    eq = asy.rescaled_equation(mf.models.chemical(), order=1)
    A = eq.coefficients[0][("h", 1)]
    D = sp.Rational(8, 25)
    gauss = sp.exp(-A * y**2 / (2 * D))
    assert sp.simplify(eq.leading[0].subs(eq.q[0], gauss).doit()) == 0
    assert sp.simplify(eq.terms[0][-2] - eq.leading[0]) == 0
    assert eq.equations[0].rhs.has(asy.epsilon)
    assert "q_{E}" in eq._repr_latex_()
    assert r"O(\varepsilon^{2})" in asy.verify(eq)._repr_latex_()


@pytest.mark.parametrize("name", ["chemical", "saturating_coupling", "chemical3"])
@pytest.mark.parametrize("order", [0, 1])
def test_numeric_drift_coefficients_sum_to_the_exact_drift(name, order):
    """Σ_k ε^k V_k(y) from the lambdified coefficients vs V = −ε⁻¹c' + ε⁻¹f(c+εy) − ε⁻³h(c+εy)."""
    model = SYMBOLIC[name]()
    eq = asy.rescaled_equation(model, order=order)
    nm = mf.numeric(model)
    rng = np.random.default_rng(1)
    m = rng.uniform(0.2, 0.8, model.P)
    c = np.array([float(sp.nsolve(eq.balance[p].lhs.subs(dict(zip(model.moment_symbols(), m,
                                                                   strict=True))).subs(eq.c[p], x),
                                  x, 0.0)) for p in range(model.P)])
    assert np.max(np.abs(eq.balance_residual(c, m))) < 1e-12
    assert np.allclose(eq.slope(c, m), [nm.field(p, np.array([c[p]]) + 1e-7, m)[0] / 1e-7
                                        for p in range(model.P)], rtol=1e-5)
    ys = np.linspace(-2.0, 2.0, 9)
    dc = 0.3
    epsilons = np.array([0.02, 0.01, 0.005])
    for p in range(model.P):
        errors = []
        for eps in epsilons:
            points = c[p] + eps * ys
            exact = (-dc + nm.f[p](points)) / eps - nm.field(p, points, m) / eps**3
            series = sum(eps**k * eq.drift_numeric[p][k](ys, c=c, m=m, dc=dc)
                         for k in eq.drift_numeric[p])
            errors.append(np.max(np.abs(exact - series)))
        slope = fit_slope(epsilons, np.array(errors))
        assert abs(slope - (order + 1)) < 0.2, (p, slope, errors)


def test_readout_gives_the_moment_series():
    model = mf.models.chemical()
    eq = asy.rescaled_equation(model, order=1)
    table = eq.readout(np.array([0.3, -0.2]))
    s = 1 / (1 + np.exp(-2 * 0.3))
    assert table[0, 0] == pytest.approx(s, abs=1e-15)
    assert table[0, 1] == pytest.approx(2 * s * (1 - s), abs=1e-15)


def test_verify_and_rescaled_bad_input():
    with pytest.raises(TypeError, match="result"):
        asy.verify(mf.models.chemical())
    with pytest.raises(ValueError, match="order"):
        asy.rescaled_equation(mf.models.chemical(), order=-3)
    with pytest.raises(ValueError, match="non-concentrating"):
        asy.rescaled_equation(mf.models.current_balanced())
    with pytest.raises(TypeError, match="model"):
        asy.hopf_cole(None)
    with pytest.raises(TypeError, match="model"):
        asy.mean_field_equation("chemical")


def test_balance_point_velocity_is_the_derivative_of_the_moving_zero():
    """Affine h: c_E(t) = Σ g E m / Σ g m; its time derivative must equal the velocity formula."""
    model = mf.models.chemical()
    eq = asy.rescaled_equation(model, order=0)
    mE, mI = (sp.Function(str(m))(asy.symbols.t) for m in model.moment_symbols())
    zero = (2 * mE - 3 * mI) / (mE + 2 * mI)  # g = [[1, 2], ...], E = (2, -3/2)
    rhs = eq.velocity[0].rhs.subs(eq.c[0], zero)
    assert sp.simplify(sp.diff(zero, asy.symbols.t) - rhs) == 0
