"""Accuracy of the native solver: orders in space and time, default tolerances, stiff coupling."""

import warnings

import numpy as np
import pytest
import sympy as sp

import solvers
from meanfield import models
from meanfield.expressions import t


def l1(a, b, grid):
    """Largest L1 distance over populations (and frames)."""
    return float(np.max(np.abs(a - b) @ grid.h))


def order(steps, errors):
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


@pytest.fixture(autouse=True)
def _quiet_resolution_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_second_order_in_space_on_a_smooth_transient():
    model = models.chemical()
    run = dict(gamma=2.0, t_final=0.3, dt=1e-3, save_at=[])
    reference = solvers.solve(model, cells=3200, **run).rho[-1]
    cells = np.array([100, 200, 400, 800])
    errors = []
    for M in cells:
        sol = solvers.solve(model, cells=int(M), **run)
        averaged = reference.reshape(model.P, M, -1).mean(axis=2)
        errors.append(l1(sol.rho[-1], averaged, sol.grid))
    assert abs(order(1.0 / cells, errors) - 2.0) <= 0.2, errors
    assert errors[-1] <= 2e-4


@pytest.mark.parametrize(("scheme", "declared", "cap"), [("be", 1, 2e-2), ("bdf2", 2, 5e-4)])
def test_declared_order_of_each_time_stepper(scheme, declared, cap):
    model = models.chemical()
    start = solvers.stationary_states(model, gamma=1.0, cells=100, stability=False)[0].rho
    run = dict(gamma=10.0, t_final=0.5, cells=100, initial=start, save_at=[])
    reference = solvers.solve(model, dt=0.05 / 128, **run)
    steps = 0.05 / 2.0 ** np.arange(4)
    errors = [l1(solvers.solve(model, dt=dt, scheme=scheme, **run).rho[-1], reference.rho[-1],
                 reference.grid) for dt in steps]
    assert abs(order(steps, errors) - declared) <= 0.3, errors
    assert errors[-1] <= cap


@pytest.mark.parametrize("name", ["chemical", "current_balanced"])
def test_default_tolerances_give_transient_l1_error_below_1e_4(name):
    model = models.CATALOGUE[name]()
    times = np.linspace(0.0, 1.0, 11)
    sol = solvers.solve(model, gamma=10.0, t_final=1.0, cells=200, save_at=times)
    reference = solvers.solve(model, gamma=10.0, t_final=1.0, cells=200, save_at=times,
                              rtol=1e-9, atol=1e-12)
    assert l1(sol.rho, reference.rho, sol.grid) <= 1e-4
    assert sol.info["rejected_steps"] <= 0.1 * sol.info["steps"]


@pytest.mark.parametrize(("scheme", "declared"), [("be", 1), ("bdf2", 2)])
def test_stable_and_accurate_at_gamma_dt_above_1e3_on_current_balanced(scheme, declared):
    """Moments fed back stiffly (γ = 4e4, γ·dt = 4e3 … 1e3): the declared order is kept."""
    gamma = 4e4
    model = models.current_balanced(m_drive=sp.Rational(2, 5) + sp.sin(2 * t) / 10)
    start = solvers.stationary_states(model, gamma=gamma, cells=100, stability=False)[0].rho
    run = dict(gamma=gamma, t_final=1.0, cells=100, initial=start, save_at=[0.5, 1.0])
    reference = solvers.solve(model, dt=0.1 / 64, **run)
    steps = np.array([0.1, 0.05, 0.025])
    assert np.all(gamma * steps >= 1e3)
    errors, moment_errors = [], []
    for dt in steps:
        sol = solvers.solve(model, dt=float(dt), scheme=scheme, **run)
        assert sol.rho.min() >= 0
        errors.append(l1(sol.rho, reference.rho, sol.grid))
        moment_errors.append(float(np.max(np.abs(sol.m - reference.m))))
    assert abs(order(steps, errors) - declared) <= 0.3, errors
    assert max(errors) <= (4e-2 if scheme == "be" else 1e-2)
    assert max(moment_errors) <= 1e-6


def test_implicit_moments_where_lagged_moments_fail():
    """One backward-Euler stage at γ·κ = 1e3 on current_balanced: Picard on m cycles, Newton
    converges to 1e-12 and the result is the stage solution."""
    from meanfield.numeric import numeric
    from solvers.implicit import solve_stage
    from solvers.solve import initial_densities, sg_problem

    model = models.current_balanced()
    grid = solvers.Grid.uniform(*model.domain, 100)
    nm = numeric(model)
    _, problem = sg_problem(nm, grid, 1e4)
    rho0 = initial_densities(nm, grid, None)
    kappa = 0.1
    m0 = problem.readout(rho0)
    stage = solve_stage(problem, rho0, kappa, kappa, m0)
    assert stage.converged
    assert stage.residual <= 1e-12
    assert np.max(np.abs(problem.readout(stage.rho) - stage.m)) <= 1e-15
    assert abs(stage.rho @ grid.h - 1.0).max() <= 1e-13
    assert stage.rho.min() >= 0
    kernel_args = (problem.scale, problem.widths, problem.weights, kappa, rho0)
    lagged = m0
    for _ in range(50):  # Picard: m <- w·ρ(m)
        lagged = problem.kernel.solve(problem.coupling.differences(lagged, kappa),
                                      *kernel_args)[1]
    assert np.max(np.abs(lagged - stage.m)) >= 0.1
