"""Balance points: weighted-average formula, stability, multiple points, non-concentrating balance."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from asy_cases import CONCENTRATING, chemical3, exact_states

import asymptotics as asy
import meanfield as mf
import solvers


def _sigmoid(v, threshold, slope):
    return 1 / (1 + np.exp(-slope * (v - threshold)))


REVERSAL = {  # name -> (model, E, thresholds, slopes)
    "chemical_single": (mf.models.chemical_single, [2.0], [1.0], [6.0]),
    "chemical": (mf.models.chemical, [2.0, -1.5], [0.0, 0.0], [2.0, 2.0]),
    "chemical3": (chemical3, [2.0, -1.5, 0.5], [0.0] * 3, [2.0] * 3),
}


@pytest.mark.parametrize("name", sorted(REVERSAL))
def test_weighted_average_formula_holds_at_every_returned_point(name):
    factory, E, th, sl = REVERSAL[name]
    model = factory()
    bal = asy.balance_points(model)
    assert bal.concentrating
    assert len(bal.all) >= 1
    g, E = np.array(model.g), np.array(E)
    for point in bal.all:
        S = _sigmoid(point.v, np.array(th), np.array(sl))
        formula = (g * E[None, :]) @ S / (g @ S)
        assert np.max(np.abs(point.v - formula)) <= 1e-12
        assert np.max(np.abs(bal.formula_values(point.v) - point.v)) <= 1e-12
        assert np.allclose(point.slope, g @ S, rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", sorted(CONCENTRATING))
def test_principal_point_is_stable_and_is_the_gamma_to_infinity_limit(name):
    bal = asy.balance_points(CONCENTRATING[name]())
    point = bal.principal
    assert point.stable
    assert point.iteration_radius < 1
    assert np.all(point.slope > 0)
    assert np.max(np.abs(np.array([float(eq.lhs.subs(dict(zip(bal.symbols, point.v, strict=True))))
                                   for eq in bal.manifold]))) < 1e-12
    state = exact_states(name)[-1]  # γ = 1e5: mean = v + O(1/γ)
    assert np.max(np.abs(state.mean - bal.v)) < 5e-5


def test_iteration_jacobian_matches_finite_differences_of_the_weighted_average_map():
    model = mf.models.chemical()
    bal = asy.balance_points(model)
    v = bal.v
    step = 1e-6
    columns = []
    for r in range(2):
        dv = np.zeros(2)
        dv[r] = step
        columns.append((bal.formula_values(v + dv) - bal.formula_values(v - dv)) / (2 * step))
    assert np.allclose(np.array(columns).T, bal.principal.iteration_jacobian, rtol=0, atol=1e-8)


def test_several_balance_points_with_their_stability():
    """Strong excitation onto E with a steep sigmoid: a low, a high and an unstable middle point."""
    x = mf.x
    model = mf.Model([mf.Population("E", -x, 0.5), mf.Population("I", -x, 0.5)],
                     [[4.0, 1.0], [4.0, 1.0]], [[x - 2, x + 1], [x - 2, x + 1]],
                     [mf.sigmoid(x, 0.5, 12), sp.Rational(1, 2) + 0 * x], (-3.0, 5.0))
    bal = asy.balance_points(model)
    assert len(bal.all) == 3
    assert [p.stable for p in bal.all] == [True, False, True]
    for point in bal.all:  # the formula holds at every point, stable or not
        assert np.max(np.abs(bal.formula_values(point.v) - point.v)) <= 1e-12
    assert bal.principal.stable


def test_non_concentrating_balance_constraint_and_multiplier():
    model = mf.models.current_balanced()
    bal = asy.balance_points(model)
    assert not bal.concentrating
    assert bal.all == ()
    assert np.allclose(bal.moments, [0.2, 0.3], rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="non-concentrating"):
        _ = bal.v
    errors, lambdas = [], []
    for gamma in (1e2, 1e3):
        state = solvers.stationary_states(model, gamma=gamma, cells=1500, starts=4,
                                          stability=False)[0]
        errors.append(np.max(np.abs(state.m - bal.moments)))
        lam = bal.multiplier_values(state.x, state.rho, state.grid.h)
        g_field = np.array([float(gamma * bal.field[p].subs(dict(zip(model.moment_symbols(),
                                                                      state.m, strict=True))))
                            for p in range(2)])
        # stationary states: γ h_p is exactly the multiplier (zero flux of dm/dt)
        assert np.allclose(lam, g_field, rtol=1e-7, atol=0)
        lambdas.append(lam)
    slope = np.log(errors[1] / errors[0]) / np.log(10.0)
    assert abs(slope + 1) < 0.15  # m(γ) → m* like 1/γ
    assert np.allclose(lambdas[0], lambdas[1], rtol=0.05)  # λ has a finite limit


def test_bad_input():
    with pytest.raises(TypeError, match="model"):
        asy.balance_points([1, 2])
    with pytest.raises(ValueError, match="starts"):
        asy.balance_points(mf.models.chemical(), starts=0)
    with pytest.raises(TypeError, match="time"):
        asy.balance_points(mf.models.chemical(), time="now")


def test_multipliers_keep_a_time_dependent_constraint():
    """With λ from the formula, ṁ_q = ⟨Ψ'f⟩ + D⟨Ψ''⟩ − λ_q⟨Ψ'⟩ satisfies K ṁ + ė = 0."""
    model = mf.models.current_balanced(m_drive="0.4 + 0.1*sin(3*t)")
    bal = asy.balance_points(model, time=0.7)
    nodes = np.linspace(-6, 6, 4001)
    weights = np.full(nodes.size, nodes[1] - nodes[0])
    rho = np.array([np.exp(-(nodes - 0.3) ** 2 / 0.5), np.exp(-(nodes + 0.4) ** 2 / 0.3)])
    rho /= (rho @ weights)[:, None]
    time = 0.7
    lam = bal.multiplier_values(nodes, rho, weights, time)
    s = 1 / (1 + np.exp(-nodes))  # sigmoid slope 1, threshold 0
    ds, d2s = s * (1 - s), s * (1 - s) * (1 - 2 * s)
    f = -nodes
    D = np.array([0.125, 0.125])
    mdot = np.array([(ds * f * rho[q]) @ weights + D[q] * (d2s * rho[q]) @ weights
                     - lam[q] * (ds * rho[q]) @ weights for q in range(2)])
    K = np.array([[-1.0, 2.0], [-2.0, 2.0]])
    edot = -np.array([1.0, 0.5]) * 0.3 * np.cos(3 * time)  # e_p = −drive_p m_drive(t)
    assert np.allclose(K @ mdot + edot, 0, rtol=0, atol=1e-12)
    m_at_time = -np.linalg.solve(K, -np.array([1.0, 0.5]) * (0.4 + 0.1 * np.sin(3 * time)))
    assert np.allclose(bal.moments, m_at_time, rtol=0, atol=1e-14)


def test_to_xarray_and_latex():
    bal = asy.balance_points(chemical3())
    ds = bal.to_xarray()
    assert ds["v"].shape == (len(bal.all), 3)
    assert bool(ds["stable"][0])
    assert "h_{E}" in bal._repr_latex_()
    non = asy.balance_points(mf.models.current_balanced())
    assert np.allclose(non.to_xarray()["m"].values, [0.2, 0.3])
    assert "lambda" in non._repr_latex_()
