"""``cells="auto"``: a grid adapted to the states (#13 finding 1), against exact Gaussian states.

``chemical_single`` has Gaussian stationary states: ``N(μ(m), v(m))`` with
``μ = 2γm/(1 + γm)``, ``v = D/(1 + γm)`` and ``m = E[S(X)]`` (the sigmoid readout).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate as si
import scipy.optimize as so

import meanfield as mf
import solvers
from solvers.stationary import split_cells


def _records(fn):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = fn()
    return out, [r for r in record if issubclass(r.category, mf.ResolutionWarning)]


def _gaussian(m, gamma, D):
    rate = 1 + gamma * m
    return 2 * gamma * m / rate, D / rate


def _exact_active_state(gamma, D):
    """The continuous self-consistent ``m`` of the active state on the whole line (quadrature)."""

    def residual(m):
        mean, var = _gaussian(m, gamma, D)
        sd = np.sqrt(var)

        def integrand(z):
            return np.exp(-z * z / 2) / np.sqrt(2 * np.pi) / (1 + np.exp(-6 * (mean + sd * z - 1)))

        return si.quad(integrand, -12, 12, epsabs=1e-15, epsrel=1e-13, limit=200)[0] - m

    return so.brentq(residual, 0.5, 1.0, xtol=1e-15, rtol=1e-15)


def test_split_cells_keeps_the_edges_and_splits_equally():
    grid = solvers.Grid(np.array([0.0, 1.0, 3.0, 6.0]))
    fine = split_cells(grid, np.array([1, 2, 3]))
    assert np.allclose(fine.edges, [0, 1, 2, 3, 4, 5, 6], rtol=0, atol=1e-15)


@pytest.mark.usefixtures("strict_floats")
def test_tiny_noise_auto_finds_the_three_exact_states_where_a_coarse_grid_reports_seven():
    model = mf.models.chemical_single(sigma=1e-6)
    D = 0.5e-12
    coarse, record = _records(lambda: solvers.stationary_states(model, gamma=10.0, cells=200,
                                                                stability=False))
    assert len(coarse) == 7  # the finding: spurious states of a staircase map ...
    assert len(record) == 1  # ... carry one warning naming the cells that fix it
    assert "cells=" in str(record[0].message)
    states, record = _records(lambda: solvers.stationary_states(model, gamma=10.0, cells="auto",
                                                                stability=False))
    assert not record
    assert len(states) == 3
    for state in states:
        mean, var = _gaussian(state.m[0], 10.0, D)
        assert state.resolution.ok
        assert state.var[0] == pytest.approx(var, rel=1e-2, abs=0)
        assert abs(state.mean[0] - mean) <= state.error_mean[0] + 1e-12
        assert abs(state.var[0] - var) <= state.error_var[0] + 1e-3 * var
        assert state.grid.cells < 20_000  # refined around the states only
        assert state.grid.h.max() / state.grid.h.min() > 1e3


@pytest.mark.usefixtures("strict_floats")
def test_wide_domain_auto_gets_the_active_state_where_a_uniform_grid_gives_mean_1000():
    model = mf.models.chemical_single(domain=(-1e6, 1e6))
    wrong, record = _records(lambda: solvers.stationary_states(model, gamma=10.0, cells=1000,
                                                               stability=False))
    assert wrong[0].mean[0] == pytest.approx(1000.0)  # the finding ...
    assert len(record) == 1  # ... is warned about
    states, record = _records(lambda: solvers.stationary_states(model, gamma=10.0, cells="auto",
                                                                stability=False))
    assert not record
    assert len(states) == 1
    state = states[0]
    m_exact = _exact_active_state(10.0, 0.125)
    mean, var = _gaussian(m_exact, 10.0, 0.125)
    assert state.mean[0] == pytest.approx(1.8167, abs=1e-4)
    # the discrete state against the continuous one: second order in the adapted cells, and
    # within its own Richardson estimate (plus the round-off of a 2e6-wide domain)
    assert abs(state.mean[0] - mean) <= state.error_mean[0] + 1e-9
    assert abs(state.var[0] - var) <= state.error_var[0] + 1e-9
    assert abs(state.mean[0] - mean) <= 1e-6
    assert state.grid.cells < 5000


def test_continuation_with_auto_cells_follows_the_exact_states_without_warning():
    model = mf.models.chemical_single(sigma=1e-6)
    D = 0.5e-12
    branches, record = _records(lambda: solvers.continuation(model, [8.0, 10.0], cells="auto",
                                                             stability=False))
    assert not record
    assert sum(b.gammas.size for b in branches) == 6  # three states at both couplings
    cells = {s.grid.cells for b in branches for s in b.states}
    assert len(cells) == 1  # one grid (the union of the adapted ones): branches stack
    assert branches[0].to_xarray().sizes["x"] == cells.pop()
    for branch in branches:
        for gamma, state in zip(branch.gammas, branch.states, strict=True):
            mean, var = _gaussian(state.m[0], gamma, D)
            assert state.var[0] == pytest.approx(var, rel=1e-2, abs=0)
            # + round-off: at D = 5e-13 the discrete Gibbs mean scatters by ~1e-11 relative
            # (refining the grid 2, 4, 8 times leaves it between 5e-13 and 4e-12 off here),
            # which no Richardson estimate sees
            assert abs(state.mean[0] - mean) <= state.error_mean[0] + 1e-11 * abs(mean)


@pytest.mark.parametrize(("kwargs", "gammas", "cells"), [
    ({"sigma": 1e-6}, [8.0, 10.0], 200),
    ({"domain": (-1e6, 1e6)}, [9.0, 10.0], 1000),
])
def test_continuation_on_too_coarse_grids_warns_once_naming_the_cells(kwargs, gammas, cells):
    model = mf.models.chemical_single(**kwargs)
    branches, record = _records(lambda: solvers.continuation(model, gammas, cells=cells,
                                                             stability=False))
    assert len(record) == 1
    assert "cells=" in str(record[0].message)
    assert not all(np.concatenate([b.resolved for b in branches]))


def test_auto_cells_with_a_grid_is_rejected():
    grid = solvers.Grid.uniform(-3, 5, 100)
    with pytest.raises(ValueError, match=r"cells='auto'.*not both"):
        solvers.stationary_states(mf.models.chemical_single(), gamma=1.0, cells="auto", grid=grid)
    with pytest.raises(ValueError, match=r"cells='fine'.*'auto'"):
        solvers.continuation(mf.models.chemical_single(), [1.0], cells="fine")


@pytest.mark.usefixtures("strict_floats")
def test_noise_beyond_any_grid_gives_the_right_states_with_a_warning_not_a_crash():
    """σ = 1e-150: widths of 1e-150 cannot be resolved in floating point; the adapted grid stops
    at round-off, finds the three states (the σ → 0 fixed points) and warns."""
    model = mf.models.chemical_single(sigma=1e-150)
    states, record = _records(lambda: solvers.stationary_states(model, gamma=10.0, cells="auto",
                                                                stability=False))
    assert len(record) == 1
    assert "concentration width" in str(record[0].message)
    reference = solvers.stationary_states(mf.models.chemical_single(sigma=1e-6), gamma=10.0,
                                          cells="auto", stability=False)
    assert len(states) == 3
    for state, ref in zip(states, reference, strict=True):
        assert np.all(np.isfinite(state.rho))
        assert state.mass[0] == pytest.approx(1.0, abs=1e-13)
        assert state.m[0] == pytest.approx(ref.m[0], abs=1e-9)
        assert not state.resolution.ok


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ({}, {"gammas": [1.0, float("nan")]}, ValueError, r"gammas=nan.*finite"),
    ({}, {"gammas": [1.0], "stability": "no"}, TypeError, r"stability has type str"),
    ({"sigma": 1e-200}, {"gammas": [1.0]}, ValueError, r"model=.*D = sigma\^2/2.*underflows"),
])
def test_continuation_rejects_nan_non_booleans_and_underflowing_noise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        solvers.continuation(mf.models.chemical_single(**args), **kwargs)


@pytest.mark.parametrize("gamma", [1.0, 1e4, 1e8])
def test_auto_cells_over_gamma_match_the_exact_gaussians_to_their_error_without_warning(gamma):
    from test_stationary import exact_linear_ou

    model = mf.models.linear_ou()
    states, record = _records(lambda: solvers.stationary_states(model, gamma=gamma, cells="auto",
                                                                stability=False))
    assert not record
    assert len(states) == 1
    state = states[0]
    mean, var = exact_linear_ou(model, gamma)
    assert np.all(np.abs(state.var - var) <= 1e-2 * var)  # the tolerance
    assert np.all(np.abs(state.mean - mean) <= state.error_mean + 1e-12)
    assert np.all(np.abs(state.var - var) <= state.error_var + 1e-11 * var)
