"""The ``"ou"`` splitting in time-dependent runs at large ``κΔt`` (κ ≈ γA ≥ 1/Δt).

Two situations: a coupling that leaves the population mean invariant (the mean then moves only
by the intrinsic drift, which an unsplit exponential step slows by ``φ₁(κ)/Δt``), and the
chemical E/I model following a time-dependent drive, against the PDE.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import meanfield as mf
import solvers
from solvers.network import simulate_network

x = mf.x


def mean_preserving_model():
    """``dX = [(1 − X) − γ(X − ⟨X⟩)] dt + σ dW``: ``h(x) = x − ⟨x⟩`` (κ = γ) as two separable terms.

    The coupling sums to zero over the population, so ``d⟨X⟩/dt = 1 − ⟨X⟩`` exactly, whatever γ.
    """
    return mf.Model([mf.Population("A", 1 - x, 0.5)], [[1.0]], [[-1]], [x], (-3, 3),
                    inputs=[mf.ExternalInput("L", 1, [1.0], [x])])


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("gamma", [1e3, 1e4])
def test_mean_moves_at_the_intrinsic_speed_when_the_coupling_preserves_it(gamma, fast):
    dt, horizon, n, sigma = 1e-3, 0.5, 5000, 0.5
    net = simulate_network(mean_preserving_model(), gamma=gamma, n=n, t_final=horizon, dt=dt,
                           seed=21, scheme="ou", save_at=np.linspace(0, horizon, 6), fast=fast)
    start = net.mean[0, 0]  # the sampled initial mean
    exact = 1 + (start - 1) * np.exp(-net.t)
    # the splitting moves the mean by one explicit Euler step of 1 − x per step (global error
    # ≤ Δt|x₀ − 1|/2), read θΔt further (θ ≤ 1/2), plus the mean of the noise, of variance
    # σ²Σ s²/n with s² = (1 − e^{−2κΔt})/(2κ) per step
    noise = sigma * np.sqrt(net.t / dt * -np.expm1(-2 * gamma * dt) / (2 * gamma) / n)
    band = 4 * noise + dt * abs(start - 1) + 1e-12
    assert np.all(np.abs(net.mean[:, 0] - exact) < band)
    # an unsplit exponential step x + φ₁(κ)(f − h) would move it φ₁/Δt times as fast
    phi1 = -np.expm1(-gamma * dt) / gamma
    unsplit = 1 + (start - 1) * (1 - phi1) ** np.rint(net.t / dt)
    assert np.abs(unsplit - exact)[-1] > 5 * band[-1]  # 9× at γ = 1e3, 70× at 1e4
    # the agents stay synchronised: variance → D/(γ + 1) (a few relaxation times of 1/γ)
    assert net.var[-1, 0] == pytest.approx(sigma**2 / 2 / (gamma + 1), rel=0.1)


@pytest.fixture(scope="module")
def driven():
    """Chemical E/I model with a time-dependent excitatory drive, and its PDE solution."""
    drive = mf.ExternalInput("X", 0.5 + 0.4 * sp.sin(4 * mf.t), [1.0, 1.0], [x - 2, x - 2])
    model = mf.models.chemical(domain=(-2.5, 2.5)).with_inputs([drive])
    gamma, horizon = 1e3, 1.0
    # 1250 cells (≥ 2 per standard deviation at t ≥ 0.2): the means differ from a 4000-cell,
    # rtol 5e-7 solution on (−5, 5) by 1.3e-5, far below the network's time-step errors
    pde = solvers.solve(model, gamma=gamma, t_final=horizon, cells=1250, rtol=1e-5,
                        save_at=np.linspace(0, horizon, 11))
    return model, gamma, pde


def test_chemical_network_follows_a_time_dependent_drive_with_first_order_lag(driven):
    model, gamma, pde = driven
    n, later = 20_000, slice(2, None)  # compare after the initial layer (t ≥ 0.2)
    # κ_p = γ Σ_j g_pj m_j along the PDE solution: κΔt between about 1 and 4 at Δt = 2e-3
    g = np.array([[1.0, 2.0, 1.0], [1.5, 1.0, 1.0]])
    drive = 0.5 + 0.4 * np.sin(4 * pde.t)
    kappa = gamma * np.column_stack([pde.m, drive]) @ g.T
    assert kappa[later].min() * 2e-3 > 1.0
    errors = []
    for dt in (2e-3, 1e-3):
        net = simulate_network(model, gamma=gamma, n=n, t_final=1.0, dt=dt, seed=8, scheme="ou",
                               save_at=pde.t, fast=True)
        np.testing.assert_allclose(net.t, pde.t, atol=1e-12)
        errors.append(np.max(np.abs(net.mean - pde.mean)[later]))
        # statistical size of a mean: √(var/n) ≈ 1e-4, well below the errors measured
        assert np.max(np.sqrt(net.var[later] / n)) < 2e-4
        np.testing.assert_allclose(net.var[later], pde.var[later], rtol=0.1)
    # the lag behind the moving balance point is O(Δt): 2.4e-3, 1.06e-3 (and 5.0e-4 at 5e-4)
    order = np.log2(errors[0] / errors[1])
    assert 0.7 < order < 1.3
    assert errors[1] < 2e-3


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("gamma", [1e3, 1e4])
def test_reported_state_has_the_exact_offset_of_a_constant_drift(gamma, fast):
    # f ≡ 5 against h = κ(x − 1), Ψ ≡ 1 (κ = γ frozen exactly): stationary law N(1 + f/κ, D/κ).
    # Reading the output θ(κΔt) into the drift makes the scheme's fixed point exact; plain Lie
    # (θ = 0) would sit at 1 + Δt f/(e^{κΔt} − 1), unsplit exponential Euler at 1 + f/κ.
    f, sigma, dt, n = 5.0, 0.5, 1e-3, 20_000
    model = mf.Model([mf.Population("A", f, sigma)], [[1.0]], [[x - 1]], [1], (-3, 3))
    variance = sigma**2 / 2 / gamma
    start = [np.random.default_rng(0).normal(1 + f / gamma, np.sqrt(variance), n)]
    net = simulate_network(model, gamma=gamma, n=n, t_final=0.05, dt=dt, seed=4, scheme="ou",
                           initial=start, save_at=np.linspace(0.01, 0.05, 41), fast=fast)
    se = np.sqrt(variance / n)
    assert abs(net.mean.mean() - (1 + f / gamma)) < 4 * se
    lie = 1 + dt * f / np.expm1(gamma * dt)
    assert abs(lie - (1 + f / gamma)) > 15 * se  # what the reading θΔt f(z) corrects
    assert net.var.mean() == pytest.approx(variance, rel=4 * np.sqrt(2 / n))
