"""The numba fast path against its numpy twin: same statistics; its noise streams; its threads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import meanfield as mf
import solvers
from solvers.network import simulate_network
from solvers.network_kernels import (
    CHUNK,
    noise_streams,
    numba_math,
    population_expressions,
    step_coefficients,
)
from solvers.network_statistics import histogram


def noise_model(sigma=0.7):
    """No drift, no coupling: one step moves every agent by ``σ√Δt ξ``, exactly."""
    return mf.Model([mf.Population("A", 0, sigma)], [[0.0]], [[1]], [1.0], (-50, 50))


def test_noise_streams_are_numpys_generators_per_chunk_bit_for_bit_in_both_paths():
    # the increments of chunk k are the normals of PCG64DXSM stream k spawned from the seed: one
    # step from x = 0 without drift or coupling gives x = sd·ξ exactly (sd = σ√Δt), in the numpy
    # path and in the numba kernel (which draws through numba's np.random.Generator support)
    sigma, dt, n, seed = 0.7, 0.01, 2 * CHUNK + 1000, 12
    model = noise_model(sigma)
    runs = [simulate_network(model, gamma=0.0, n=n, t_final=dt, dt=dt, seed=seed,
                             initial=[np.zeros(n)], boundary="none", fast=fast, save_at=[dt])
            for fast in (False, True)]
    assert [r.info["fast"] for r in runs] == [False, True]
    population_seed = np.random.SeedSequence(seed).spawn(2)[1]
    expected = np.concatenate([np.random.Generator(np.random.PCG64DXSM(child)).standard_normal(
        min(CHUNK, n - k * CHUNK)) for k, child in enumerate(population_seed.spawn(3))])
    sd = float(population_expressions(model)[0].sigma * np.sqrt(dt))
    assert sd == pytest.approx(sigma * np.sqrt(dt), rel=1e-15)
    for run in runs:
        assert np.array_equal(run.states[0], sd * expected)
    assert [len(s) for s in [noise_streams(np.random.SeedSequence(1), m)
                             for m in (1, CHUNK, CHUNK + 1)]] == [1, 1, 2]


@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_seeded_runs_reproduce_bit_for_bit_across_paths_of_the_same_kind(scheme):
    # same seed → identical arrays (each path, repeated); the chunk streams restart from the seed
    model = mf.models.linear_ou()
    options = dict(gamma=3.0, n=[CHUNK + 50, 40], t_final=0.03, dt=0.01, seed=31, scheme=scheme)
    for fast in (False, True):
        one, two = (simulate_network(model, fast=fast, **options) for _ in range(2))
        for p in range(2):
            assert np.array_equal(one.states[p], two.states[p])
        assert np.array_equal(one.m, two.m)
        assert np.array_equal(one.rho, two.rho)


def test_noise_increments_have_the_normal_law_and_independent_chunks():
    # two steps of pure noise: per-step increments, chunks against chunks, steps against steps
    sigma, dt, n = 0.7, 0.01, 3 * CHUNK  # below PARALLEL_MIN: the serial kernel of the test above
    model = noise_model(sigma)
    first = simulate_network(model, gamma=0.0, n=n, t_final=dt, dt=dt, seed=5,
                             initial=[np.zeros(n)], boundary="none", fast=True, save_at=[dt])
    both = simulate_network(model, gamma=0.0, n=n, t_final=2 * dt, dt=dt, seed=5,
                            initial=[np.zeros(n)], boundary="none", fast=True, save_at=[2 * dt])
    z1 = first.states[0] / (sigma * np.sqrt(dt))
    z2 = (both.states[0] - first.states[0]) / (sigma * np.sqrt(dt))
    for z in (z1, z2):
        assert abs(z.mean()) < 4 / np.sqrt(n)
        assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
        assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
        assert abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)
        assert stats.kstest(z, "norm").pvalue > 1e-3
    # independence: correlations of chunk pairs and of the two steps within 4 standard errors
    corr = np.corrcoef(np.vstack([z1.reshape(3, CHUNK), z2.reshape(3, CHUNK)]))
    off = corr[~np.eye(6, dtype=bool)]
    assert np.max(np.abs(off)) < 4 / np.sqrt(CHUNK)
    # the tail beyond 3.44 (where a ziggurat switches to its tail sampler) has the normal mass
    tail = np.mean(np.abs(np.concatenate([z1, z2])) > 3.442619855899)
    assert tail == pytest.approx(2 * stats.norm.sf(3.442619855899), rel=0.15)


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
def test_results_are_bit_identical_for_any_thread_count(scheme):
    # fixed chunks, one stream per chunk, chunk sums added in chunk order: 1 and 2 threads agree
    # (n = 2e5 ≥ PARALLEL_MIN: the threaded kernel; 4 chunks), set globally or by threads=
    import numba

    model = mf.models.chemical_single()
    options = dict(gamma=5.0, n=200_000, t_final=0.02, dt=0.01, seed=3, fast=True, scheme=scheme)
    two = min(2, numba.config.NUMBA_NUM_THREADS)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = simulate_network(model, **options)
        numba.set_num_threads(two)
        threaded = simulate_network(model, **options)
    finally:
        numba.set_num_threads(previous)
    by_option = [simulate_network(model, threads=k, **options) for k in (1, 2)]
    assert numba.get_num_threads() == previous  # threads= restores numba's setting
    assert [r.info["threads"] for r in (serial, threaded, *by_option)] == [1, two, 1, two]
    for run in (threaded, *by_option):
        assert np.array_equal(run.states[0], serial.states[0])
        for name in ("m", "mean", "var", "balance_residual", "rho"):
            assert np.array_equal(getattr(run, name), getattr(serial, name)), name


@pytest.mark.parametrize("scheme", ["em", "ou"])
def test_numba_kernel_matches_numpy_twin_agent_by_agent(scheme):
    # both paths draw the same normals (chunk streams, here across a chunk boundary): the states
    # agree to the round-off of the compiled functions
    model = mf.models.linear_ou()
    options = dict(gamma=20.0, n=[CHUNK + 300, 700], t_final=0.01, dt=1e-3, seed=6,
                   scheme=scheme, save_at=[0.0, 0.005, 0.01])
    fast = simulate_network(model, fast=True, **options)
    slow = simulate_network(model, fast=False, **options)
    for p in range(2):
        np.testing.assert_allclose(fast.states[p], slow.states[p], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.m, slow.m, rtol=1e-13)


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
    np.testing.assert_array_equal(histogram(values, edges, True), np.histogram(values, edges)[0])
