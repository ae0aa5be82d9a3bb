"""The native 2-D FitzHugh–Nagumo solver (solvers.fhn): invariants, orders, twins, cross-checks."""

import warnings

import numpy as np
import pytest

import solvers
from meanfield.errors import ResolutionWarning
from meanfield.fhn import GaussianStart, fhn_chemical, fhn_electrical
from solvers import simulate_fhn_network, solve_fhn_native, solve_fhn_pde
from solvers.fhn.kernels import transport_kernel, transport_numpy, transport_substeps
from solvers.kernels import numba_available


def _issue_model():
    return fhn_electrical(current=0.3, a=0.75, b=0.7, epsilon=0.1, sigma=0.5, g=1.0)


ISSUE_START = GaussianStart(v=-0.3, w=-0.2, v_std=0.35, w_std=0.2)


def _slope(h, err):
    return np.polyfit(np.log(h), np.log(err), 1)[0]


def test_mass_to_roundoff_and_positive_at_strong_coupling():
    model = fhn_chemical()
    start = GaussianStart(v=(1.0, 0.5), w=(-0.5, 0.0), v_std=0.4, w_std=0.3)
    r = solve_fhn_native(model, gamma=20.0, t_final=0.5, nv=32, nw=24, initial=start,
                         error_estimate=False)
    assert np.max(np.abs(r.mass - 1.0)) < 1e-13
    assert r.info["max_mass_error"] < 1e-13
    assert np.all(r.min_density >= -1e-30)  # positive up to round-off of tiny tails
    v_star = model.balance_voltages()
    assert np.all(np.abs(r.mean_v[-1] - v_star) < 0.5 * np.abs(r.mean_v[0] - v_star))


def test_transport_is_conservative_positive_and_twins_agree():
    rng = np.random.default_rng(3)
    rho = rng.random((2, 20, 7)) ** 4  # rough, with near-zero cells
    u = rng.normal(size=(2, 21, 7))
    u[:, 0] = u[:, -1] = 0.0
    n = transport_substeps(float(np.max(np.abs(u)) * 2), 0.3, 0.05)
    out = transport_numpy(rho, u, 0.3, 0.05, n)
    assert np.allclose(out.sum(axis=1), rho.sum(axis=1), rtol=0, atol=1e-13)
    assert out.min() >= 0.0
    if numba_available():
        name, compiled = transport_kernel("numba")
        assert name == "numba"
        assert np.max(np.abs(compiled(rho, u, 0.3, 0.05, n) - out)) < 1e-13


@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
def test_numba_and_numpy_solves_agree():
    model = fhn_chemical(current=(0.3, 0.0))
    start = GaussianStart(v=(-1.0, -0.5), w=-0.6, v_std=0.3, w_std=0.25)
    runs = [solve_fhn_native(model, gamma=2.0, t_final=0.3, nv=16, nw=12, initial=start,
                             v_range=(-3.0, 1.5), w_range=(-1.8, 0.8), kernel=k,
                             error_estimate=False) for k in ("numba", "numpy")]
    assert runs[0].info["kernel"] == "numba"
    assert runs[1].info["kernel"] == "numpy"
    assert runs[0].info["steps"] == runs[1].info["steps"]
    assert np.max(np.abs(runs[0].rho - runs[1].rho)) < 1e-9


def _order_run(nv, nw, dt=0.01, t_final=0.4):
    model = fhn_electrical(regime="excitable", sigma=0.6)
    start = GaussianStart(v=0.0, w=-0.4, v_std=0.4, w_std=0.25)
    return solve_fhn_native(model, gamma=1.0, t_final=t_final, nv=nv, nw=nw, initial=start,
                            v_range=(-3.0, 3.0), w_range=(-1.6, 0.8), dt=dt,
                            save_at=[0.0, t_final], error_estimate=False)


def test_space_order_along_v_and_w():
    ref_v = _order_run(256, 24)
    sizes = np.array([24, 48, 96])
    err_v = [abs(_order_run(n, 24).var_v[-1, 0] - ref_v.var_v[-1, 0]) for n in sizes]
    order_v = _slope(6.0 / sizes, err_v)
    assert order_v >= 1.8, (order_v, err_v)
    assert err_v[-1] < 2e-4
    ref_w = _order_run(24, 384)
    err_w = [abs(_order_run(24, n).var_w[-1, 0] - ref_w.var_w[-1, 0]) for n in sizes]
    order_w = _slope(2.4 / sizes, err_w)
    assert order_w >= 2.0, (order_w, err_w)  # the order the w estimate assumes (W_ORDER)
    assert err_w[-1] < 2e-4


def test_time_order_is_two():
    ref = _order_run(24, 24, dt=0.4 / 128)
    dts = np.array([0.4 / 4, 0.4 / 8, 0.4 / 16])
    err = [np.abs(_order_run(24, 24, dt=dt).rho[-1] - ref.rho[-1]).sum() * ref.cell_area
           for dt in dts]
    order = _slope(dts, err)
    assert 1.8 <= order <= 2.3, (order, err)
    assert err[-1] < 1e-4


def test_adaptive_steps_meet_the_tolerance():
    loose = _order_run(24, 24, dt=None)
    ref = _order_run(24, 24, dt=0.4 / 128)
    err = np.abs(loose.rho[-1] - ref.rho[-1]).sum() * ref.cell_area
    assert loose.info["steps"] >= 2
    assert err < 50 * loose.info["rtol"]


def test_result_round_trips_through_load(tmp_path):
    with pytest.warns(ResolutionWarning, match="nv="):  # 16×16 is coarse: said, not hidden
        r = solve_fhn_native(fhn_electrical(), gamma=2.0, t_final=0.2, nv=16, nw=16,
                             save_at=[0.0, 0.1, 0.2])
    assert np.all(np.isfinite(r.error_var_v))
    path = tmp_path / "native.nc"
    r.save(path)
    back = solvers.load(path)
    assert type(back).__name__ == "FhnNativeResult"
    assert np.array_equal(back.rho, r.rho)
    assert np.array_equal(back.error_var_w, r.error_var_w)
    assert back.to_xarray().attrs["method"] == "native"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(nv=15), ValueError, "nv=15"),
    (dict(nw=4), ValueError, "nw=4"),
    (dict(dt=-1.0), ValueError, "dt=-1.0"),
    (dict(rtol=0.0), ValueError, "rtol=0.0"),
    (dict(save_at=[0.0, 0.5]), ValueError, "save_at"),
    (dict(kernel="fortran"), ValueError, "kernel='fortran'"),
    (dict(initial="gauss"), TypeError, "initial"),
    (dict(v_range=(1.0, 1.0)), ValueError, "v_range"),
    (dict(initial=GaussianStart(w_std=0.0)), ValueError, "initial=GaussianStart"),
])
def test_bad_input_is_rejected_with_its_name(kwargs, error, match):
    base = dict(gamma=1.0, t_final=0.1, nv=16, nw=16)
    base.update(kwargs)
    with pytest.raises(error, match=match):
        solve_fhn_native(fhn_electrical(), **base)


def test_zero_noise_is_rejected():
    with pytest.raises(ValueError, match="sigma > 0"):
        solve_fhn_native(fhn_electrical(sigma=0.0), gamma=1.0, t_final=0.1, nv=16, nw=16)


def test_coarse_grid_warns_with_the_cells_that_fix_it():
    with pytest.warns(ResolutionWarning, match=r"use about nv=\d+, nw=\d+"):
        r = solve_fhn_native(_issue_model(), gamma=4.0, t_final=1.0, nv=16, nw=16,
                             initial=ISSUE_START, save_at=[0.0, 1.0])
    report = r.info["resolution"]
    assert not report["ok"]
    assert report["error"] > report["tolerance"]
    assert max(r.relative_space_error().values()) > 0.2 * report["tolerance"]
    assert report["nv_needed"] > 16 or report["nw_needed"] > 16


FIPY_CASES = {
    # the issue's electrical case (γ = 4), up to t = 0.4 (the start of the first upstroke)
    "electrical": dict(model=_issue_model, start=ISSUE_START, gamma=4.0, v_range=(-3.0, 3.0),
                       w_range=(-1.5, 2.0), fine=(128, 64), fipy=((32, 20), (64, 40)), dt=0.02),
    # chemical E/I with one current per population, γ = 2
    "chemical": dict(model=lambda: fhn_chemical(sigma=0.5, current=(0.2, 0.0)),
                     start=GaussianStart(v=(-1.0, -0.5), w=-0.6, v_std=0.3, w_std=0.25),
                     gamma=2.0, v_range=(-3.0, 1.5), w_range=(-1.8, 0.8), fine=(96, 64),
                     fipy=((24, 16), (48, 32)), dt=0.025),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FIPY_CASES))
def test_native_and_fipy_agree_to_their_discretisation_error(case):
    spec = FIPY_CASES[case]
    model = spec["model"]()
    common = dict(gamma=spec["gamma"], t_final=0.4, v_range=spec["v_range"],
                  w_range=spec["w_range"], initial=spec["start"])
    native = solve_fhn_native(model, nv=spec["fine"][0], nw=spec["fine"][1],
                              save_at=[0.0, 0.4], **common)
    fipy = [solve_fhn_pde(model, nv=nv, nw=nw, dt=spec["dt"] * 64 / nv, save_every=10_000,
                          sweep_tol=1e-6, **common) for nv, nw in spec["fipy"]]
    for name in ("mean_v", "var_v", "mean_w", "var_w"):
        coarse, fine = (getattr(f, name)[-1] for f in fipy)
        ours = getattr(native, name)[-1]
        own_error = np.abs(getattr(native, f"error_{name}")[-1])
        # FiPy is first order (backward Euler; upwind-like at large Péclet): its error on the
        # finer grid is about its change under refinement
        fipy_error = np.abs(fine - coarse)
        gap = np.abs(fine - ours)
        assert np.all(gap <= 1.5 * fipy_error + 3 * own_error + 2e-3), (case, name, gap,
                                                                       fipy_error, own_error)
        assert np.all(own_error <= 0.3 * fipy_error + 2e-3), (case, name, own_error, fipy_error)


def _network_ensemble(model, gamma, start, t_final, save_at, *, seeds=8, n=2500):
    """Mean over independent networks and its seed-to-seed standard error, per observable."""
    runs = [simulate_fhn_network(model, gamma=gamma, n=n, t_final=t_final, dt=0.005, seed=seed,
                                 initial=start, save_at=save_at) for seed in range(seeds)]
    out = {}
    for name in ("mean_v", "var_v", "mean_w", "var_w"):
        values = np.array([getattr(r, name) for r in runs])
        out[name] = (values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(seeds))
    return out


@pytest.mark.slow
def test_issue_case_with_defaults_is_within_two_percent_of_networks_or_warns():
    model, t_final = _issue_model(), 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResolutionWarning)
        pde = solve_fhn_native(model, gamma=4.0, t_final=t_final, initial=ISSUE_START,
                               save_at=[0.0, 1.0, 2.0])
    warned = [str(w.message) for w in caught if issubclass(w.category, ResolutionWarning)]
    net = _network_ensemble(model, 4.0, ISSUE_START, t_final, pde.t)
    moved = abs(pde.mean_v[-1, 0] - pde.mean_v[0, 0])
    assert moved > 0.5  # the upstroke: a strict test of timing
    within = []
    for name, (mean, se) in net.items():
        gap = np.abs(getattr(pde, name)[1:, 0] - mean[1:, 0])
        scale = np.abs(mean[1:, 0]) if name.startswith("var") else np.maximum(
            np.abs(mean[1:, 0]), np.sqrt(net["var" + name[4:]][0][1:, 0]))
        within.append(bool(np.all(gap <= 0.02 * scale + 3 * se[1:, 0])))
    assert all(within) or any("use about nv=" in m for m in warned), (within, warned)
    assert all(within), within  # the defaults are right here (any warning is conservative)
