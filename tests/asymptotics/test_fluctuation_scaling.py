"""Leading-order fluctuations at large γ: the symbolic formulas and the numeric linear-noise theory."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import asymptotics as asy
import meanfield as mf
import solvers
from meanfield.studies.double_limit_map import concentrated_grid
from meanfield.studies.fitting import fit_slope


def test_single_population_closed_form() -> None:
    """One population: ``n·Var(m) = Ψ'(v)² D/(γ K)`` and ``τ = 1/(γ K)``, ``K = h'(v) + ∂_m h Ψ'``."""
    model = mf.models.chemical_single()
    fs = asy.fluctuation_scaling(model)
    assert fs.order_var == -1
    assert fs.order_time == -1
    k = float(fs.K.subs(dict(zip(fs.K.free_symbols, fs.v, strict=True)))[0, 0])
    v = fs.v[0]
    dpsi = 1.5 * (1 - np.tanh(3 * v - 3) ** 2)
    D = 0.5**2 / 2
    np.testing.assert_allclose(fs.m_var_coefficient, dpsi**2 * D / k, rtol=1e-12)
    np.testing.assert_allclose(fs.m_time_coefficient, 1 / k, rtol=1e-12)
    np.testing.assert_allclose(fs.mean_var_coefficient, D / k, rtol=1e-12)
    assert fs.m_var(100.0)[0] == pytest.approx(fs.m_var_coefficient[0] / 100)
    assert fs.covariance[0, 0].has(asy.gamma)


def test_symbolic_covariance_solves_the_lyapunov_equation() -> None:
    fs = asy.fluctuation_scaling(mf.models.chemical())
    K = fs.K
    subs = {s: float(val) for s, val in zip(sorted(K.free_symbols, key=str), fs.v, strict=True)}
    Kn = np.array(K.subs(subs), dtype=float)
    Sn = np.array(fs.covariance.subs(subs).subs(asy.gamma, 1), dtype=float)
    D = np.diag([0.8**2, 0.6**2])  # 2D
    np.testing.assert_allclose(Kn @ Sn + Sn @ Kn.T, D, atol=1e-12)
    assert sp.simplify(fs.order_var + 1) == 0


def test_numeric_prediction_follows_the_symbolic_order() -> None:
    model = mf.models.chemical()
    fs = asy.fluctuation_scaling(model)
    gammas = np.array([1e2, 1e3, 1e4, 1e5])
    var, tau = [], []
    for g in gammas:
        slope = asy.balance_points(model).principal.slope
        width = float(np.min(np.sqrt(np.array(model.diffusion) / (g * slope))))
        grid = concentrated_grid(model.domain, fs.v, width)
        states = solvers.stationary_states(model, gamma=float(g), grid=grid, starts=8)
        state = min((s for s in states if s.stable), key=lambda s: np.abs(s.mean - fs.v).max())
        fl = solvers.fluctuations(model, float(g), state=state, observables="m")
        var.append(fl.m_var)
        tau.append(fl.correlation_time["m"])
    var, tau = np.array(var), np.array(tau)
    for q in range(2):
        assert abs(fit_slope(gammas, var[:, q]).slope - float(fs.order_var)) < 0.05
        assert abs(fit_slope(gammas, tau[:, q]).slope - float(fs.order_time)) < 0.05
    # the coefficients themselves, at the largest γ
    np.testing.assert_allclose(var[-1] * gammas[-1], fs.m_var_coefficient, rtol=0.01)
    np.testing.assert_allclose(tau[-1] * gammas[-1], fs.m_time_coefficient, rtol=0.01)


def test_non_concentrating_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="concentrating"):
        asy.fluctuation_scaling(mf.models.current_balanced())
