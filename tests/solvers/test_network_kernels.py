"""The numba fast path against its numpy twin: same statistics; its generator; its threads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import meanfield as mf
import solvers
from solvers.network import _histogram, simulate_network
from solvers.network_kernels import numba_math, numba_normals, step_coefficients, ziggurat_tables


def test_ziggurat_tables_cover_the_normal_law():
    X, ratio = ziggurat_tables()
    assert X[1] == pytest.approx(3.442619855899) and X[-1] == 0.0
    assert np.all(np.diff(X[1:]) < 0) and np.all((ratio[:-1] > 0) & (ratio[:-1] < 1))
    assert ratio[-1] == 0.0  # the cap layer is always sampled by rejection
    # every layer has the same area V = X_i (f(X_{i+1}) − f(X_i)) (Marsaglia–Tsang)
    f = np.exp(-0.5 * X**2)
    areas = X[1:-1] * (f[2:] - f[1:-1])
    np.testing.assert_allclose(areas, 9.91256303526217e-3, rtol=1e-8)


def test_counter_based_normals_have_the_normal_law():
    z = numba_normals(20261126, 1_000_000)
    assert abs(z.mean()) < 4e-3 and abs(z.var() - 1) < 6e-3
    assert abs(stats.skew(z)) < 0.01 and abs(stats.kurtosis(z)) < 0.02
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert np.mean(np.abs(z) > 3.442619855899) == pytest.approx(2 * stats.norm.sf(3.4426), rel=0.1)
    np.testing.assert_array_equal(z[:1000], numba_normals(20261126, 1000))
    assert not np.array_equal(z[:1000], numba_normals(20261127, 1000))


def test_exponential_step_coefficients_limits():
    phi1, s = step_coefficients(np.array([0.0, 1e-20, 50.0, -3.0]), 0.01)
    np.testing.assert_allclose(phi1[:2], 0.01)
    np.testing.assert_allclose(s[:2] ** 2, 0.01)
    assert phi1[2] == pytest.approx(-np.expm1(-0.5) / 50)
    assert s[2] ** 2 == pytest.approx(-np.expm1(-1.0) / 100)
    assert phi1[3] == pytest.approx(0.01)  # negative stiffness clipped: plain Euler


@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_numba_and_numpy_paths_give_the_same_statistics(scheme):
    model = mf.models.linear_ou()
    state = solvers.stationary_states(model, gamma=20.0, cells=2000, stability=False)[0]
    n = 20_000
    runs = [simulate_network(model, gamma=20.0, n=n, t_final=0.4, dt=1e-3, seed=9,
                             initial=state, scheme=scheme, save_at=np.linspace(0.1, 0.4, 31),
                             fast=fast) for fast in (False, True)]
    assert [r.info["fast"] for r in runs] == [False, True]
    se_mean, se_var = np.sqrt(state.var / n), state.var * np.sqrt(2 / n)
    means = [r.mean.mean(0) for r in runs]
    variances = [r.var.mean(0) for r in runs]
    assert np.all(np.abs(means[0] - means[1]) < 4 * np.sqrt(2) * se_mean)
    assert np.all(np.abs(variances[0] - variances[1]) < 4 * np.sqrt(2) * se_var)
    for p in range(2):
        assert stats.ks_2samp(runs[0].states[p], runs[1].states[p]).pvalue > 1e-3


def test_per_agent_stiffness_path_agrees_with_numpy_and_pde():
    # Φ not affine: the exponential step evaluates κ(x) = γ g m Φ'(x) agent by agent
    x = mf.x
    model = mf.Model([mf.Population("A", -x, 0.5)], [[1.0]],
                     [[(x - 1) + (x - 1) ** 3 / 5]], [mf.sigmoid(x, 0, 2)], (-3, 4))
    gamma, n = 30.0, 20_000
    state = solvers.stationary_states(model, gamma=gamma, cells=2000, stability=False)[-1]
    se_mean, se_var = np.sqrt(state.var / n), state.var * np.sqrt(2 / n)
    for fast in (False, True):
        net = simulate_network(model, gamma=gamma, n=n, t_final=0.3, dt=1e-3, seed=4,
                               initial=state, scheme="ou", save_at=np.linspace(0.1, 0.3, 21),
                               fast=fast)
        assert abs(net.mean.mean() - state.mean[0]) < 4 * se_mean[0]
        assert abs(net.var.mean() - state.var[0]) < 4 * se_var[0] + 0.02 * state.var[0]


@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_threaded_kernel_matches_serial_kernel(scheme):
    # the counter-based generator does not depend on the thread count; sums differ by round-off
    import numba

    model = mf.models.chemical_single()
    options = dict(gamma=5.0, n=200_000, t_final=0.02, dt=0.01, seed=3, fast=True, scheme=scheme)
    serial = simulate_network(model, threads=1, **options)
    threaded = simulate_network(model, threads=2, **options)
    assert serial.info["threads"] == 1
    assert threaded.info["threads"] == min(2, numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_allclose(threaded.states[0], serial.states[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(threaded.m, serial.m, rtol=1e-12)


def test_compiled_tanh_replacement_is_accurate():
    from numba import njit

    tanh = numba_math()["tanh"]

    @njit
    def evaluate(values):
        out = np.empty_like(values)
        for i in range(values.size):
            out[i] = tanh(values[i])
        return out

    v = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-300, 1, 200),
                        -np.geomspace(1e-300, 1, 200), [0.0, 800.0, -800.0]])
    assert np.max(np.abs(evaluate(v) - np.tanh(v))) < 4e-16


def test_uniform_histogram_matches_numpy():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 2, 10_000), [-5.0, 5.0, 7.0, -7.0]])
    edges = np.linspace(-5, 5, 41)
    np.testing.assert_array_equal(_histogram(values, edges, True), np.histogram(values, edges)[0])
