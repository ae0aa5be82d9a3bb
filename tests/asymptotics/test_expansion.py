"""Stationary expansions in 1/γ against the exact discrete Gibbs states of `solvers`."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from asy_cases import CONCENTRATING, GAMMAS, exact_states, fit_slope

import asymptotics as asy
import meanfield as mf


@pytest.mark.parametrize("name", sorted(CONCENTRATING))
def test_mean_error_after_first_order_decays_like_inverse_gamma_squared(name):
    exp = asy.stationary_expansion(CONCENTRATING[name](), order=1)
    states = exact_states(name)
    errors = np.array([np.abs(s.mean - (exp.v + exp.mu / g)) for s, g in
                       zip(states, GAMMAS, strict=True)])
    for p in range(errors.shape[1]):
        slope = fit_slope(GAMMAS, errors[:, p])
        assert abs(slope + 2) <= 0.15, (p, slope, errors[:, p])
    assert errors[-1].max() < 1e-9


@pytest.mark.parametrize("name", sorted(CONCENTRATING))
def test_rescaled_variance_tends_to_one_with_slope_minus_one(name):
    exp = asy.stationary_expansion(CONCENTRATING[name](), order=1)
    states = exact_states(name)
    ratios = np.array([g * exp.A * s.var / exp.D for s, g in zip(states, GAMMAS, strict=True)])
    for p in range(ratios.shape[1]):
        slope = fit_slope(GAMMAS, np.abs(ratios[:, p] - 1))
        assert abs(slope + 1) <= 0.15, (p, slope, ratios[:, p])
    assert np.max(np.abs(ratios[-1] - 1)) < 1e-4
    assert np.allclose(exp.predict_var(1e5), exp.D / (1e5 * exp.A), rtol=0, atol=1e-20)


@pytest.mark.parametrize("name", sorted(CONCENTRATING))
def test_second_order_mean_variance_and_moments_decay_like_inverse_gamma_cubed(name):
    exp = asy.stationary_expansion(CONCENTRATING[name](), order=2)
    states = exact_states(name)
    for field, predict in (("mean", exp.predict_mean), ("var", exp.predict_var),
                           ("m", exp.predict_m)):
        errors = np.array([np.abs(getattr(s, field) - predict(g)) for s, g in
                           zip(states, GAMMAS, strict=True)])
        # γ = 1e2 → 1e3 measures the order; from 1e4 on the γ^-3 error is at round-off (1e-13)
        for p in range(errors.shape[1]):
            slope = fit_slope(GAMMAS[:2], errors[:2, p])
            assert abs(slope + 3) <= 0.3, (field, p, slope, errors[:, p])
        assert errors[2:].max() < 5e-12, (field, errors)


def test_first_order_matches_the_affine_formula_of_math_md():
    """docs/mathematics.md §7: (I − J diag S'(v)) μ = J (S''(v) ⊙ D/(2A)) + f(v)/A,

    with J_pq = g_pq(E_q − v_p)/A_p.
    """
    model = mf.models.chemical()
    exp = asy.stationary_expansion(model, order=1)
    v, A, D = exp.v, exp.A, exp.D
    g = np.array(model.g)
    E = np.array([2.0, -1.5])
    s = 1 / (1 + np.exp(-2 * v))
    ds, d2s = 2 * s * (1 - s), 4 * s * (1 - s) * (1 - 2 * s)
    J = g * (E[None, :] - v[:, None]) / A[:, None]
    f = v - v**3 / 3
    mu = np.linalg.solve(np.eye(2) - J * ds[None, :], J @ (d2s * D / (2 * A)) + f / A)
    assert np.allclose(exp.mu, mu, rtol=0, atol=1e-12)
    assert np.allclose(A, g @ s, rtol=0, atol=1e-14)


def test_linear_ou_expansion_matches_the_exact_gaussian_formula():
    """linear_ou: var = D/(α + γ A(m)) exactly, so its series in 1/γ is known in closed form."""
    model = mf.models.linear_ou()
    exp = asy.stationary_expansion(model, order=2)
    g = np.array(model.g)
    alpha = np.array([1.0, 2.0])
    relative = []
    for gamma in (1e3, 1e4):
        var_exact = exp.D / (alpha + gamma * (g @ exp.predict_m(gamma)))
        relative.append(np.abs(exp.predict_var(gamma) / var_exact - 1))
    assert relative[0].max() < 1e-5  # the neglected term is O(γ^-3), relative O(γ^-2)
    assert np.all(relative[1] < 0.02 * relative[0])


def test_symbolic_series_and_latex():
    exp = asy.stationary_expansion(mf.models.chemical_single(), order=2)
    assert exp.mean[0].has(asy.gamma)
    assert "mean" in exp._repr_latex_()
    assert exp.to_xarray()["mean"].shape == (3, 1)
    assert exp.v[0] == pytest.approx(2.0, abs=1e-14)


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="model"):
        asy.stationary_expansion("chemical")
    with pytest.raises(ValueError, match="order"):
        asy.stationary_expansion(mf.models.chemical(), order=3)
    with pytest.raises(TypeError, match="order"):
        asy.stationary_expansion(mf.models.chemical(), order=1.5)
    with pytest.raises(ValueError, match="non-concentrating"):
        asy.stationary_expansion(mf.models.current_balanced())
    with pytest.raises(ValueError, match="gamma"):
        asy.stationary_expansion(mf.models.chemical()).predict_mean(-1.0)


@pytest.mark.parametrize(("name", "order"), [("chemical_single", 2), ("chemical", 1),
                                             ("chemical3", 2), ("cubic_coupling", 2),
                                             ("saturating_coupling", 1)])
def test_verify_reports_the_claimed_residual_orders(name, order):
    """Zero flux O(ε^{2n+1}); mean, variance, self-consistency O(ε^{2n+2}) = O(γ^{-(n+1)})."""
    from asy_cases import SYMBOLIC

    check = asy.verify(asy.stationary_expansion(SYMBOLIC[name](), order=order), seed=3)
    assert check.orders == check.claimed
    assert check.ok
    assert check.order == 2 * order + 1
    assert all(v == order + 1 for k, v in check.in_gamma.items() if not k.startswith("flux"))


def test_verify_detects_a_wrong_coefficient():
    """A perturbed first-order moment correction breaks the self-consistency at O(γ^-1)."""
    import dataclasses

    exp = asy.stationary_expansion(mf.models.chemical(), order=1)
    solution = dict(exp.derivation.moment_solution)
    key = (0, 1)
    solution[key] = solution[key] + sp.Rational(1, 10)
    broken = dataclasses.replace(exp, derivation=dataclasses.replace(exp.derivation,
                                                                     moment_solution=solution))
    check = asy.verify(broken)
    assert not check.ok
    assert check.orders["self_consistency[E]"] == 2


# ----------------------------------------------------------------------------- diagnostics (#13)
def test_balance_point_outside_the_domain_is_diagnosed_as_such() -> None:
    import solvers
    from meanfield import models as named
    from meanfield.errors import ResolutionWarning

    model = named.chemical_single(domain=(-3.0, 1.5))  # balance point E = 2 beyond the end
    with pytest.raises(ValueError, match=r"balance point\(s\) v=\[\[2.0\]\] lie outside it.*"
                       r"widen the domain"):
        asy.stationary_expansion(model)
    with pytest.raises(ValueError, match=r"v=\[\[-0.981779, -0.300531\]\] lie outside"):
        asy.stationary_expansion(named.chemical(domain=(0.0, 5.0)))
    # the exact stationary state piles up on the wall: its resolution report says so
    with pytest.warns(ResolutionWarning, match=r"mass at the domain ends.*widen the domain"):
        states = solvers.stationary_states(model, gamma=100.0, cells=400, stability=False)
    assert states[-1].mean[0] > 1.45
    assert states[-1].resolution.wall_mass[0] > 0.1


def test_non_positive_predicted_variance_warns_and_names_the_valid_order() -> None:
    import warnings

    from meanfield import models as named

    expansion = asy.stationary_expansion(named.chemical_single(), order=2)
    c1, c2 = expansion.var_coefficients[1, 0], expansion.var_coefficients[2, 0]
    assert c1 > 0 > c2  # D/(γA) − |c2|/γ²: negative below γ = −c2/c1
    with pytest.warns(UserWarning, match=r"order-2 expansion predicts a non-positive variance "
                      r"\(E at gamma=0.5; order 2 needs gamma >> 0.967.*order=1"):
        values = expansion.predict_var([0.5, 10.0])
    assert values[0, 0] < 0 < values[1, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(expansion.predict_var([10.0, 100.0]) > 0)
        assert np.all(asy.stationary_expansion(named.chemical_single()).predict_var([0.5]) > 0)
