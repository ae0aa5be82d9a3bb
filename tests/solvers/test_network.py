"""The n-agent network simulator: stationary laws, scheme orders, reproducibility, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import fsolve

import meanfield as mf
import solvers
from solvers.network import simulate_network

# linear_ou defaults (meanfield.models.linear_ou): every moment equation closes exactly
ALPHA = np.array([1.0, 2.0])
MU = np.array([0.5, -0.5])
SIGMA = np.array([0.6, 0.4])
G = np.array([[0.5, 1.0], [1.0, 0.5]])
E = np.array([1.5, -1.0])
K = np.array([0.1, 0.1])


@pytest.fixture(scope="module")
def linear():
    return mf.models.linear_ou()


def moment_rhs(gamma):
    """Exact moment ODEs of linear_ou: Φ and Ψ affine, so m_q = 1 + k_q mean_q for any law."""
    def rhs(_t, y):
        mean, var = y[:2], y[2:]
        m = 1 + K * mean
        A = G @ m
        dmean = -ALPHA * (mean - MU) - gamma * (A * mean - G @ (m * E))
        dvar = -2 * (ALPHA + gamma * A) * var + SIGMA**2
        return np.concatenate([dmean, dvar])
    return rhs


def theta(kappa, dt):
    """Where in the drift the "ou" output is read: θ(u) = 1/u − 1/(e^u − 1), u = κΔt."""
    u = kappa * dt
    return 1 / u - 1 / np.expm1(u)


def scheme_stationary_mean(scheme, gamma, dt):
    """Fixed point of the scheme's exact mean recursion for linear_ou (Φ, Ψ affine, f linear).

    ``"ou"``: the relaxed state ``z`` follows ``y = z + Δt f(z)``, ``z⁺ = e^{−κΔt} y + φ₁ a``
    (``κ, a`` from the moments of ``y``); the output is ``z + θ(κΔt) Δt f(z)``.
    Returns the output mean and, for ``"ou"``, ``κ`` (for the variance).
    """
    def drift(mean):
        return -ALPHA * (mean - MU)

    def coefficients(y):
        m = 1 + K * y  # the moments of the drifted agents
        return gamma * (G @ m), gamma * (G @ (m * E))

    def step(mean):
        if scheme == "em":
            m = 1 + K * mean
            return mean + dt * (drift(mean) - gamma * ((G @ m) * mean - G @ (m * E)))
        y = mean + dt * drift(mean)
        kappa, a = coefficients(y)
        return np.exp(-kappa * dt) * y - np.expm1(-kappa * dt) / kappa * a
    fixed = fsolve(lambda mean: step(mean) - mean, MU, xtol=1e-14)
    if scheme == "em":
        return fixed, None
    kappa = coefficients(fixed + dt * drift(fixed))[0]
    return fixed + theta(kappa, dt) * dt * drift(fixed), kappa


def scheme_stationary_variance(scheme, gamma, dt):
    """Stationary variance of the scheme's linear recursion, and the exact ``D/(α + κ)``.

    ``"em"``: ``x⁺ = (1 − λΔt) x + σ√Δt ξ``, ``λ = α + κ``; ``"ou"``: ``y = (1 − αΔt) z``,
    ``z⁺ = e^{−κΔt} y + s ξ``, output ``(1 − θαΔt) z``.
    """
    mean, kappa = scheme_stationary_mean(scheme, gamma, dt)
    if scheme == "em":
        kappa = gamma * (G @ (1 + K * mean))
        lam = ALPHA + kappa
        return SIGMA**2 * dt / (1 - (1 - lam * dt) ** 2), SIGMA**2 / 2 / lam
    s2 = -np.expm1(-2 * kappa * dt) / (2 * kappa)
    r = np.exp(-kappa * dt) * (1 - ALPHA * dt)
    relaxed = SIGMA**2 * s2 / (1 - r**2)
    return relaxed * (1 - theta(kappa, dt) * ALPHA * dt) ** 2, SIGMA**2 / 2 / (ALPHA + kappa)


@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_stationary_moments_match_pde_within_predicted_bands(linear, scheme):
    gamma, dt, n = 20.0, 1e-3, 20_000
    state = solvers.stationary_states(linear, gamma=gamma, cells=2000, stability=False)[0]
    net = simulate_network(linear, gamma=gamma, n=n, t_final=0.6, dt=dt, seed=11, initial=state,
                           scheme=scheme, save_at=np.linspace(0.1, 0.6, 51), fast=False)
    mean, var = net.mean.mean(axis=0), net.var.mean(axis=0)
    predicted, exact = scheme_stationary_variance(scheme, gamma, dt)
    # the PDE state on 2000 cells is the exact Gaussian law to discretisation error
    np.testing.assert_allclose(state.var, exact, rtol=1e-4)
    # statistical band: 4 standard errors of a single snapshot (time averaging only shrinks it)
    se_mean, se_var = np.sqrt(state.var / n), state.var * np.sqrt(2 / n)
    # time-step band: the schemes' exact recursions for the mean and the variance. EM's mean
    # fixed point is exact for a linear drift; the splitting's is off by the frozen moments'
    # feedback only (here 9e-5, against Δt·|f| ≈ 2e-3; 1e-3 if read at θ = 0, plain Lie)
    predicted_mean = scheme_stationary_mean(scheme, gamma, dt)[0]
    assert np.all(np.abs(mean - predicted_mean) < 4 * se_mean)
    mean_bias = np.max(np.abs(predicted_mean - state.mean))
    assert mean_bias < (1e-6 if scheme == "em" else 1.5e-4)
    # the variance bias: EM λΔt/(2−λΔt), here about 1.6%
    assert np.all(np.abs(var - predicted) < 4 * se_var)
    bias = np.abs(predicted / exact - 1)
    assert np.all(bias < (0.02 if scheme == "em" else 2e-4))


def test_stationary_moments_nonlinear_chemical_model():
    model = mf.models.chemical()
    gamma, dt, n = 10.0, 1e-3, 20_000
    state = solvers.stationary_states(model, gamma=gamma, cells=1000, stability=False)[0]
    net = simulate_network(model, gamma=gamma, n=n, t_final=0.5, dt=dt, seed=2, initial=state,
                           scheme="ou", save_at=np.linspace(0.1, 0.5, 41), fast=False)
    se_mean, se_var = np.sqrt(state.var / n), state.var * np.sqrt(2 / n)
    # time-step band of the exponential step: Δt·|f'| relative (|f'| ≤ 1 near the state)
    assert np.all(np.abs(net.mean.mean(0) - state.mean) < 4 * se_mean + dt * np.sqrt(state.var))
    assert np.all(np.abs(net.var.mean(0) - state.var) < 4 * se_var + 2 * dt * state.var)
    np.testing.assert_allclose(net.m.mean(0), state.m, atol=4 * np.max(se_mean))


def test_bias_free_scheme_variance_error_ten_times_smaller_at_gamma_1000(linear):
    gamma, dt, n = 1000.0, 1e-4, 30_000
    state = solvers.stationary_states(linear, gamma=gamma, cells=4000, stability=False)[0]
    kappa = gamma * (G @ state.m)
    lam = ALPHA + kappa
    errors = {}
    for scheme in ("em", "ou"):
        net = simulate_network(linear, gamma=gamma, n=n, t_final=0.05, dt=dt, seed=5,
                               scheme=scheme, initial=state, save_at=np.linspace(0.01, 0.05, 81),
                               fast=False)
        errors[scheme] = net.var.mean(axis=0) / (SIGMA**2 / 2 / lam) - 1
    predicted_em = lam * dt / (2 - lam * dt)
    np.testing.assert_allclose(errors["em"], predicted_em, rtol=0.1)  # ≈ +8%
    assert np.all(np.abs(errors["em"]) >= 10 * np.abs(errors["ou"]))
    assert np.all(np.abs(errors["ou"]) < 4e-3)  # 4 standard errors: statistics only, since
    predicted, exact = scheme_stationary_variance("ou", gamma, dt)
    assert np.all(np.abs(predicted / exact - 1) < 1e-5)  # the splitting's own bias is ≈ 5e-6


@pytest.mark.parametrize(("scheme", "dts"), [("em", [0.02, 0.01, 0.005]),
                                              ("ou", [0.05, 0.025, 0.0125])])
def test_weak_order_one_of_both_schemes(linear, scheme, dts):
    # "ou" is more accurate at a given Δt (its output is read θ ≈ 1/2 into the drift): larger
    # steps keep its O(Δt) error (from the frozen moments) above the sampling noise (≈ 6e-4)
    gamma, horizon = 5.0, 0.2
    errors = []
    for dt in dts:
        net = simulate_network(linear, gamma=gamma, n=200_000, t_final=horizon, dt=dt, seed=3,
                               scheme=scheme, save_at=[0.0, 0.1, 0.2], fast=False)
        y0 = np.concatenate([net.mean[0], net.var[0]])  # the sampled initial moments
        exact = solve_ivp(moment_rhs(gamma), (0, horizon), y0, t_eval=[0.1, 0.2], rtol=1e-11,
                          atol=1e-13).y.T
        errors.append(np.max(np.abs(np.concatenate([net.mean[1:], net.var[1:]], 1) - exact)))
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 0.8 < slope < 1.2
    assert errors[-1] < (0.012 if scheme == "em" else 0.004)


def test_exact_coupling_moments_and_outputs(linear, tmp_path):
    net = simulate_network(linear, gamma=3.0, n=[500, 700], t_final=0.05, dt=0.01, seed=1,
                           bins=40, fast=False)
    assert net.n == (500, 700)
    assert [s.size for s in net.states] == [500, 700]
    assert net.steps == 5
    assert net.dt == pytest.approx(0.01)
    np.testing.assert_allclose(net.t, np.arange(6) * 0.01)
    # Ψ affine: m_q = 1 + k mean_q exactly for the empirical law
    np.testing.assert_allclose(net.m, 1 + 0.1 * net.mean, rtol=1e-12)
    np.testing.assert_allclose(net.rho @ np.diff(net.edges), 1.0, rtol=1e-12)
    np.testing.assert_allclose(net.mean[-1], [s.mean() for s in net.states], rtol=1e-12)
    np.testing.assert_allclose(net.var[-1], [s.var() for s in net.states], rtol=1e-10)
    # ∫|h_p| dμ_n by hand at the final time
    mj = net.m[-1]
    h0 = np.abs(G[0, 0] * mj[0] * (net.states[0] - E[0]) + G[0, 1] * mj[1] * (net.states[0] - E[1]))
    assert net.balance_residual[-1, 0] == pytest.approx(h0.mean(), rel=1e-12)
    ds = net.to_xarray()
    assert ds["mean"].shape == (6, 2)
    assert ds["rho"].shape == (6, 2, 40)
    assert ds.attrs["model"] == linear.to_json()
    assert int(np.isnan(ds["final_states"].values).sum()) == 200
    ds.to_netcdf(tmp_path / "network.nc")


def test_reflection_is_the_zero_flux_boundary():
    # constant outward drift: the zero-flux stationary law is ∝ exp(x/D) on [-1, 1]
    model = mf.Model([mf.Population("A", 1, 0.5)], [[0.0]], [[1]], [0.0], (-1, 1))
    state = solvers.stationary_states(model, gamma=0.0, cells=2000, stability=False)[0]
    n = 20_000
    net = simulate_network(model, gamma=0.0, n=n, t_final=0.5, dt=1e-3, seed=1, initial=state,
                           save_at=np.linspace(0.1, 0.5, 21), fast=False)
    assert -1 <= net.states[0].min()
    assert net.states[0].max() <= 1
    assert abs(net.mean.mean() - state.mean[0]) < 4 * np.sqrt(state.var[0] / n)
    assert abs(net.var.mean() - state.var[0]) < 4 * state.var[0] * np.sqrt(2 / n)
    free = simulate_network(model, gamma=0.0, n=n, t_final=0.5, dt=1e-3, seed=1, initial=state,
                            boundary="none", fast=False)
    assert free.mean[-1, 0] == pytest.approx(state.mean[0] + 0.5, abs=0.01)


@pytest.mark.parametrize("fast", [False, True])
def test_same_seed_identical_different_seed_different(linear, fast):
    options = dict(gamma=4.0, n=300, t_final=0.05, dt=0.01, fast=fast)
    one = simulate_network(linear, seed=7, **options)
    two = simulate_network(linear, seed=7, **options)
    other = simulate_network(linear, seed=8, **options)
    for p in range(2):
        np.testing.assert_array_equal(one.states[p], two.states[p])
        assert not np.array_equal(one.states[p], other.states[p])
    np.testing.assert_array_equal(one.mean, two.mean)
    assert np.max(np.abs(one.mean[-1] - other.mean[-1])) > 0


def test_continue_from_a_result_and_external_time_dependent_drive():
    model = mf.models.current_balanced(m_drive=0.4 + 0.1 * mf.t)
    first = simulate_network(model, gamma=2.0, n=400, t_final=0.1, dt=0.01, seed=1, fast=False)
    second = simulate_network(model, gamma=2.0, n=400, t_final=0.1, dt=0.01, seed=2,
                              initial=first, fast=False)
    np.testing.assert_allclose(second.mean[0], first.mean[-1], rtol=1e-12)
    assert np.all(np.isfinite(second.balance_residual))


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"n": 0}, ValueError, "n=0"),
    ({"n": [10]}, ValueError, "n=.*one per population"),
    ({"n": 2.5}, TypeError, "n has type float"),
    ({"dt": 0.0}, ValueError, "dt=0.0"),
    ({"dt": -1e-3}, ValueError, "dt=-0.001"),
    ({"dt": 0.5}, ValueError, "dt=0.5.*t_final"),
    ({"dt": float("nan")}, ValueError, "dt=nan.*finite"),
    ({"t_final": float("inf")}, ValueError, "t_final=inf.*finite"),
    ({"gamma": -1.0}, ValueError, "gamma=-1.0"),
    ({"gamma": float("nan")}, ValueError, "gamma=nan"),
    ({"seed": -3}, ValueError, "seed=-3"),
    ({"seed": "a"}, TypeError, "seed has type str"),
    ({"scheme": "rk4"}, ValueError, "scheme='rk4'"),
    ({"boundary": "wrap"}, ValueError, "boundary='wrap'"),
    ({"save_at": [0.0, 2.0]}, ValueError, "save_at=.*t_final"),
    ({"bins": [1.0, 0.0]}, ValueError, "bins="),
    ({"initial": [np.zeros(10)]}, ValueError, "initial=.*2 arrays"),
    ({"initial": [np.zeros(10), np.zeros(9)]}, ValueError, "initial=.*n\\[1\\]=10"),
    ({"initial": [np.zeros(10), np.full(10, np.nan)]}, ValueError, "initial=.*finite"),
    ({"fast": "yes"}, TypeError, "fast has type str"),
    ({"threads": 0}, ValueError, "threads=0"),
])
def test_bad_inputs_rejected_with_named_messages(linear, kwargs, exc, match):
    options = dict(gamma=1.0, n=10, t_final=0.1, dt=0.01, seed=0, fast=False)
    options.update(kwargs)
    with pytest.raises(exc, match=match):
        simulate_network(linear, **options)


def test_bad_model_and_divergence_reported():
    with pytest.raises(TypeError, match="model has type str"):
        simulate_network("model", gamma=1.0, n=10, t_final=1.0, dt=0.1, seed=0)
    cubic = mf.Model([mf.Population("A", -mf.x**5, 1.0)], [[0.0]], [[1]], [0.0], (-10, 10))
    with pytest.raises(ValueError, match=r"dt=0\.5.*diverged"):
        simulate_network(cubic, gamma=0.0, n=50, t_final=20.0, dt=0.5, seed=0,
                         initial=[np.full(50, 9.0)], boundary="none", fast=False)


def single_ou(sigma=0.4):
    """dX = [−X/2 − γ (X − 1)] dt + σ dW (Ψ = 1): coupling rate κ = γ, law N(γ/(γ+½), σ²/(2γ+1))."""
    x = mf.x
    return mf.Model([mf.Population("A", -x / 2, sigma)], [[1.0]], [[x - 1]], [1.0], (-3, 3))


def test_euler_maruyama_beyond_its_stability_bound_is_refused():
    # γ = 1e3, Δt = 2e-3: κΔt = 2, EM diverges (the walls kept it finite: mean 0.01, var 1.9)
    model = single_ou()
    options = dict(gamma=1e3, n=2000, t_final=0.1, dt=2e-3, seed=1, fast=False)
    with pytest.raises(ValueError, match=r"dt=0.002.*dt <= 0.001 = 1/kappa.*kappa\*dt = 2\b.*"
                                         r"largest stable dt 0.002.*scheme='ou'"):
        simulate_network(model, scheme="em", **options)
    # the suggested scheme at the same step: the exact law N(0.9995, 1.6e-4) (4 standard errors)
    net = simulate_network(model, scheme="ou", save_at=np.linspace(0.05, 0.1, 11), **options)
    mean, var = 1e3 / 1000.5, 0.16 / 2001.0
    assert abs(net.mean.mean() - mean) < 4 * np.sqrt(var / 2000)
    assert abs(net.var.mean() / var - 1) < 4 * np.sqrt(2 / 2000)


def test_euler_maruyama_refused_when_its_rate_rises_past_the_bound_between_saved_times():
    # an input of weight 1 + 1600 t(0.1 − t): κ = γ m(t) is 250 at the saved times 0 and 0.1
    # (κΔt = 0.25: a warning) but 1250 at t = 0.05 (κΔt = 1.25: overshooting, the walls
    # keeping the agents finite). Checked only at saved times, that passed with the warning
    x = mf.x
    drive = mf.ExternalInput("drive", m="1 + 1600*t*(0.1 - t)", g=[1.0], phi=["x - 1"])
    model = mf.Model([mf.Population("A", -x / 2, 0.4)], [[0.0]], [[x - 1]], [1.0], (-3, 3),
                     inputs=[drive])
    with pytest.warns(mf.ResolutionWarning, match=r"at t=0 "), \
            pytest.raises(ValueError, match=r"1/kappa for scheme='em' at t=0\.02[5-9]"):
        simulate_network(model, gamma=250.0, n=200, t_final=0.1, dt=1e-3, seed=1, fast=False,
                         scheme="em", save_at=[0.0, 0.1])


def test_euler_maruyama_warns_between_soft_and_hard_bound():
    model = single_ou()
    options = dict(gamma=1e3, n=200, t_final=0.01, seed=1, fast=False, scheme="em")
    with pytest.warns(mf.ResolutionWarning, match=r"kappa\*dt = 0.5\b.*33.3%.*dt <= 2e-05"):
        simulate_network(model, dt=5e-4, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate_network(model, dt=1e-4, **options)  # κΔt = 0.1: variance bias 5 %, no warning
