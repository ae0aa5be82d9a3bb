"""The fluctuations of the moments under frozen-moment steps (docs/mathematics.md §11).

Model: ``dX = [−α(X − μ) − γ(aX − b⟨X⟩)] dt + σ dW`` (Ψ = x), so the mean ``M = ⟨X⟩`` follows
the closed linear recursion of each scheme exactly: an AR(1) whose stationary variance gives
``n·Var(m)`` in closed form. Exact (SDE): ``σ²/(2λ)``, ``λ = α + γ(a − b)``. The tests check the
one-step recursion to round-off, the closed form against a long run, and the first-order
coefficients stated in §11.
"""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
from solvers.network import simulate_network
from solvers.network_kernels import noise_streams, output_fraction

x = mf.x


def feedback_model(alpha, mu, a, b, sigma):
    """``h(x) = γ(a x − b⟨x⟩)``: one own-population term and one external input of moment 1."""
    return mf.Model([mf.Population("A", -alpha * (x - mu), sigma)], [[b]], [[-1]], [x], (-8, 8),
                    inputs=[mf.ExternalInput("L", 1, [a], [x])])


def ou_coefficients(alpha, gamma, a, b, dt):
    """``(θ, φ₁(κ), s² = φ₁(2κ))`` of the ``"ou"`` step, ``κ = γa``."""
    kappa = gamma * a
    theta = float(output_fraction(kappa, dt))
    return theta, -np.expm1(-kappa * dt) / kappa, -np.expm1(-2 * kappa * dt) / (2 * kappa)


def scheme_nvar(scheme, alpha, gamma, a, b, sigma, dt):
    """Stationary ``n·Var(m)`` of the scheme's mean recursion (reported states)."""
    beta = gamma * (a - b)
    if scheme == "em":
        lam = alpha + beta
        return sigma**2 / (lam * (2 - lam * dt))
    theta, phi1, s2 = ou_coefficients(alpha, gamma, a, b, dt)
    r = (1 - alpha * dt) * (1 - phi1 * beta)  # relaxed state to relaxed state
    return (1 - theta * alpha * dt) ** 2 * sigma**2 * s2 / (1 - r**2)


def first_order_bias(scheme, alpha, gamma, a, b, dt):
    """§11: relative bias of ``n·Var(m)`` to first order in ``Δt``."""
    lam = alpha + gamma * (a - b)
    if scheme == "em":
        return lam * dt / 2
    return -dt * (gamma * b * (lam + alpha) + alpha**2) / (2 * lam)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_one_step_of_the_mean_is_the_closed_linear_recursion(scheme, fast):
    # one step from given agents (κΔt = 0.16); ξ̄: the mean of the chunk stream's normals
    alpha, mu, a, b, sigma, gamma, dt, n, seed = 1.0, 0.3, 1.0, 0.6, 0.5, 8.0, 0.02, 1000, 3
    x0 = np.random.default_rng(0).normal(0.5, 0.2, n)
    net = simulate_network(feedback_model(alpha, mu, a, b, sigma), gamma=gamma, n=n, t_final=dt,
                           dt=dt, seed=seed, initial=[x0], boundary="none", scheme=scheme,
                           save_at=[0.0, dt], fast=fast)
    xi = noise_streams(np.random.SeedSequence(seed).spawn(2)[1], n)[0].standard_normal(n).mean()
    M = x0.mean()
    if scheme == "em":
        expected = M - dt * (alpha * (M - mu) + gamma * (a - b) * M) + sigma * np.sqrt(dt) * xi
    else:  # drift (1 − θ)Δt, relax with the moments of the drifted agents, drift θΔt
        theta, phi1, s2 = ou_coefficients(alpha, gamma, a, b, dt)
        y = M - (1 - theta) * alpha * dt * (M - mu)
        z = y * (1 - phi1 * gamma * (a - b)) + sigma * np.sqrt(s2) * xi
        expected = z - theta * alpha * dt * (z - mu)
    assert net.mean[-1, 0] == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize("scheme", ["em", "ou"])
@pytest.mark.parametrize(("a", "b"), [(1.0, 0.6), (1.0, 1.0), (1.0, 0.0), (0.5, 0.3)])
def test_first_order_bias_of_n_var_m_stated_in_the_docs(scheme, a, b):
    # the closed forms expanded in Δt: (scheme − exact)/exact → the §11 coefficient as Δt → 0
    alpha, gamma, sigma = 2.0, 100.0, 0.7
    lam = alpha + gamma * (a - b)
    exact = sigma**2 / (2 * lam)
    relative = []
    for dt in (1e-5, 1e-6):
        bias = scheme_nvar(scheme, alpha, gamma, a, b, sigma, dt) / exact - 1
        relative.append(abs(bias / first_order_bias(scheme, alpha, gamma, a, b, dt) - 1))
    # the remainder is second order: its share falls like Δt (to 0.16 % at most at Δt = 1e-6)
    assert relative[1] < 2e-3
    assert relative[0] > 5 * relative[1]


def test_long_run_n_var_m_matches_the_schemes_closed_form_not_the_sde():
    # κΔt = 1 on a mean-preserving coupling (a = b): the frozen moments damp the mean's noise,
    # n·Var(m) = 0.42 of the SDE's σ²/(2α); measured from the saved moments of one long run
    alpha, a, b, sigma, gamma, dt, n = 4.0, 1.0, 1.0, 0.5, 50.0, 0.02, 20
    horizon, burn_in = 300.0, 2.0
    model = feedback_model(alpha, 0.0, a, b, sigma)
    net = simulate_network(model, gamma=gamma, n=n, t_final=horizon, dt=dt, seed=17, scheme="ou",
                           initial=[np.zeros(n)], boundary="none", bins=4,
                           save_at=np.arange(0.0, horizon, 3 * dt), fast=True)
    m = net.m[net.t > burn_in, 0]
    measured = n * np.mean(m**2)  # the stationary mean is μ = 0 exactly
    predicted = scheme_nvar("ou", alpha, gamma, a, b, sigma, dt)
    exact = sigma**2 / (2 * alpha)
    # relative standard error of a time-averaged variance: √(2/(λ T)) ≈ 4.1 % (λ = α)
    se = np.sqrt(2 / (alpha * (horizon - burn_in)))
    assert abs(measured / predicted - 1) < 4 * se
    assert predicted / exact == pytest.approx(0.42, abs=0.01)
    assert abs(measured / exact - 1) > 8 * se
