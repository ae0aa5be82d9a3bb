"""Invariants of the native solver (docs/mathematics.md §2–3).

Mass, positivity, exact equilibria, relaxation.
"""

import warnings

import numpy as np
import pytest

import solvers
from meanfield import models
from meanfield.numeric import numeric
from solvers.implicit import solve_stage
from solvers.solve import sg_problem
from solvers.stepping import integrate


def test_mass_is_conserved_to_round_off_over_ten_thousand_steps():
    model = models.chemical()
    grid = solvers.Grid.uniform(-5.0, 5.0, 40)
    _, problem = sg_problem(numeric(model), grid, 10.0)
    rho0 = np.exp(-((grid.x[None, :] - np.array([[1.0], [-2.0]])) ** 2))
    rho0 /= (rho0 @ grid.h)[:, None]
    frames, info = integrate(problem, rho0, [0.0, 5.0], scheme="bdf2", dt=5e-4)
    assert info["steps"] == 10_000
    assert np.max(np.abs(frames[-1] @ grid.h - 1.0)) <= 1e-12


@pytest.mark.parametrize("gamma", [0.0, 1.0, 1e2, 1e4, 1e6, 1e8])
@pytest.mark.parametrize("scheme", ["bdf2", "be"])
def test_densities_stay_non_negative_for_every_gamma(gamma, scheme):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # coarse grid at large gamma
        sol = solvers.solve(models.chemical(), gamma=gamma, t_final=0.5, cells=60,
                            scheme=scheme)
    assert sol.rho.min() >= 0.0
    assert np.max(np.abs(sol.mass - 1.0)) <= 1e-12


@pytest.mark.parametrize("gamma", [1.0, 30.0, 1e3])
@pytest.mark.parametrize("scheme", ["bdf2", "be"])
def test_exact_stationary_states_are_fixed_points_of_the_scheme(gamma, scheme):
    model = models.chemical_single()
    cells = 400 if gamma < 1e3 else 1500
    for state in solvers.stationary_states(model, gamma=gamma, cells=cells, stability=False):
        sol = solvers.solve(model, gamma=gamma, t_final=10.0, grid=state.grid,
                            initial=state.rho, dt=0.5, scheme=scheme, save_at=[])
        change = np.abs(sol.rho[-1] - state.rho) @ state.grid.h
        assert change <= 1e-11, (state, change)


def test_one_stage_at_a_stationary_state_returns_it_to_round_off():
    model = models.chemical()
    state = solvers.stationary_states(model, gamma=100.0, cells=300, stability=False)[0]
    _, problem = sg_problem(numeric(model), state.grid, 100.0)
    stage = solve_stage(problem, state.rho, 1e6, 0.0, state.m)
    assert stage.converged
    assert np.abs(stage.rho - state.rho).max() / state.rho.max() <= 1e-11
    assert np.max(np.abs(stage.m - state.m)) <= 1e-12


def test_long_time_relaxation_to_the_exact_stationary_state():
    model = models.chemical()
    state = solvers.stationary_states(model, gamma=10.0, cells=200, stability=False)[0]
    sol = solvers.solve(model, gamma=10.0, t_final=60.0, cells=200, save_at=[])
    distance = np.abs(sol.rho[-1] - state.rho) @ state.grid.h
    assert np.max(distance) <= 1e-10
    assert np.max(np.abs(sol.m[-1] - state.m)) <= 1e-10
