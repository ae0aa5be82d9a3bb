"""``solvers.solve`` never returns a silent wrong answer (#13): bad arguments, γ range, resolution."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import solvers
from meanfield import models
from meanfield.errors import ResolutionWarning
from solvers.solve import AUTO_MAX_CELLS, GAMMA_MAX

MODEL = models.chemical_single()
BASE = {"gamma": 1.0, "t_final": 0.1, "cells": 50}
D_OU = 0.18  # sigma = 0.6


def ou(domain: tuple[float, float] = (-1.0, 3.0)):
    """One OU population: drift −(x − 0.5) − γ(x − 1.5); balance point → 1.5, width √(D/(1+γ))."""
    return models.linear_ou(names=("E",), alpha=1.0, mu=0.5, sigma=0.6, g=[[1.0]], reversal=1.5,
                            readout_slope=0.0, domain=domain)


def resolution_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(r.message) for r in record if r.category is ResolutionWarning]


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(("name", "value", "match"), [
    ("gamma", np.nan, r"gamma=nan .*finite"),
    ("t_final", np.nan, r"t_final=nan .*finite"),
    ("dt", np.nan, r"dt=nan .*finite"),
    ("rtol", np.nan, r"rtol=nan .*finite"),
    ("atol", np.nan, r"atol=nan .*finite"),
    ("tolerance", np.nan, r"tolerance=nan .*finite"),
    ("save_at", [0.05, np.nan], r"save_at=.*nan.*finite times in \[0, t_final=0.1\]"),
    ("initial", np.full((1, 50), np.nan), r"initial=.*non-finite.*finite values"),
    ("gamma", np.inf, r"gamma=inf .*finite"),
    ("gamma", -1.0, r"gamma=-1.0 is not allowed"),
])
def test_non_finite_arguments_are_rejected_naming_the_argument(name, value, match):
    with pytest.raises(ValueError, match=match):
        solvers.solve(MODEL, **{**BASE, name: value})


@pytest.mark.parametrize("sigma", [1e-200, 1e-155])
def test_noise_whose_diffusion_underflows_is_a_value_error_naming_sigma(sigma):
    """σ = 1e-200 gives D = 0 and σ = 1e-155 a subnormal D: no OverflowError from the checks."""
    model = models.chemical_single(sigma=sigma)
    with pytest.raises(ValueError, match=r"model=.*D = sigma\^2/2 = \{'E': .*\}.*sigma whose D is "
                       r"a positive normal float.*sigma >= about 2.2e-154"):
        solvers.solve(model, **BASE)


def test_cells_and_tolerance_arguments():
    with pytest.raises(ValueError, match=r"cells='fine' .*an integer >= 3, 'auto' or None"):
        solvers.solve(MODEL, gamma=1.0, t_final=0.1, cells="fine")
    with pytest.raises(ValueError, match=r"cells='auto' .*either cells= or grid="):
        solvers.solve(MODEL, gamma=1.0, t_final=0.1, cells="auto",
                      grid=solvers.Grid.uniform(-3, 5, 40))
    with pytest.raises(ValueError, match=r"tolerance=1.5 .*a relative error in \(0, 1\)"):
        solvers.solve(MODEL, **BASE, tolerance=1.5)


# ----------------------------------------------------------------------------- γ range
def test_gamma_range_is_documented_and_checked_before_any_work():
    assert GAMMA_MAX == 1e11
    assert "gamma <= GAMMA_MAX = 1e11" in solvers.solve.__doc__
    for gamma in (1e15, 1.01e11):
        with pytest.raises(ValueError, match=rf"gamma={gamma!r} is not allowed: a coupling <= "
                           r"1e\+11 for solve .*use solvers.solve_rescaled for larger gamma"):
            # an invalid grid would fail later: the γ check comes first, with one message
            solvers.solve(MODEL, gamma=gamma, t_final=1.0, cells=10**12)


# ----------------------------------------------------------------------------- resolution
def test_fixed_grid_gamma_sweep_is_right_or_warned():
    """γ from 1 to 1e8 on 400 cells: the final variance is the exact D/(1+γ) to the tolerance
    (1e-2), or a ResolutionWarning says the grid does not resolve it."""
    model = ou()
    warned = []
    for gamma in (1.0, 1e2, 1e4, 1e6, 1e8):
        k = 1.0 + gamma
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            sol = solvers.solve(model, gamma=gamma, t_final=30 / k, cells=400, save_at=[30 / k])
        messages = resolution_warnings(record)
        assert len(messages) <= 1
        error = abs(sol.var[-1, 0] / (D_OU / k) - 1)
        if messages:
            warned.append(gamma)
            assert not sol.resolution.ok
            # the fix: a number of cells, or (past the grid cap) why no uniform grid fits
            assert re.search(r"use about cells=\d+|beyond the \d+ allowed", messages[0])
        else:
            assert sol.resolution.ok
            assert error <= 1e-2, (gamma, error)
    assert warned == [1e2, 1e4, 1e6, 1e8]  # γ = 1e2: the initial layer (Péclet 2.7 at t = 0)
    assert 1.0 not in warned


def _layer(gamma: float):
    """Start 30 concentration widths off the balance point and 4 wide (issue 13, finding 2)."""
    k = 1 + gamma
    w, vstar = np.sqrt(D_OU / k), (0.5 + 1.5 * gamma) / k
    x0, s0 = vstar - 30 * w, 4 * w
    model = ou(domain=(x0 - 6 * s0, vstar + 12 * w))
    times = np.array([0.25, 0.5, 1.0, 2.0, 20.0]) / k

    def exact(t: np.ndarray) -> np.ndarray:
        return w**2 + (s0**2 - w**2) * np.exp(-2 * k * t)

    return model, (lambda x: np.exp(-((x - x0) ** 2) / (2 * s0**2))), times, exact


@pytest.mark.parametrize("gamma", [1e4, 1e9])
def test_initial_layer_at_default_settings_is_within_1e_2_or_warned(gamma):
    model, initial, times, exact = _layer(gamma)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sol = solvers.solve(model, gamma=gamma, t_final=times[-1], initial=initial,
                            save_at=times)
    error = np.max(np.abs(sol.var[:, 0] / exact(sol.t) - 1))
    messages = resolution_warnings(record)
    assert error <= 1e-2 or messages, error
    assert error > 1e-2  # on the default 1000 cells the layer is off ...
    (message,) = messages  # ... and one warning says why, when, and what fixes it
    assert "Péclet" in message
    assert "at t=0" in message
    assert "initial layer" in message


def test_cells_auto_resolves_the_initial_layer_and_records_its_choice():
    gamma = 1e6
    model, initial, times, exact = _layer(gamma)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        sol = solvers.solve(model, gamma=gamma, t_final=times[-1], initial=initial,
                            save_at=times, cells="auto")
    chosen = sol.info["cells_auto"]
    assert chosen["cells"] == sol.grid.cells
    assert 1000 < chosen["cells"] <= AUTO_MAX_CELLS
    assert chosen["tolerance"] == 1e-2
    assert chosen["capped"] is False
    assert "initial density" in chosen["rule"]
    assert sol.resolution.ok
    error = np.abs(sol.var[:, 0] / exact(sol.t) - 1)
    assert error.max() < 1e-2
    assert error[-1] < 1e-8  # exact after the layer



def test_cells_auto_follows_the_requested_accuracy():
    """A smaller tolerance asks for a finer grid (below the cap), and that grid meets it."""
    from meanfield.numeric import numeric
    from solvers.grid import make_grid
    from solvers.resolution import assess_frames
    from solvers.solve import auto_cells, initial_densities

    gamma = 1e4
    model, initial, _times, _exact = _layer(gamma)
    nm = numeric(model)
    coarse, fine = (auto_cells(nm, gamma, initial, tol) for tol in (1e-2, 3e-3))
    assert fine["cells"] > 1.5 * coarse["cells"]  # Pe ≤ Pe*(tol): Pe* falls like √tol
    assert not fine["capped"]
    for chosen in (coarse, fine):
        grid = make_grid(model.domain, chosen["cells"])
        report = assess_frames(nm, grid, gamma, initial_densities(nm, grid, initial)[None], [0.0],
                               tolerance=chosen["tolerance"])
        assert report.ok, report.message()
