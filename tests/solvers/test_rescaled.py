"""The solver of the exact PDE in the moving zoomed frame (solvers.rescaled, docs/mathematics.md §6)."""

from __future__ import annotations

import numpy as np
import pytest

import asymptotics as asy
import meanfield as mf
import solvers
from meanfield.errors import ResolutionWarning
from solvers.limits import balance_points
from solvers.rescaled import Gaussian, remap, solve_rescaled


def _coarse(edges_fine: np.ndarray, rho_fine: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Cell averages of fine cell averages on coarser cells (exact: cumulative mass)."""
    cumulative = np.concatenate([[0.0], np.cumsum(rho_fine * np.diff(edges_fine))])
    return np.diff(np.interp(edges, edges_fine, cumulative)) / np.diff(edges)


@pytest.mark.parametrize(("gamma", "cells"), [(10.0, 1000), (100.0, 1500), (1000.0, 3000)])
def test_rescaled_and_native_agree_after_the_change_of_variables(gamma, cells):
    model = mf.models.chemical()
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    # start a few widths off the balance point: a genuine transient in the zoomed regime
    initial = [lambda x, c=point.v[p] + 3 * width[p], s=2 * width[p]:
               np.exp(-((x - c) ** 2) / (2 * s * s)) for p in range(model.P)]
    times = [0.5 / gamma, 2 / gamma, 5 / gamma, 1.0]
    native = solvers.solve(model, gamma=gamma, t_final=1.0, cells=cells, save_at=times,
                           rtol=1e-7, atol=1e-12, initial=initial)
    zoomed = solve_rescaled(model, gamma=gamma, t_final=1.0, cells=200, save_at=times,
                            rtol=1e-6, initial=initial)
    np.testing.assert_allclose(zoomed.t, native.t, rtol=1e-12)
    for k in range(1, len(native.t)):
        assert np.max(np.abs(zoomed.mean[k] - native.mean[k]) / width) < 1e-2
        assert np.max(np.abs(zoomed.var[k] / native.var[k] - 1)) < 2e-2
        for p in range(model.P):  # L1 on a common grid of 60 cells over mean ± 6 widths
            common = native.mean[k, p] + 6 * width[p] * np.linspace(-1, 1, 61)
            fine = _coarse(native.grid.edges, native.rho[k, p], common)
            mapped = zoomed.density_on(common, k)[p]
            assert np.sum(np.abs(fine - mapped) * np.diff(common)) < 1e-2
    # t = 1: close to (γ ≥ 100: at) the stationary state, where both are spectrally accurate
    assert np.max(np.abs(zoomed.mean[-1] - native.mean[-1])) < (1e-4 if gamma < 100 else 1e-7)
    assert np.max(np.abs(zoomed.var[-1] / native.var[-1] - 1)) < (1e-3 if gamma < 100 else 1e-6)
    np.testing.assert_allclose(zoomed.mass, 1.0, atol=1e-12)


@pytest.mark.parametrize(("name", "gamma"), [("chemical", 1e8), ("linear_ou", 1e8),
                                         ("chemical_single", 1e8), ("chemical", 1e14)])
def test_huge_gamma_on_200_cells_matches_the_first_order_expansion(name, gamma):
    # γ = 1e14 is the top of the documented range (GAMMA_MAX; beyond it a ValueError)
    model = mf.models.CATALOGUE[name]()
    expansion = asy.stationary_expansion(model, order=1)
    sol = solve_rescaled(model, gamma=gamma, t_final=1.0, cells=200, rtol=1e-3)
    assert np.max(np.abs(sol.mean[-1] - (expansion.v + expansion.mu / gamma))) < 1e-9
    assert np.max(np.abs(sol.var[-1] / (expansion.D / (gamma * expansion.A)) - 1)) < 1e-3
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    assert sol.rho.shape[-1] == 200
    assert sol.eps == pytest.approx(gamma ** -0.5)


def test_backward_euler_is_positive_and_conservative_through_the_initial_layer():
    # 100 cells smear the contracting profile by ~1% of its variance (1.3e-2 against 1600
    # cells; estimated 1.2e-2), and the solver says so
    with pytest.warns(ResolutionWarning, match=r"off by about 0\.0[1-4].*cells=[1-5]\d\d"):
        sol = solve_rescaled(mf.models.chemical(), gamma=1e6, t_final=1e-4, cells=100,
                             scheme="be", rtol=1e-3)
    assert sol.rho.min() >= 0
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    span = sol.y_edges[:, :, -1] - sol.y_edges[:, :, 0]  # the window followed the concentration
    assert np.all(span[-1] < 0.2 * span[0])


def test_remap_is_conservative_positive_and_third_order_on_smooth_profiles():
    errors = []
    for cells in (40, 80, 160):
        old = np.linspace(-6, 6, cells + 1)
        new = np.linspace(-5.3, 5.9, cells + 1)
        centres = (old[1:] + old[:-1]) / 2
        q = np.exp(-centres**2 / 2)
        q /= q @ np.diff(old)
        out = remap(old, q, new)
        assert out.min() >= 0
        assert out @ np.diff(new) == pytest.approx(1.0, abs=1e-14)
        exact = np.diff(0.5 * (1 + np.vectorize(__import__("math").erf)(new / np.sqrt(2))))
        errors.append(np.sum(np.abs(out * np.diff(new) - exact)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.8), (errors, orders)


def test_result_exposes_frame_and_converts_to_xarray():
    sol = solve_rescaled(mf.models.chemical_single(), gamma=1e4, t_final=0.01, cells=50,
                         rtol=1e-3, save_at=[0.001, 0.01])
    assert sol.y.shape == sol.rho.shape == (3, 1, 50)
    np.testing.assert_allclose(sol.x_edges(-1), sol.center[-1][:, None] + sol.eps * sol.y_edges[-1])
    ds = sol.to_xarray()
    assert ds["rho"].dims == ("t", "population", "cell")
    assert ds.attrs["gamma"] == 1e4


def test_bad_input_is_rejected_with_the_argument_named():
    model = mf.models.chemical()
    with pytest.raises(ValueError, match="gamma"):
        solve_rescaled(model, gamma=-1.0, t_final=1.0)
    with pytest.raises(ValueError, match="scheme"):
        solve_rescaled(model, gamma=10.0, t_final=1.0, scheme="rk4")
    with pytest.warns(DeprecationWarning, match="scheme"), pytest.raises(ValueError, match="method"):
        solve_rescaled(model, gamma=10.0, t_final=1.0, method="rk4")
    with pytest.raises(ValueError, match="window"):
        solve_rescaled(model, gamma=10.0, t_final=1.0, window=2.0)
    with pytest.raises(TypeError, match="model"):
        solve_rescaled("chemical", gamma=10.0, t_final=1.0)
    with pytest.raises(TypeError, match="initial"):
        solve_rescaled(model, gamma=10.0, t_final=1.0, initial=[1.0, 2.0])
    with pytest.raises(ValueError, match="stable balance point"):
        solve_rescaled(mf.models.current_balanced(), gamma=10.0, t_final=1.0)


def _off_centre(model, shift=0.3, spread=0.05):
    point = next(b for b in balance_points(model) if b.stable)
    return [lambda x, c=point.v[p] + shift, s=spread: np.exp(-((x - c) ** 2) / (2 * s * s))
            for p in range(model.P)]


@pytest.mark.parametrize("gamma", [1e4, 1e8, 1e12])
def test_default_bdf2_is_positive_and_conservative_through_an_off_centre_transient(gamma):
    # on a fixed window (the former solver) this run reached min q = -1.1e-4 (γ = 1e4), -4.2e-4
    # (1e8), -4.8e-4 (1e12) before limiting: BDF2's right-hand side α1 q_n − α2 q_{n−1} is
    # negative where the tails drop fast. On windows that follow the profile they do not.
    model = mf.models.chemical()
    sol = solve_rescaled(model, gamma=gamma, t_final=0.01, cells=100, rtol=1e-3,
                         initial=_off_centre(model))
    assert sol.scheme == "bdf2"
    assert sol.rho.min() >= 0
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    assert sol.info["positivity_clips"] == 0  # no limiting needed in the following frame
    assert sol.info["positivity_fallbacks"] == 0
    if gamma >= 1e8:  # relaxed in fast time τ = γt: the stationary expansion holds
        expansion = asy.stationary_expansion(model, order=1)
        assert np.max(np.abs(sol.mean[-1] - (expansion.v + expansion.mu / gamma))) < 1e-9
        assert np.max(np.abs(sol.var[-1] / (expansion.D / (gamma * expansion.A)) - 1)) < 1e-3


def _narrow_start(model, gamma, form):
    """A Gaussian 2 concentration widths wide, 5 widths off the balance point, in one ``form``."""
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    centre, spread = point.v + 5 * width, 2 * width
    if form == "gaussian":
        initial = [Gaussian(c, s) for c, s in zip(centre, spread, strict=True)]
    elif form == "callable":  # exp underflows to 0 a few 1e-5 away: invisible to a coarse scan
        initial = [lambda x, c=c, s=s: np.exp(-((x - c) ** 2) / (2 * s * s))
                   for c, s in zip(centre, spread, strict=True)]
    else:  # samples on the user's own (non-uniform) grid
        initial = []
        for c, s in zip(centre, spread, strict=True):
            x = c + s * np.sinh(np.linspace(-4, 4, 401))  # ±27 s, finest near the peak
            initial.append((x, np.exp(-((x - c) ** 2) / (2 * s * s))))
    return initial, centre, spread


@pytest.mark.parametrize("gamma", [1e8, 1e12])
def test_narrow_off_centre_starts_relax_to_the_stationary_expansion(gamma):
    # the former 4001-point scan saw no mass in a profile this narrow at γ = 1e12
    model = mf.models.chemical()
    expansion = asy.stationary_expansion(model, order=1)
    finals = []
    for form in ("callable", "gaussian", "samples"):
        initial, centre, spread = _narrow_start(model, gamma, form)
        sol = solve_rescaled(model, gamma=gamma, t_final=100 / gamma, cells=100, rtol=1e-3,
                             initial=initial)
        # the initial state is the given profile: its moments on the 100-cell window
        assert np.max(np.abs(sol.mean[0] - centre) / spread) < 1e-6, form
        assert np.max(np.abs(sol.var[0] / spread**2 - 1)) < 1e-3, form
        assert sol.rho.min() >= 0
        np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
        assert np.max(np.abs(sol.mean[-1] - (expansion.v + expansion.mu / gamma))) < 1e-9, form
        assert np.max(np.abs(sol.var[-1] / (expansion.D / (gamma * expansion.A)) - 1)) < 1e-3
        finals.append(sol.mean[-1])
    width = np.sqrt(expansion.D / (gamma * expansion.A))
    assert np.max(np.abs(np.array(finals) - finals[0]) / width) < 1e-4  # the three forms agree


def test_a_narrow_compact_bump_anywhere_is_found_by_the_refined_scan():
    model = mf.models.chemical_single()
    gamma = 1e12
    lo, hi = 1.2345, 1.2345 + 4e-6  # a top hat 4e-6 wide: no point of a 4000-cell scan hits it
    # (a short run, γt = 1e-3: what is tested is the start; the discontinuities of the top hat
    # take hundreds of small steps to smooth out)
    # the discontinuities smear on 100 cells while the hat travels 250 widths (variance 61% off
    # at t_final against 1600 cells): the estimate sees it
    with pytest.warns(ResolutionWarning, match="flux smears"):
        sol = solve_rescaled(model, gamma=gamma, t_final=1e-15, cells=100, rtol=1e-3,
                             initial=lambda x: ((x > lo) & (x < hi)).astype(float))
    cell = float(np.max(np.diff(sol.x_edges(0)[0])))  # midpoint samples of a discontinuity
    assert cell < (hi - lo) / 10
    assert abs(sol.mean[0, 0] - (lo + hi) / 2) < 0.1 * cell
    assert sol.var[0, 0] == pytest.approx((hi - lo) ** 2 / 12, rel=0.05)
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)


def test_bad_initial_data_is_rejected_with_a_named_message():
    model = mf.models.chemical()
    kw = dict(gamma=1e8, t_final=1e-6, cells=50)
    with pytest.raises(ValueError, match=r"initial\[0\]=.*positive mass.*0 at all 16384000 points"):
        solve_rescaled(model, initial=lambda x: 0 * x, **kw)
    with pytest.raises(ValueError, match=r"initial\[1\]\(x=.*\)=-1\.0 .*finite, nonnegative"):
        solve_rescaled(model, initial=[lambda x: np.ones_like(x), lambda x: -np.ones_like(x)], **kw)
    with pytest.raises(ValueError, match=r"initial\[0\]\(x=.*\)=nan .*finite, nonnegative"):
        solve_rescaled(model, initial=lambda x: np.where(x > 0.5, np.nan, 1.0), **kw)
    x = np.linspace(-1, 1, 11)
    with pytest.raises(ValueError, match=r"initial\[0\].*positive mass \(the samples are all 0"):
        solve_rescaled(model, initial=(x, np.zeros(11)), **kw)
    with pytest.raises(ValueError, match=r"initial\[0\]\(x=0\)=nan .*finite, nonnegative"):
        solve_rescaled(model, initial=(x, np.where(x == 0, np.nan, 1.0)), **kw)
    with pytest.raises(ValueError, match=r"initial\[0\].*inside the domain"):
        solve_rescaled(model, initial=(10 * x, np.ones(11)), **kw)
    with pytest.raises(ValueError, match=r"initial\[0\].*Gaussian with its mean inside the domain"):
        solve_rescaled(model, initial=Gaussian(7.0, 0.1), **kw)
    with pytest.raises(ValueError, match="std"):
        Gaussian(0.0, 0.0)
    with pytest.raises(TypeError, match=r"initial.*Gaussian\(mean, std\)"):
        solve_rescaled(model, initial=[Gaussian(0.0, 1.0)], **kw)


def test_save_at_and_gamma_follow_the_rules_of_solve():
    model = mf.models.chemical()
    with pytest.raises(ValueError, match=r"save_at.*\[0, t_final=0\.2\]"):
        solve_rescaled(model, gamma=1e4, t_final=0.2, save_at=[1.0])  # formerly dropped silently
    with pytest.raises(ValueError, match=r"gamma=1000000000000000.0 .*up to 1e\+14"):
        solve_rescaled(model, gamma=1e15, t_final=1.0)
    sol = solve_rescaled(model, gamma=1e4, t_final=1e-3, cells=40, rtol=1e-3, save_at=[5e-4])
    np.testing.assert_allclose(sol.t, [0.0, 5e-4, 1e-3], rtol=1e-12)  # 0 and t_final added
    with pytest.warns(DeprecationWarning, match="rho"):
        np.testing.assert_allclose(sol.q, sol.eps * sol.rho)
