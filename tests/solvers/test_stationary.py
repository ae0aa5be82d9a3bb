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
    assert states[0].eigenvalues.real.max() < 0
    assert states[2].eigenvalues.real.max() < 0
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
    assert low.gammas[0] == 1.0
    assert 2.9 < low.gammas[-1] < 3.3
    assert middle.gammas[0] > 1.5
    assert middle.gammas[-1] < 3.3
    assert high.gammas[-1] == pytest.approx(4.4)
    assert low.stable.all()
    assert high.stable.all()
    assert not middle.stable.any()
    for branch in branches:
        assert all(s.residual <= 1e-12 for s in branch.states)
        assert np.all(np.diff(branch.gammas) > 0)
    # every state found by the global search at a continuation point lies on a branch
    for gamma in (2.0, 2.6, 3.0):
        for state in solvers.stationary_states(model, gamma=gamma, cells=300, stability=False):
            on_branch = [b.m[list(b.gammas).index(gamma)] for b in branches if gamma in b.gammas]
            assert min(abs(state.m[0] - m[0]) for m in on_branch) < 1e-10


def balance_voltages(model: mf.Model) -> np.ndarray:
    """v* = Σ g E S(v*) / Σ g S(v*) for the default chemical model (docs/mathematics.md §4)."""
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
        assert len(states) == 1
        assert states[0].stable
        assert states[0].residual <= 1e-12 * max(1.0, gamma / 1e4)
        errors.append(np.max(np.abs(states[0].m - balanced)))
    slope = np.polyfit(np.log(gammas), np.log(errors), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)


# ----------------------------------------------------------------------------- diagnostics (#13)
def _records(fn):
    import warnings

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = fn()
    return out, [r for r in record if issubclass(r.category, mf.ResolutionWarning)]


def test_unresolved_states_carry_one_warning_and_auto_cells_gets_the_right_variance():
    model = mf.models.chemical_single()
    states, record = _records(lambda: solvers.stationary_states(model, gamma=1e6, cells=200))
    assert len(record) == 1
    assert "does not resolve the concentration width" in str(record[0].message)
    assert "cells=" in str(record[0].message)
    assert not states[-1].resolution.ok
    assert states[-1].resolution.cells_needed > 10_000
    assert states[-1].to_xarray().attrs["resolved"] == "False"
    # cells="auto" resolves it: the state is the exact Gaussian N(2γm/(1+γm), D/(1+γm))
    auto, record = _records(lambda: solvers.stationary_states(model, gamma=1e6, cells="auto",
                                                              stability=False))
    assert not record
    assert len(auto) == 1
    assert auto[0].resolution.ok
    state = auto[0]
    rate = 1 + 1e6 * state.m[0]
    assert state.grid.cells > 1000
    # within the tolerance (default 1e-2; the aliasing of about 0.7 nodes per width gives ~1e-3)
    # and within its own Richardson estimate
    assert state.var[0] == pytest.approx(0.125 / rate, rel=1e-2)
    assert abs(state.var[0] - 0.125 / rate) <= state.error_var[0]
    mean_error = abs(state.mean[0] - 2 * (rate - 1) / rate)
    assert mean_error <= state.error_mean[0]
    assert mean_error <= 1e-2 * np.sqrt(state.var[0])


@pytest.mark.parametrize("kwargs", [
    {"model": {"sigma": 1e-6}, "gamma": 10.0, "cells": 200},  # 7 spurious states
    {"model": {"domain": (-1e6, 1e6)}, "gamma": 1.0, "cells": 1000},  # mean 1000, not 1.82
])
def test_grids_far_too_coarse_for_the_states_are_warned_about(kwargs):
    model = mf.models.chemical_single(**kwargs.pop("model"))
    states, record = _records(lambda: solvers.stationary_states(model, stability=False, **kwargs))
    assert len(record) == 1
    assert "cells=" in str(record[0].message)
    assert all(not s.resolution.ok for s in states if s.var[0] < 1e-6)


def test_continuation_warns_once_and_flags_unresolved_states():
    model = mf.models.chemical_single()
    branches, record = _records(lambda: solvers.continuation(model, [10.0, 1e5, 1e6], cells=200,
                                                             stability=False))
    assert len(record) == 1
    flags = np.concatenate([b.resolved for b in branches])
    assert flags.any()
    assert not flags.all()
    assert not branches[-1].resolution.ok


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"time": float("nan")}, ValueError, r"time=nan.*finite"),
    ({"stability": "no"}, TypeError, r"stability has type str"),
    ({"stability": 1}, TypeError, r"stability has type int"),
    ({"starts": True}, ValueError, r"starts=True"),
    ({"tolerance": 0.0}, ValueError, r"tolerance=0.0"),
    ({"cells": "fine"}, ValueError, r"cells='fine'"),
])
def test_nan_and_non_boolean_options_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        solvers.stationary_states(mf.models.chemical_single(), gamma=1.0, **kwargs)


def _pitchfork_model():
    """U = x²/2 − γ m x, Ψ = tanh: odd in m, a pitchfork where γ Cov(tanh x, x)/D = 1."""
    import sympy as sp

    x = mf.x
    return mf.Model([mf.Population("E", -x, 0.5)], [[1.0]], [[-1]], [sp.tanh(x)], (-4, 4))


@pytest.mark.parametrize("eps", [1e-8, 1e-6, 1e-3])
def test_all_three_states_are_found_next_to_a_pitchfork(eps):
    model = _pitchfork_model()
    gmap = GibbsMap(mf.numeric(model), solvers.Grid.uniform(-4, 4, 400), 1.0)
    critical = 1 / gmap.jacobian(np.array([0.0]))[0, 0]  # the pitchfork of this grid
    below = solvers.stationary_states(model, gamma=critical * (1 - eps), cells=400,
                                      stability=False)
    assert len(below) == 1
    assert abs(below[0].m[0]) < 1e-6
    above = solvers.stationary_states(model, gamma=critical * (1 + eps), cells=400,
                                      stability=False)
    assert len(above) == 3
    m = [s.m[0] for s in above]
    assert abs(m[1]) < 1e-3 * abs(m[2])
    assert m[0] == pytest.approx(-m[2], rel=1e-3)
    # normal form: m*² ∝ ε, so m*/√ε is the same at every distance
    assert m[2] / np.sqrt(eps) == pytest.approx(1.8042, rel=2e-2)
    for s in above:
        assert s.residual <= 1e-12


def test_numba_and_numpy_gibbs_kernels_agree():
    from solvers.stationary_kernels import gibbs_kernel, gibbs_moments_numpy

    compiled = gibbs_kernel("numba")
    rng = np.random.default_rng(11)
    for concentration in (1.0, 1e4):
        M, J = 500, 3
        x = np.linspace(-2, 2, M)
        F = -concentration * (x - 0.3) ** 2 + rng.normal(0, 0.1, M)
        G = np.stack([x, x**2, np.sin(x)]) + rng.normal(0, 0.01, (J, M))
        c, psi, h = rng.normal(0, 1, J), np.tanh(x), np.full(M, 4 / M)
        args = (F, G, np.diff(F), np.diff(G, axis=1), c, 0.3, psi, h)
        T1, C1 = compiled(*args)
        T2, C2 = gibbs_moments_numpy(*args)
        assert T1 == pytest.approx(T2, rel=1e-12, abs=1e-14)
        assert np.allclose(C1, C2, rtol=1e-9, atol=1e-14 * np.abs(C2).max())


def test_gibbs_moments_keep_their_digits_far_from_the_origin_of_the_potentials():
    """Potentials ~1e12 at the nodes, a state of width 2e-8: the node values only locate the mode
    (here wrongly: their noise is ~1e6 D, so nodes ~1000 D below it are met on the way, which
    must rescale the sums rather than overflow); summed outwards over the edges, the moments of
    the discrete Gaussian are exact to round-off of the width, not of |U|."""
    from solvers.stationary_kernels import gibbs_kernel, gibbs_moments_numpy

    x = np.linspace(0.5, 0.5 + 2e-6, 20_001)  # ±14 standard deviations around the centre
    D, center = 5e-16, 0.5 + 1e-6
    dF = -(x[1:] - x[:-1]) * ((x[1:] + x[:-1]) / 2 - center)  # F = −(x − centre)²/2
    F = np.concatenate([[1e12], 1e12 + np.cumsum(dF)])  # node values with |F| ~ 1e12: noise
    G = np.zeros((1, x.size))
    psi, h = x - center, np.full(x.size, x[1] - x[0])
    e = (x - center) ** 2 / (2 * D)
    var = np.exp(-e) @ (x - center) ** 2 / np.exp(-e).sum()
    for kernel in (gibbs_kernel("numba"), gibbs_moments_numpy):
        T, C = kernel(F, G, dF, np.zeros((1, x.size - 1)), np.zeros(1), D, psi, h)
        assert abs(T) <= 1e-3 * np.sqrt(D)  # the mean of the symmetric Gaussian, not noise
        # Cov(Ψ, G) with G = Ψ: the variance of the discrete Gaussian
        _, C = kernel(F, psi[None], dF, np.diff(psi)[None], np.zeros(1), D, psi, h)
        assert C[0] == pytest.approx(var, rel=1e-9, abs=0)


def test_coarse_search_then_polish_finds_the_fine_grid_roots():
    from solvers.stationary_search import find_roots

    model = mf.models.chemical_single()
    states = solvers.stationary_states(model, gamma=2.5, cells=12_000, stability=False)
    fine = GibbsMap(mf.numeric(model), solvers.Grid.uniform(-3, 5, 12_000), 2.5)
    direct = sorted(float(r[0]) for r in find_roots(fine))
    assert len(states) == 3
    assert np.allclose([s.m[0] for s in states], direct, rtol=0, atol=1e-11)


def test_stationary_results_match_the_exact_gaussians_to_their_error_or_warn():
    """γ ∈ [1, 1e8] on one fixed grid: right to the Richardson estimate, or a ResolutionWarning."""
    model = mf.models.linear_ou()
    warned = []
    for gamma in np.logspace(0, 8, 8):
        states, record = _records(lambda g=gamma: solvers.stationary_states(
            model, gamma=g, cells=400, stability=False))
        if record:
            warned.append(gamma)
            continue
        mean, var = exact_linear_ou(model, gamma)
        state = states[0]
        # up to the estimate plus the tolerance of the fixed point itself (1e-12)
        assert np.all(np.abs(state.mean - mean) <= state.error_mean + 1e-12)
        assert np.all(np.abs(state.var - var) <= state.error_var + 1e-11 * var)
    assert 0 < len(warned) < 8  # both branches of the assertion are exercised


def test_the_command_line_stationary_task_carries_the_warning():
    from meanfield.studies.tasks import run_task

    (ds, record) = _records(lambda: run_task({"name": "chemical_single"},
                                             {"method": "stationary", "gamma": 1e6, "cells": 200,
                                              "stability": False}))
    assert len(record) == 1
    assert "cells=" in str(record[0].message)
    assert ds["var"].values.max() > 100 * 0.125 / 1e6  # the wrong answer the warning is about
