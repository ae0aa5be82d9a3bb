"""The 2-D mean-field PDE of FitzHugh–Nagumo populations (solvers.fhn.fipy2d; against networks)."""

import warnings

import numpy as np
import pytest

from meanfield.errors import ResolutionWarning
from meanfield.fhn import GaussianStart, fhn_chemical, fhn_electrical
from solvers import simulate_fhn_network, solve_fhn_native, solve_fhn_pde


def _ensemble(model, gamma, start, save_at, *, seeds=8, n=2500):
    """Mean over ``seeds`` independent networks and the seed-to-seed standard error of that mean.

    Agents of one network share the coupling (its moments jitter from seed to seed), so they
    are not independent samples: the band must come from independent networks.
    """
    runs = [simulate_fhn_network(model, gamma=gamma, n=n, t_final=1.0, dt=0.004, seed=11 + k,
                                 initial=start, save_at=save_at) for k in range(seeds)]
    out = {}
    for name in ("mean_v", "var_v", "mean_w", "var_w"):
        values = np.array([getattr(r, name)[-1] for r in runs])  # (seeds, P)
        out[name] = (values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(seeds))
    return runs[0].t, out


CASES = {
    # electrical, γ = 1: the upstroke of a spike, the law moves and deforms
    "electrical": dict(model=lambda: fhn_electrical(regime="excitable", sigma=0.5),
                       start=GaussianStart(v=0.0, w=-0.6, v_std=0.4, w_std=0.25), gamma=1.0,
                       nv=96, nw=48, v_range=(-3.0, 3.0)),
    # chemical E/I, γ = 2: both populations pulled towards their balance voltages
    "chemical": dict(model=lambda: fhn_chemical(sigma=0.5),
                     start=GaussianStart(v=(-1.0, -0.5), w=-0.6, v_std=0.3, w_std=0.25),
                     gamma=2.0, nv=72, nw=48, v_range=(-3.0, 1.5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pde_matches_network_ensembles_within_seed_to_seed_bands(case):
    """The native 2-D PDE (FiPy is checked against it in test_fhn_native) against independent
    networks: the band is 4 seed-to-seed standard errors plus 3 times the PDE's own space
    error estimate."""
    spec = CASES[case]
    model = spec["model"]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResolutionWarning)  # the band below carries the error
        pde = solve_fhn_native(model, gamma=spec["gamma"], t_final=1.0, nv=spec["nv"],
                               nw=spec["nw"], v_range=spec["v_range"], w_range=(-1.8, 0.8),
                               initial=spec["start"], save_at=[0.0, 0.5, 1.0])
    t, net = _ensemble(model, spec["gamma"], spec["start"], pde.t)
    assert np.allclose(t, pde.t)
    moved = np.abs(pde.mean_v[-1] - pde.mean_v[0]) + np.abs(pde.var_v[-1] - pde.var_v[0])
    assert np.all(moved > 0.1)  # the law has moved or deformed: not a trivial comparison
    for name, (mean, se) in net.items():
        assert np.all(se > 0), (case, name, se)
        own = np.abs(getattr(pde, f"error_{name}")[-1])
        gap = np.abs(getattr(pde, name)[-1] - mean)
        assert np.all(gap < 4 * se + 3 * own), (case, name, gap, se, own)
        assert np.all(own < 2 * se + 1e-3), (case, name, own, se)  # a sharp comparison


def test_mass_is_conserved_and_densities_stay_positive():
    model = fhn_chemical()
    start = GaussianStart(v=(1.0, 0.5), w=(-0.5, 0.0), v_std=0.4, w_std=0.3)
    pde = solve_fhn_pde(model, gamma=20.0, t_final=0.5, nv=40, nw=40, dt=0.05, initial=start)
    assert pde.info["max_mass_error"] < 1e-12
    assert np.max(np.abs(pde.mass - 1.0)) < 1e-12
    assert pde.info["min_density"] >= -1e-14
    assert np.all(pde.min_density >= -1e-14)
    # the strong coupling drives both populations towards their balance voltages
    v_star = model.balance_voltages()
    assert np.all(np.abs(pde.mean_v[-1] - v_star) < np.abs(pde.mean_v[0] - v_star))
    assert np.all(pde.balance_residual[-1] < 0.5 * pde.balance_residual[0])


def test_result_fields_and_xarray():
    model = fhn_electrical()
    pde = solve_fhn_pde(model, gamma=2.0, t_final=0.2, nv=12, nw=10, dt=0.05)
    assert pde.rho.shape == (5, 1, 10, 12)
    assert np.allclose(pde.marginal_v().sum(axis=-1) * (pde.v[1] - pde.v[0]), 1.0)
    assert np.allclose(pde.marginal_w().sum(axis=-1) * (pde.w[1] - pde.w[0]), 1.0)
    ds = pde.to_xarray()
    assert ds["rho"].dims == ("t", "population", "w", "v")
    assert ds.attrs["kind"] == "electrical"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(dt=5.0, t_final=10.0), ValueError, "dt=5.0"),
    (dict(nv=2), ValueError, "nv=2"),
    (dict(v_range=(1.0, -1.0)), ValueError, "v_range"),
    (dict(w_range=3.0), TypeError, "w_range"),
    (dict(initial=GaussianStart(v_std=0.0)), ValueError, "initial"),
    (dict(gamma=float("nan")), ValueError, "gamma"),
])
def test_bad_input_is_rejected_with_its_name(kwargs, error, match):
    base = dict(gamma=1.0, t_final=0.1, nv=8, nw=8, dt=0.05)
    base.update(kwargs)
    with pytest.raises(error, match=match):
        solve_fhn_pde(fhn_electrical(), **base)


def test_issue_case_on_the_default_grid_warns_with_the_cells_that_fix_it():
    model = fhn_electrical(current=0.3, a=0.75, b=0.7, epsilon=0.1, sigma=0.5, g=1.0)
    start = GaussianStart(v=-0.3, w=-0.2, v_std=0.35, w_std=0.2)
    with pytest.warns(ResolutionWarning, match=r"concentration width .* use about nv=\d+, nw=\d+"):
        solve_fhn_pde(model, gamma=4.0, t_final=0.02, dt=0.02, initial=start)
