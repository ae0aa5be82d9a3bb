"""The γ → ∞ limits (solvers.limits, docs/mathematics.md §4).

Initial layer, balance points, constrained Fokker–Planck.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import meanfield as mf
import solvers
from meanfield.studies.fitting import fit_slope
from solvers.limits import (
    balance_points,
    balance_trajectory,
    constrained_fokker_planck,
    early_behaviour,
    multipliers,
)
from solvers.rescaled import solve_rescaled


def test_initial_layer_approaches_the_early_behaviour_transport_like_one_over_gamma():
    model = mf.models.chemical()
    tau = 2.0
    limit = early_behaviour(model, tau_final=tau, save_at=[tau])
    gammas = [10.0, 20.0, 40.0, 80.0]
    mean_err, m_err = [], []
    for gamma in gammas:
        sol = solvers.solve(model, gamma=gamma, t_final=tau / gamma, cells=3000,
                            save_at=[tau / gamma], rtol=1e-6, atol=1e-11)
        mean_err.append(np.max(np.abs(sol.mean[-1] - limit.mean[-1])))
        m_err.append(np.max(np.abs(sol.m[-1] - limit.m[-1])))
    assert abs(fit_slope(gammas, mean_err).slope + 1) < 0.1, mean_err
    assert abs(fit_slope(gammas, m_err).slope + 1) < 0.1, m_err
    assert m_err[-1] < 2e-3
    np.testing.assert_allclose(limit.weights.sum(axis=1), 1.0, rtol=1e-14)


def test_balance_points_satisfy_the_weighted_average_formula_and_attract_the_flow():
    model = mf.models.chemical()
    points = balance_points(model)
    stable = [b for b in points if b.stable]
    assert len(stable) == 1
    v = stable[0].v
    E = np.array([2.0, -1.5])
    g = np.array(model.g)
    S = 0.5 * (1 + np.tanh(v))  # sigmoid with slope 2, threshold 0
    np.testing.assert_allclose(v, (g @ (E * S)) / (g @ S), atol=1e-12)
    np.testing.assert_allclose(stable[0].slope, g @ S, rtol=1e-12)
    reached = early_behaviour(model, tau_final=60.0, save_at=[60.0])
    np.testing.assert_allclose(reached.limit, v, atol=1e-6)
    assert np.max(reached.var[-1]) < 1e-10


def test_w1_distance_to_the_moving_balance_point_decays_like_inverse_sqrt_gamma():
    x, t = mf.x, mf.t
    drive = mf.ExternalInput("X", m=sp.Rational(1, 2) + sp.sin(3 * t) / 4, g=[0.5, 0.5],
                             phi=[x - 3, x - 3])
    model = mf.models.chemical().with_inputs([drive])
    trajectory = balance_trajectory(model, np.linspace(0.0, 1.0, 41))
    assert trajectory.stable.all()
    assert np.ptp(trajectory.v[:, 0]) > 0.1  # the drive really moves the balance point
    gammas = [1e2, 1e4, 1e6, 1e8]
    distances = []
    for gamma in gammas:
        sol = solve_rescaled(model, gamma=gamma, t_final=1.0, cells=200, rtol=1e-3,
                             save_at=[1.0])
        xs = sol.center[-1][:, None] + sol.eps * sol.y[-1]
        weights = sol.rho[-1] * np.diff(sol.x_edges(-1), axis=1)
        distances.append(np.sum(np.abs(xs - trajectory.v[-1][:, None]) * weights, axis=1))
    distances = np.array(distances)
    for p in range(model.P):
        assert abs(fit_slope(gammas, distances[:, p]).slope + 0.5) < 0.02, distances
    assert distances[-1].max() < 1e-4


def _consistent_initial(model):
    shift = constrained_fokker_planck(model, t_final=1e-3, cells=200).shift
    return [lambda x, s=s: np.exp(-((x - s) ** 2) / (2 * 1.2**2)) for s in shift]


def test_current_balanced_converges_to_the_constrained_fokker_planck_dae():
    model = mf.models.current_balanced()
    initial = _consistent_initial(model)
    times = [0.25, 0.5, 1.0]
    dae = constrained_fokker_planck(model, t_final=1.0, cells=200, save_at=times,
                                    initial=initial)
    nm = mf.numeric(model)
    gammas = [100.0, 300.0, 1000.0, 3000.0]
    errors = {"m": [], "mean": [], "L1": [], "lambda": []}
    for gamma in gammas:
        sol = solvers.solve(model, gamma=gamma, t_final=1.0, cells=200, save_at=times,
                            rtol=1e-7, atol=1e-12, initial=initial)
        gamma_h = np.array([[gamma * nm.field(p, np.zeros(1), sol.m[k], sol.t[k])[0]
                             for p in range(model.P)] for k in range(sol.t.size)])
        errors["m"].append(np.max(np.abs(sol.m[1:] - dae.m[1:])))
        errors["mean"].append(np.max(np.abs(sol.mean[1:] - dae.mean[1:])))
        errors["L1"].append(np.max(np.abs(sol.rho[1:] - dae.rho[1:]).sum(axis=2) * 0.06))
        errors["lambda"].append(np.max(np.abs(gamma_h[1:] - dae.multipliers[1:])))
    for name, values in errors.items():
        assert abs(fit_slope(gammas, values).slope + 1) < 0.1, (name, values)
    assert errors["lambda"][-1] < 5e-3


def test_constrained_solution_keeps_mass_and_constraint_and_matches_the_multiplier_formula():
    model = mf.models.current_balanced(m_drive=mf.parse("0.4 + 0.1*sin(2*t)"))
    sol = constrained_fokker_planck(model, t_final=1.0, cells=200, rtol=1e-7,
                                    save_at=[0.5, 1.0])
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    nm = mf.numeric(model)
    for k in range(sol.t.size):
        h = [nm.field(p, np.zeros(1), sol.m[k], sol.t[k])[0] for p in range(model.P)]
        assert np.max(np.abs(h)) < 1e-10
    assert sol.rho.min() >= -1e-12
    # Newton's λ from the implicit steps against the differentiated (continuous) constraint:
    # they differ by the O(h²) error of the finite volumes
    gaps = []
    for cells in (100, 200):
        coarse = sol if cells == 200 else constrained_fokker_planck(
            model, t_final=1.0, cells=cells, rtol=1e-7, save_at=[0.5, 1.0])
        formula = multipliers(model, coarse.rho[-1], coarse.edges, float(coarse.t[-1]))
        gaps.append(np.max(np.abs(coarse.multipliers[-1] / formula - 1)))
    assert gaps[1] < 5e-3, gaps
    assert gaps[0] / gaps[1] > 3, gaps


def test_limits_reject_the_wrong_kind_of_model():
    with pytest.raises(ValueError, match="non-concentrating"):
        constrained_fokker_planck(mf.models.chemical(), t_final=1.0)
    with pytest.raises(ValueError, match="concentrating"):
        balance_points(mf.models.current_balanced())
    with pytest.raises(ValueError, match="tau_final"):
        early_behaviour(mf.models.chemical(), tau_final=0.0)
    with pytest.raises(ValueError, match="times"):
        balance_trajectory(mf.models.chemical(), [1.0, 0.5])
    with pytest.raises(TypeError, match="model"):
        constrained_fokker_planck("current_balanced", t_final=1.0)


def test_limits_use_only_the_public_names_of_the_rescaled_package():
    # solvers.limits and solvers.constrained import from solvers.rescaled only names it
    # exports (its __all__), never private ones or its submodules
    import ast
    import pathlib

    import solvers.rescaled as rescaled

    for module in ("limits", "constrained"):
        source = pathlib.Path(solvers.__file__).with_name(f"{module}.py").read_text()
        imported = [(node.module, alias.name) for node in ast.walk(ast.parse(source))
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("solvers.rescaled") for alias in node.names]
        assert imported, module
        for where, name in imported:
            assert where == "solvers.rescaled", (module, where)
            assert name in rescaled.__all__, (module, name)
            assert not name.startswith("_"), (module, name)
