"""Balance points, fraction near them, exact W1 to a density, ensembles with confidence bands."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import meanfield as mf
import solvers
from solvers.network import simulate_network
from solvers.network_ensemble import network_ensemble
from solvers.network_observables import (
    balance_points,
    fraction_within,
    wasserstein_to_density,
    wasserstein_to_pde,
)


def sigmoid2(v):
    return 1 / (1 + np.exp(-2 * v))


def test_balance_points_solve_the_weighted_average_fixed_point():
    v = balance_points(mf.models.chemical())
    assert v.shape == (1, 2)
    E, g = np.array([2.0, -1.5]), np.array([[1.0, 2.0], [1.5, 1.0]])
    S = sigmoid2(v[0])
    np.testing.assert_allclose(g @ (E * S) / (g @ S), v[0], atol=1e-12)
    np.testing.assert_allclose(balance_points(mf.models.chemical_single()), [[2.0]], atol=1e-12)
    assert balance_points(mf.models.current_balanced()).shape == (0, 2)


def test_stationary_means_approach_the_balance_points_like_one_over_gamma():
    model = mf.models.chemical()
    v = balance_points(model)[0]
    gaps = []
    for gamma in (1e3, 1e4):
        state = solvers.stationary_states(model, gamma=gamma, cells=3000, stability=False)[0]
        gaps.append(np.max(np.abs(state.mean - v)))
    assert gaps[1] < 1.2e-4  # |μ|/γ with |μ| ≈ 0.92 (docs/mathematics.md §7)
    assert 0.8 < np.log10(gaps[0] / gaps[1]) < 1.2


def test_fraction_within_delta():
    states = [np.array([0.0, 0.05, 0.2, 1.0]), np.array([2.0, 2.0, 3.0, -1.0])]
    points = np.array([[0.0, 2.0], [1.0, -1.0]])
    np.testing.assert_allclose(fraction_within(states, points, 0.1), [0.75, 0.75])
    assert np.all(np.isnan(fraction_within(states, np.zeros((0, 2)), 0.1)))
    with pytest.raises(ValueError, match="delta=0"):
        fraction_within(states, points, 0)
    with pytest.raises(ValueError, match=r"points=.*shape \(K, 2\)"):
        fraction_within(states, np.zeros(3), 0.1)


def test_wasserstein_to_density_exact_values():
    edges = np.linspace(0, 1, 11)
    uniform = np.ones(10)
    # all mass at 1/2 against U(0,1): ∫|F| = 1/8 on each side
    assert wasserstein_to_density(np.full(7, 0.5), edges, uniform) == pytest.approx(0.25, abs=1e-15)
    # the n quantile midpoints of U(0,1): 1/(4n)
    n = 1000
    midpoints = (np.arange(n) + 0.5) / n
    assert wasserstein_to_density(midpoints, edges, 3 * uniform) == pytest.approx(1 / (4 * n))
    # a point outside the support: distance to the mean plus nothing else
    assert wasserstein_to_density(np.array([3.0]), edges, uniform) == pytest.approx(2.5)
    # agreement with scipy's W1 to a large sample of the density
    rng = np.random.default_rng(0)
    sample = rng.normal(size=3000)
    grid = np.linspace(-6, 6, 4001)
    centres = (grid[1:] + grid[:-1]) / 2
    ours = wasserstein_to_density(sample, grid, np.exp(-centres**2 / 2))
    reference = stats.wasserstein_distance(sample, stats.norm.ppf((np.arange(200_000) + 0.5) / 2e5))
    assert ours == pytest.approx(reference, abs=2e-5)
    with pytest.raises(ValueError, match="density="):
        wasserstein_to_density(sample, grid, np.ones(3))
    with pytest.raises(ValueError, match="samples="):
        wasserstein_to_density(np.array([np.nan]), grid, np.exp(-centres**2))


def test_wasserstein_to_stationary_pde_state():
    model = mf.models.linear_ou()
    state = solvers.stationary_states(model, gamma=5.0, cells=2000, stability=False)[0]
    net = simulate_network(model, gamma=5.0, n=5000, t_final=0.2, dt=2e-3, seed=1,
                           initial=state, scheme="ou", fast=False)
    w1 = wasserstein_to_pde(net.states, state)
    # E W1 of n i.i.d. samples ≈ sd/√n · √(2/π) ∫ √(Φ(1−Φ)) ≈ 0.9 sd/√n for a Gaussian
    assert np.all(w1 < 3 * np.sqrt(state.var / 5000))
    shifted = wasserstein_to_pde([s + 0.1 for s in net.states], state)
    np.testing.assert_allclose(shifted, 0.1, atol=np.max(w1) + 1e-3)
    with pytest.raises(TypeError, match="reference has type"):
        wasserstein_to_pde(net.states, np.zeros(3))


def test_ensemble_bands():
    model = mf.models.linear_ou()
    state = solvers.stationary_states(model, gamma=5.0, cells=2000, stability=False)[0]
    ens = network_ensemble(model, seeds=[1, 2, 3, 4, 5], gamma=5.0, n=400, t_final=0.1,
                           dt=0.01, initial=state, scheme="ou", save_at=[0.0, 0.1], fast=False)
    centre, lower, upper = ens.band("mean")
    data = ens.values["mean"]
    half = stats.t.ppf(0.975, 4) * data.std(axis=0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(upper - centre, half, rtol=1e-12)
    np.testing.assert_allclose(centre - lower, half, rtol=1e-12)
    assert np.all((lower[-1] < state.mean) & (state.mean < upper[-1]))
    ds = ens.to_xarray()
    assert ds["var"].shape == (5, 2, 2)
    assert "balance_residual_upper" in ds
    with pytest.raises(ValueError, match="seeds="):
        network_ensemble(model, seeds=[1, 1], gamma=5.0, n=10, t_final=0.1, dt=0.05)
    with pytest.raises(ValueError, match=r"confidence=1\.5"):
        network_ensemble(model, seeds=[1, 2], confidence=1.5, gamma=5.0, n=10, t_final=0.1,
                         dt=0.05)
    with pytest.raises(ValueError, match="name='rho'"):
        ens.band("rho")
