"""The FitzHugh–Nagumo network simulator (solvers.fhn.network): 1/γ variance, the ODE limit, schemes."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from meanfield.fhn import GaussianStart, fhn_chemical, fhn_electrical
from solvers import simulate_fhn_network


def _mean_variance(model, gamma, initial, seed=3):
    run = simulate_fhn_network(model, gamma=gamma, n=2000, t_final=2.0, dt=0.01, seed=seed,
                               initial=initial, save_at=np.linspace(0.5, 2.0, 16))
    return run.var_v.mean(axis=0), run


def test_electrical_variance_decreases_like_one_over_gamma():
    model = fhn_electrical(regime="excitable", sigma=0.3)
    v_rest, w_rest = model.populations[0].rest_state()
    start = GaussianStart(v=v_rest, w=w_rest, v_std=0.0, w_std=0.0)
    gammas = np.array([10.0, 30.0, 100.0, 300.0, 1000.0])
    var = np.array([_mean_variance(model, g, start)[0][0] for g in gammas])
    slope = np.polyfit(np.log(gammas), np.log(var), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.2)
    # leading order: var ≈ D/(γ Σ_q g_pq) (Ornstein–Uhlenbeck around the synchronous state)
    assert gammas[-1] * var[-1] / model.populations[0].diffusion == pytest.approx(1.0, abs=0.05)


def test_chemical_variance_decreases_like_one_over_gamma_and_mean_reaches_balance():
    model = fhn_chemical()
    v_star, A = model.balance_voltages(), model.balance_slopes()
    start = GaussianStart(v=list(v_star), w=-0.6, v_std=0.0, w_std=0.0)
    gammas = np.array([30.0, 100.0, 300.0, 1000.0])
    results = [_mean_variance(model, g, start) for g in gammas]
    var = np.array([r[0] for r in results])
    D = model.param("sigma") ** 2 / 2
    for p in range(model.P):
        slope = np.polyfit(np.log(gammas), np.log(var[:, p]), 1)[0]
        assert slope == pytest.approx(-1.0, abs=0.2)
    assert np.allclose(gammas[-1] * A * var[-1] / D, 1.0, atol=0.05)
    last = results[-1][1]
    assert np.allclose(last.mean_v[-1], v_star, atol=5e-3)
    assert np.all(last.balance_residual[-1] < 0.05)


def test_electrical_mean_follows_fitzhugh_nagumo_ode_through_a_spike():
    model = fhn_electrical(regime="excitable", sigma=0.5)
    pop = model.populations[0]
    t_final = 15.0
    ode = solve_ivp(pop.ode(), (0.0, t_final), [0.0, -0.6], dense_output=True,
                    rtol=1e-10, atol=1e-12)
    peak = ode.sol(np.linspace(0, t_final, 301))[0]
    assert peak.max() > 1.5
    assert peak.min() < -1.5
    start = GaussianStart(v=0.0, w=-0.6, v_std=0.0, w_std=0.0)
    gammas = np.array([1.0, 2.0, 4.0, 8.0])
    errors = []
    for gamma in gammas:
        run = simulate_fhn_network(model, gamma=gamma, n=4000, t_final=t_final, dt=0.01, seed=1,
                                   initial=start)
        exact = ode.sol(run.t)
        errors.append(np.sqrt(np.mean((run.mean_v[:, 0] - exact[0]) ** 2
                                      + (run.mean_w[:, 0] - exact[1]) ** 2)))
    errors = np.array(errors)
    assert np.all(np.diff(errors) < 0), errors
    slope = np.polyfit(np.log(gammas), np.log(errors), 1)[0]
    assert slope < -0.8, (slope, errors)
    assert errors[-1] < 0.03  # floor: σ/√n fluctuations of the mean and the O(Δt) Euler drift


def test_exponential_scheme_matches_euler_at_small_step_and_survives_stiffness():
    model = fhn_chemical()
    start = GaussianStart(v=-1.0, w=-0.5, v_std=0.3, w_std=0.1)
    kwargs = dict(gamma=20.0, n=2000, t_final=1.0, seed=5, initial=start, save_at=[1.0])
    fine_exp = simulate_fhn_network(model, dt=1e-3, scheme="exponential", **kwargs)
    fine_eul = simulate_fhn_network(model, dt=1e-3, scheme="euler", **kwargs)
    assert np.allclose(fine_exp.mean_v, fine_eul.mean_v, atol=0.01)
    assert np.allclose(fine_exp.var_v, fine_eul.var_v, rtol=0.1)
    # γ K Δt ≈ 200 · 0.4 · 0.1 = 8 > 2: Euler–Maruyama blows up, the exponential scheme does not
    stiff = dict(kwargs, gamma=200.0)
    stiff_fine = simulate_fhn_network(model, dt=1e-3, scheme="exponential", **stiff)
    coarse_exp = simulate_fhn_network(model, dt=0.1, scheme="exponential", **stiff)
    with np.errstate(all="ignore"):
        coarse_eul = simulate_fhn_network(model, dt=0.1, scheme="euler", **stiff)
    assert coarse_exp.info["finite"]
    assert np.allclose(coarse_exp.mean_v, stiff_fine.mean_v, atol=0.05)
    assert np.allclose(coarse_exp.var_v, stiff_fine.var_v, rtol=0.15)
    assert not coarse_eul.info["finite"]


def test_result_to_xarray_and_save_at():
    model = fhn_electrical()
    run = simulate_fhn_network(model, gamma=5.0, n=[10], t_final=1.0, dt=0.1, seed=0,
                               save_at=[0.0, 0.5, 1.0])
    assert np.allclose(run.t, [0.0, 0.5, 1.0])
    ds = run.to_xarray()
    assert ds["var_v"].shape == (3, 1)
    assert ds.attrs["kind"] == "electrical"
    assert int(ds["n"][0]) == 10


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(gamma=-1.0), ValueError, "gamma=-1.0"),
    (dict(n=1), ValueError, "n=1"),
    (dict(dt=0.0), ValueError, "dt=0.0"),
    (dict(scheme="rk4"), ValueError, "scheme='rk4'"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(save_at=[2.0]), ValueError, "save_at"),
    (dict(initial=(0, 0)), TypeError, "initial"),
])
def test_bad_input_is_rejected_with_its_name(kwargs, error, match):
    base = dict(gamma=1.0, n=10, t_final=1.0, dt=0.1, seed=0)
    base.update(kwargs)
    with pytest.raises(error, match=match):
        simulate_fhn_network(fhn_electrical(), **base)


def test_model_must_be_an_fhn_model():
    with pytest.raises(TypeError, match="model"):
        simulate_fhn_network("fhn", gamma=1.0, n=10, t_final=1.0, dt=0.1, seed=0)


@pytest.mark.parametrize("build", [fhn_electrical, fhn_chemical])
def test_numba_kernel_agrees_with_numpy_twin(build):
    model = build()
    kwargs = dict(gamma=50.0, n=[300] * model.P, t_final=1.0, dt=0.01, seed=4,
                  initial=GaussianStart(v=-0.5, w=-0.4, v_std=0.5, w_std=0.2))
    slow = simulate_fhn_network(model, fast=False, **kwargs)
    quick = simulate_fhn_network(model, fast=True, **kwargs)
    assert not slow.info["fast"]
    assert quick.info["fast"]
    assert np.allclose(slow.v, quick.v, rtol=0, atol=1e-10)
    assert np.allclose(slow.w, quick.w, rtol=0, atol=1e-10)
    assert np.allclose(slow.var_v, quick.var_v, rtol=1e-9, atol=0)


def test_fast_kernel_only_for_the_exponential_scheme():
    with pytest.raises(ValueError, match="fast=True"):
        simulate_fhn_network(fhn_electrical(), gamma=1.0, n=10, t_final=1.0, dt=0.1, seed=0,
                             scheme="euler", fast=True)


def test_chemical_coupling_clamps_v_while_w_follows_the_slow_limit():
    model = fhn_chemical()
    v_star = model.balance_voltages()
    start = GaussianStart(v=list(v_star), w=-0.6, v_std=0.0, w_std=0.0)
    w_errors, v_errors = [], []
    for gamma in (30.0, 100.0, 300.0):
        run = simulate_fhn_network(model, gamma=gamma, n=500, t_final=10.0, dt=0.02, seed=2,
                                   initial=start)
        limit_v, limit_w = model.chemical_limit(run.t, [-0.6] * model.P)
        w_errors.append(np.abs(run.mean_w - limit_w).max(axis=0))
        v_errors.append(np.abs(run.mean_v - limit_v).max(axis=0))
    w_errors, v_errors = np.array(w_errors), np.array(v_errors)
    assert np.all(np.diff(w_errors, axis=0) < 0), w_errors
    assert np.all(w_errors[-1] < 0.01), w_errors
    assert np.all(np.diff(v_errors, axis=0) < 0), v_errors
    assert np.all(v_errors[-1] < 0.03), v_errors
    # w really moves on the slow scale 1/(ε b) ≈ 16: it is not clamped like v
    assert np.all(np.abs(limit_w[-1] - limit_w[0]) > 0.05)
