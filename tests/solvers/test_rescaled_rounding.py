"""The rounding floor of the zoomed solver's error control: the moments, known to 1e-14, move a
profile by γ times their rounding; an ``rtol`` well below that floor stalls the steps and draws
a warning that names the floor."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import ResolutionWarning
from meanfield.numeric import numeric
from solvers.limits import balance_points
from solvers.rescaled import Gaussian, solve_rescaled
from solvers.rescaled.rounding import rounding_floor
from solvers.rescaled.stage import MOMENT_RTOL


def _model() -> mf.Model:
    return mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                              g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                              sigma=(0.8, 0.6, 0.7))


def _floor(gamma: float) -> np.ndarray:
    model = _model()
    point = next(b for b in balance_points(model) if b.stable)
    nm = numeric(model)
    return rounding_floor(nm, gamma, nm.all_moments(point.m, 0.0), point.v, MOMENT_RTOL)


def test_the_floor_grows_as_the_square_root_of_gamma():
    # ≈ 1e-14·(γ/(A D))^{1/2}·Σ_j g_pj m_j |v_p − E_j|: measured 2.5e-8, 3.3e-8, 1.8e-8
    floor = _floor(1e12)
    assert np.all((1e-8 < floor) & (floor < 5e-8))
    np.testing.assert_allclose(_floor(1e8) * 100, floor, rtol=1e-6)


def _run(rtol: float, gamma: float = 1e12):
    model = _model()
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    start = [Gaussian(v + 5 * w, 3 * w) for v, w in zip(point.v, width, strict=True)]
    return solve_rescaled(model, gamma=gamma, t_final=1e-10, save_at=(0.0, 1e-10),
                          initial=start, rtol=rtol)


def test_an_rtol_below_the_floor_is_named_with_the_floor():
    # rtol 5e-9 at γ = 1e12 ran out of 20 000 steps to t = 5 (331 at rtol 1e-7, 749 at 1e-8)
    with pytest.warns(ResolutionWarning, match=r"rtol=5e-09 .* rounding floor .*3\.3e-08 per "
                      r"step for population 'I'.*rtol >= 3\.3e-08") as caught:
        _run(5e-9)
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        _run(1e-8)
        _run(1e-6)


def test_a_settled_run_takes_one_step_per_saved_time():
    # the ladder rounds every proposal down: a step that had just doubled onto the spacing of
    # the saved times came out a rung short and the rest was split in two, two steps per saved
    # time for ever (the same in the compiled time loop of solvers.solve)
    model = _model()
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (1e8 * point.slope))
    start = [Gaussian(v + 5 * w, 3 * w) for v, w in zip(point.v, width, strict=True)]
    steps = [solve_rescaled(model, gamma=1e8, t_final=5.0, save_at=times, initial=start
                            ).info["steps"] for times in ((0.0, 5.0), None)]
    assert steps[1] - steps[0] <= 100  # 101 frames: measured 93 more steps (191 before)
