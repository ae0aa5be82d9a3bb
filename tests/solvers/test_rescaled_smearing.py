"""The zoomed frame moves affinely with the profile, and the smearing estimate is honest.

A wide Gaussian (std 0.5, 4 std off the balance point 0) on an Ornstein–Uhlenbeck model at
γ = 1e8 contracts by four orders of magnitude in a time O(log γ/γ); mean and variance are known
in closed form. Its ``mean ± 10 std`` window starts cut by the wall at x = 6. A window held at
the wall let the profile slide across the cells while it contracted, and the upwind flux smeared
it: the variance was 11% off on the default 200 cells (5.4% on 400, 2.7% on 800), silently.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import meanfield as mf
import solvers
from meanfield.errors import ResolutionWarning
from solvers.rescaled import Gaussian, solve_rescaled
from solvers.rescaled.smearing import rates

GAMMA = 1e8
D = 0.18  # sigma 0.6


def _ou() -> mf.Model:
    return mf.models.linear_ou(names=("E",), alpha=(1.0,), mu=(0.0,), sigma=(0.6,),
                               g=((1.0,),), reversal=(0.0,), readout_slope=0.0)


def _run(cells: int):
    times = np.linspace(0, 30 / GAMMA, 16)
    sol = solve_rescaled(_ou(), gamma=GAMMA, t_final=times[-1], save_at=times, cells=cells,
                         initial=[Gaussian(2.0, 0.5)])
    rate = GAMMA + 1.0  # α + γ·g·m with m = 1
    var = D / rate + (0.25 - D / rate) * np.exp(-2 * rate * sol.t)
    mean = 2.0 * np.exp(-rate * sol.t)
    return sol, np.abs(sol.var[:, 0] / var - 1), np.abs(sol.mean[:, 0] - mean) / np.sqrt(var)


def test_a_wide_start_at_a_wall_keeps_its_variance_on_the_default_grid():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        sol, var_error, mean_error = _run(200)
    assert var_error.max() < 1e-3  # measured 3.9e-4 (was 0.11)
    assert mean_error.max() < 1e-3  # in standard deviations; measured 3.6e-4
    assert sol.info["variance_error"].max() < 1e-3
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)


def test_the_smearing_estimate_follows_the_true_error_and_its_advice_works():
    with pytest.warns(ResolutionWarning, match=r"population 'E'.*off by about 0\.04") as caught:
        sol, var_error, _ = _run(20)
    estimate = sol.info["variance_error"][:, 0]
    k = int(np.argmax(var_error))
    assert var_error[k] > 2e-2  # measured 4.6e-2
    assert 0.5 < estimate[k] / var_error[k] < 2  # measured 0.91
    advised = int(re.search(r"cells=(\d+)", str(caught[0].message)).group(1))
    assert 50 < advised < 200  # measured 105
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        _, var_error, _ = _run(advised)
    assert var_error.max() < 1e-2


def test_a_gibbs_state_is_not_smeared_and_relaxes_at_the_confinement_rate():
    # q ∝ exp(−κ z²/(2 D_z)) sampled at the centres with δ the exact potential differences:
    # the flux is in detailed balance (no growth), and the confinement is κ
    centres = np.linspace(-1, 1, 201)[:-1] + 0.005
    widths = np.full(200, 0.01)
    half, diffusion, kappa = np.array([2.0]), np.array([0.5]), 40.0
    D_z = diffusion / half**2
    potential = kappa * centres**2 / (2 * D_z[0])
    q = np.exp(-potential)[None]
    growth, confinement, per_std = rates(q / (q @ widths), np.diff(potential)[None],
                                         np.empty((1, 0, 199)), np.empty(0), half, diffusion,
                                         centres, widths)
    assert growth[0] < 1e-12
    assert confinement[0] == pytest.approx(kappa, rel=1e-9)
    assert per_std[0] == pytest.approx(np.sqrt(D_z[0] / kappa) / 0.01, rel=1e-3)


def test_a_uniform_start_keeps_room_for_the_tails_it_grows():
    # a uniform density fills the domain (chemical model, γ = 30): its window is cut to the
    # walls, only 1.7 standard deviations wide. Carried along affinely it stayed that narrow
    # while diffusion grew Gaussian tails, and its zero-flux edges folded them back: the
    # variance was 5.6% off (against the native solver on 8000 cells), silently. A window
    # edge now recedes only over empty cells: measured 3.8e-3 (native 4000 vs 8000: 7e-4)
    model, gamma = mf.models.chemical(), 30.0
    times = np.array([0, 0.3, 1, 3, 10]) / gamma
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = solvers.solve(model, gamma=gamma, t_final=times[-1], save_at=times,
                                  cells=8000, initial=lambda x: np.ones_like(x), rtol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        sol = solve_rescaled(model, gamma=gamma, t_final=times[-1], save_at=times,
                             initial=lambda x: np.ones_like(x))
    assert np.max(np.abs(sol.var / reference.var - 1)) < 1e-2
    assert np.max(np.abs(sol.mean - reference.mean) / np.sqrt(reference.var)) < 1e-2
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)


def test_a_window_too_coarse_to_follow_its_profile_fails_with_advice():
    # 12 cells on ±10 standard deviations: 0.6 cells per std, and the frame chases the
    # discretisation of its own profile (step size underflow); the error names the cause
    with pytest.raises(RuntimeError, match=r"step size underflow.*resolves its standard "
                       r"deviation by only 0\.\d+ cells.*use cells >= 2\d"):
        solve_rescaled(_ou(), gamma=1e6, t_final=1e-5, cells=12,
                       initial=Gaussian(0.0, 4.24e-4))


def test_a_coarse_window_that_runs_out_of_steps_advises_more_cells():
    # chemical model at γ = 324 on 24 cells with window 7.1: 1.7 cells per standard deviation,
    # more than 20 000 steps (48 cells: 5810, 100 cells: 1283); the budget error said only
    # "raise max_steps or loosen rtol/atol"
    start = [Gaussian(-1.0830297721523956, 0.8953332209729719),
             Gaussian(-0.3948614400499779, 0.834136830777324)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match=r"max_steps=2000 .*more cells: on 24 cells the "
                           r"window of population '[EI]' resolves .* by only [0-9.]+ cells.*"
                           r"cells >= \d+ may finish sooner"):
            solve_rescaled(mf.models.chemical(), gamma=324.0, t_final=2.19, cells=24,
                           window=7.1, initial=start, max_steps=2000)
