"""Exact stationary states: self-consistency, exact Gaussians, bistability, continuation, γ → ∞."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

import meanfield as mf
import solvers
from solvers.fv import apply_operator, divergence_bands, flux_coefficients, scaled_differences
from solvers.stationary import GibbsMap


@pytest.mark.parametrize("name", ["chemical", "chemical_single", "current_balanced", "linear_ou"])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 100.0])
def test_residual_mass_and_positivity(name, gamma):
    model = mf.models.CATALOGUE[name]()
    states = solvers.stationary_states(model, gamma=gamma, cells=600, stability=False)
    assert len(states) >= 1
    for state in states:
        assert state.residual <= 1e-12
        assert np.allclose(state.mass, 1.0, atol=1e-13, rtol=0)
        assert state.rho.min() >= 0


def test_states_are_fixed_points_of_the_scharfetter_gummel_operator():
    model = mf.models.chemical()
    state = solvers.stationary_states(model, gamma=50.0, cells=800, stability=False)[0]
    gmap = GibbsMap(mf.numeric(model), state.grid, 50.0)
    delta = scaled_differences(gmap.dF, gmap.dG, gmap.nm.g, gmap.nm.D, gmap.all_moments(state.m), 50.0)
    a, b = flux_coefficients(delta, gmap.nm.D, state.grid.dx)
    bands = divergence_bands(a, b, state.grid.h)
    rate = apply_operator(*bands, state.rho)
    assert np.max(np.abs(rate)) <= 1e-9 * np.max(np.abs(bands[1] * state.rho))


def exact_linear_ou(model: mf.Model, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form Gaussian stationary state of ``linear_ou`` (independent of the solver)."""
    alpha, mu, E, k = np.array([1.0, 2.0]), np.array([0.5, -0.5]), np.array([1.5, -1.0]), 0.1
    g, D = np.array(model.g), np.array(model.diffusion)

    def equations(mean):
        m = 1 + k * mean
        return mean - (alpha * mu + gamma * g @ (m * E)) / (alpha + gamma * g @ m)

    mean = so.fsolve(equations, mu, xtol=1e-13)
    m = 1 + k * mean
    return mean, D / (alpha + gamma * g @ m)


@pytest.mark.parametrize("gamma", [0.5, 10.0, 1e3, 1e4])
def test_linear_ou_states_are_the_exact_gaussians(gamma):
    model = mf.models.linear_ou()
    states = solvers.stationary_states(model, gamma=gamma, cells=12000, stability=False)
    assert len(states) == 1
    mean, var = exact_linear_ou(model, gamma)
    assert np.max(np.abs(states[0].mean - mean)) < 1e-10
    assert np.max(np.abs(states[0].var - var)) < 1e-10


def test_bistable_model_every_branch_found_with_stability():
    model = mf.models.chemical_single()
    states = solvers.stationary_states(model, gamma=2.5, cells=400)
    assert len(states) == 3
    assert [s.stable for s in states] == [True, False, True]
    # the unstable state has one positive eigenvalue, the stable ones none
    assert states[1].eigenvalues.real.max() > 1e-3
    assert states[0].eigenvalues.real.max() < 0 and states[2].eigenvalues.real.max() < 0
    # outside the bistable window a single state remains
    assert len(solvers.stationary_states(model, gamma=1.0, cells=400, stability=False)) == 1
    assert len(solvers.stationary_states(model, gamma=5.0, cells=400, stability=False)) == 1


def test_dense_and_sparse_spectra_agree():
    model = mf.models.chemical_single()
    gmap = GibbsMap(mf.numeric(model), solvers.Grid.uniform(-3, 5, 500), 2.5)
    state = solvers.stationary_states(model, gamma=2.5, cells=500, stability=False)[1]
    from solvers.stationary import linearised_spectrum

    dense = linearised_spectrum(gmap, state.m, dense_limit=10_000)
    sparse = linearised_spectrum(gmap, state.m, dense_limit=10, count=4)
    assert abs(dense[0] - sparse[0]) < 1e-8 * max(1, abs(dense[0]))
    assert dense[0].real > 0


def test_continuation_follows_every_branch_through_the_folds():
    model = mf.models.chemical_single()
    gammas = np.linspace(1.0, 4.4, 18)
    branches = solvers.continuation(model, gammas, cells=300)
    assert len(branches) == 3
    low, middle, high = sorted(branches, key=lambda b: b.m[-1, 0] + (b.gammas[-1] > 4))
    assert low.gammas[0] == 1.0 and 2.9 < low.gammas[-1] < 3.3
    assert middle.gammas[0] > 1.5 and middle.gammas[-1] < 3.3
    assert high.gammas[-1] == pytest.approx(4.4)
    assert low.stable.all() and high.stable.all() and not middle.stable.any()
    for branch in branches:
        assert all(s.residual <= 1e-12 for s in branch.states)
        assert np.all(np.diff(branch.gammas) > 0)
    # every state found by the global search at a continuation point lies on a branch
    for gamma in (2.0, 2.6, 3.0):
        for state in solvers.stationary_states(model, gamma=gamma, cells=300, stability=False):
            on_branch = [b.m[list(b.gammas).index(gamma)] for b in branches if gamma in b.gammas]
            assert min(abs(state.m[0] - m[0]) for m in on_branch) < 1e-10


def balance_voltages(model: mf.Model) -> np.ndarray:
    """v* = Σ g E S(v*) / Σ g S(v*) for the default chemical model (MATH.md §4)."""
    g, E = np.array(model.g), np.array([2.0, -1.5])

    def S(v):
        return 1 / (1 + np.exp(-2 * v))

    return so.fsolve(lambda v: v - (g @ (E * S(v))) / (g @ S(v)), np.zeros(2), xtol=1e-13)


def test_mean_tends_to_the_balance_voltage_like_one_over_gamma():
    model = mf.models.chemical()
    v = balance_voltages(model)
    gammas = np.logspace(2, 5, 7)
    errors = []
    for gamma in gammas:
        cells = int(max(4000, 10 * 10 / np.sqrt(0.18 / (gamma * 0.3))))
        state = solvers.stationary_states(model, gamma=gamma, cells=cells, stability=False)
        assert len(state) == 1
        errors.append(np.max(np.abs(state[0].mean - v)))
    slope = np.polyfit(np.log(gammas), np.log(errors), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    assert errors[-1] < 1e-4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"gamma": -1.0}, ValueError, r"gamma=-1.0.*>= 0"),
        ({"gamma": float("nan")}, ValueError, r"gamma=nan.*finite"),
        ({"gamma": "big"}, TypeError, r"gamma has type str"),
        ({"gamma": 1.0, "cells": 2}, ValueError, r"cells=2.*>= 3"),
        ({"gamma": 1.0, "cells": 10.5}, TypeError, r"cells has type float"),
        ({"gamma": 1.0, "cells": 10, "grid": solvers.Grid.uniform(-1, 1, 10)}, ValueError,
         r"cells=10.*not both"),
        ({"gamma": 1.0, "grid": solvers.Grid.uniform(-9, 1, 10)}, ValueError, r"grid=.*inside"),
        ({"gamma": 1.0, "starts": 0}, ValueError, r"starts=0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        solvers.stationary_states(mf.models.chemical(), **kwargs)


def test_bad_model_and_gammas_are_rejected():
    with pytest.raises(TypeError, match=r"model has type str"):
        solvers.stationary_states("chemical", gamma=1.0)
    with pytest.raises(ValueError, match=r"gammas=.*strictly increasing"):
        solvers.continuation(mf.models.chemical_single(), [2.0, 1.0])
    with pytest.raises(ValueError, match=r"edges=.*increasing"):
        solvers.Grid(np.array([0.0, 1.0, 0.5, 2.0]))


def test_state_to_xarray():
    state = solvers.stationary_states(mf.models.chemical(), gamma=10.0, cells=300)[0]
    ds = state.to_xarray()
    assert ds["rho"].shape == (2, 300)
    assert float(ds.attrs["gamma"]) == 10.0
    assert mf.Model.from_json(ds.attrs["model"]) == mf.models.chemical()


def test_two_uncoupled_bistable_populations_have_nine_states_four_stable():
    x = mf.x
    pops = [mf.Population("A", -x, 0.5), mf.Population("B", "-x", 0.5)]
    model = mf.Model(pops, [[1, 0], [0, 1]], [[x - 2, x - 2], [x - 2, x - 2]],
                     [mf.sigmoid(x, 1, 6)] * 2, (-3, 5))
    states = solvers.stationary_states(model, gamma=2.5, cells=400)
    single = solvers.stationary_states(mf.models.chemical_single(), gamma=2.5, cells=400)
    assert len(states) == 9
    found = sorted(tuple(np.round(s.m, 9)) for s in states)
    expected = sorted((round(a.m[0], 9), round(b.m[0], 9)) for a in single for b in single)
    assert found == expected
    assert sum(s.stable for s in states) == 4
    assert all(s.stable == (a.stable and b.stable) for s in states for a in single for b in single
               if np.allclose(s.m, [a.m[0], b.m[0]], atol=1e-9))


def test_current_balanced_states_balance_the_inputs_at_large_gamma():
    """Ill-conditioned self-consistency (‖∂T/∂m‖ ∼ γ): still found, m → balanced value like 1/γ."""
    model = mf.models.current_balanced()
    balanced = np.array([0.2, 0.3])  # solves Σ_q g_pq sign_q m_q = drive_p m_drive
    errors = []
    gammas = [1e2, 1e3, 1e4, 1e5, 1e6]
    for gamma in gammas:
        states = solvers.stationary_states(model, gamma=gamma, cells=200)
        assert len(states) == 1 and states[0].stable
        assert states[0].residual <= 1e-12 * max(1.0, gamma / 1e4)
        errors.append(np.max(np.abs(states[0].m - balanced)))
    slope = np.polyfit(np.log(gammas), np.log(errors), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)
