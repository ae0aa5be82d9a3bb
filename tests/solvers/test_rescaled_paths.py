"""The frame's path pieces: exact on the polynomials they claim, and a collapse that costs the
same number of steps at every γ once the frame follows its profile to fourth order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import meanfield as mf
from solvers.limits import balance_points
from solvers.rescaled import Gaussian, solve_rescaled
from solvers.rescaled.paths import (
    ahead,
    bdf2_slope,
    carried_third,
    defect_at,
    saturate,
    stiff_weight,
    third,
    third_at,
)

H2, H1, H = 0.7, 0.4, 0.55  # uneven steps: t_{n−2} = −1.1, t_{n−1} = −0.4, t_n = 0, t_{n+1} = H


def _cubic(t: float) -> float:
    return 0.3 - 1.2 * t + 0.8 * t**2 - 0.45 * t**3


def _slope(t: float) -> float:
    return -1.2 + 1.6 * t - 1.35 * t**2


@pytest.mark.parametrize(("name", "value", "exact"), [
    ("cubic extrapolation", ahead(_cubic(-H1 - H2), _cubic(-H1), _cubic(0.0), _slope(0.0),
                                  H2, H1, H), _cubic(H)),
    ("quadratic extrapolation (no h2)", ahead(0.0, 1 + H1 + H1**2, 1.0, -1.0, 0.0, H1, H),
     1 - H + H**2),
    ("BDF2 slope of a quadratic", bdf2_slope(1 - 2 * (-H1) + 3 * H1**2, 1.0,
                                             1 - 2 * H + 3 * H**2, H1, H), -2 + 6 * H),
    ("third derivative from three slopes", third(_slope(-H1 - H2), _slope(-H1), _slope(0.0),
                                                 H2, H1), -2.7),
])
def test_path_pieces_are_exact_on_their_polynomials(name, value, exact):
    assert value == pytest.approx(exact, rel=1e-12, abs=1e-12), name


def test_saturate_keeps_small_changes_and_caps_large_ones():
    d = np.array([1e-3, 0.05, 0.3, 10.0, -10.0, 1e200, -1e300])
    out = saturate(d, 1.0)
    np.testing.assert_allclose(out[:2], d[:2], rtol=1e-10)  # (d/L)⁸/8 ≤ 5e-12
    assert abs(out[2] / d[2] - 1) < 1e-5
    np.testing.assert_allclose(out[3:5], [1.0, -1.0], rtol=1e-7)
    np.testing.assert_allclose(out[5:], [1.0, -1.0], rtol=1e-15)  # no overflow of (d/L)⁸


def test_a_wide_centred_collapse_costs_the_same_steps_at_every_gamma():
    # std 0.5 → the concentration width: ln(0.5/w) = 4.4, 9.0, 13.6 e-folds at γ = 1e4, 1e8,
    # 1e12; a frame that follows to fourth order (cubic placement, BDF2 velocity without its
    # defect, an exact cap) costs the same: measured 183, 194, 199 steps with the default 101
    # saved frames (298, 297, 300 before saved times were landed on from a rung below)
    model = mf.models.linear_ou(names=("E",), alpha=(1.0,), mu=(0.0,), sigma=(0.6,),
                                g=((1.0,),), reversal=(0.0,), readout_slope=0.0)
    steps = []
    for gamma in (1e4, 1e8, 1e12):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve_rescaled(model, gamma=gamma, t_final=30 / gamma,
                                 initial=Gaussian(0.0, 0.5))
        var = 0.18 / (gamma + 1) + (0.25 - 0.18 / (gamma + 1)) * np.exp(-2 * (gamma + 1) * sol.t)
        assert np.max(np.abs(sol.var[:, 0] / var - 1)) < 1e-3  # measured ≤ 5.2e-5
        steps.append(sol.info["steps"])
    assert max(steps) < 250
    assert max(steps) / min(steps) < 1.3


def test_stiff_weight_takes_the_whole_correction_only_on_short_steps():
    # κ = h(h + h₁)/(2h + h₁) = 0.5·1.0/1.5 = 1/3 for h = h₁ = 0.5
    assert stiff_weight(0.5, 0.5, 0.0) == 1.0
    assert stiff_weight(0.5, 0.5, 3.0) == pytest.approx(0.5, rel=1e-15)
    assert stiff_weight(0.5, 0.5, 1e12) == pytest.approx(1 / (1 + 1e12 / 3), rel=1e-15)


def test_a_settled_profile_lets_the_steps_grow_at_every_gamma():
    # three chemical populations started 5 widths off their balance points, 3 wide: after the
    # layer (a few relaxation times 1/γ) nothing moves until t = 5, ½ln(5γ) e-folds of time
    # later. The defect correction of a stiff step rang on round-off (10⁻⁶ of the width, half
    # the tolerance) and held the steps to 9 % growth: 236 steps at γ = 1e2 and 519 at 1e12
    # before the stiff weight; measured now 173 and 205
    model = mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                               g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                               sigma=(0.8, 0.6, 0.7))
    point = next(b for b in balance_points(model) if b.stable)
    steps = []
    for gamma in (1e2, 1e12):
        width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
        start = [Gaussian(v + 5 * w, 3 * w) for v, w in zip(point.v, width, strict=True)]
        sol = solve_rescaled(model, gamma=gamma, t_final=5.0, save_at=(0.0, 5.0),
                             initial=start)
        var = np.array(model.diffusion) / (gamma * point.slope)
        assert np.max(np.abs(sol.var[-1] / var - 1)) < 5 / gamma + 1e-6
        steps.append(sol.info["steps"])
    assert steps[1] / steps[0] < 1.3


def _quartic(t: float) -> float:
    return 0.3 - 1.2 * t + 0.8 * t**2 - 0.45 * t**3 + 0.7 * t**4


def _quartic_slope(t: float) -> float:
    return -1.2 + 1.6 * t - 1.35 * t**2 + 2.8 * t**3


def _quartic_third(t: float) -> float:
    return -2.7 + 16.8 * t


def test_the_defect_and_its_third_derivative_are_placed_exactly_for_a_quartic():
    # BDF2 difference + h(h + h₁)/6·u‴(t_n + defect_at) = u'(t_{n+1}); third(...) = u‴ at third_at
    bdf2 = bdf2_slope(_quartic(-H1), _quartic(0.0), _quartic(H), H1, H)
    corrected = bdf2 + H * (H + H1) / 6 * _quartic_third(defect_at(H, H1))
    assert corrected == pytest.approx(_quartic_slope(H), rel=1e-12)
    assert bdf2 != pytest.approx(_quartic_slope(H), rel=1e-2)
    estimate = third(_quartic_slope(-H1 - H2), _quartic_slope(-H1), _quartic_slope(0.0), H2, H1)
    assert estimate == pytest.approx(_quartic_third(third_at(H2, H1)), rel=1e-12)


def test_a_third_derivative_is_carried_along_its_line_only_while_it_keeps_its_sign():
    # on a line u‴ = 2 + t: from 1.5 at −0.5 (prior 1.0 at −1) to 0.25 → 2.25
    assert carried_third(1.5, 1.0, -0.5, -1.0, 0.25) == pytest.approx(2.25, rel=1e-15)
    assert carried_third(1.5, 1.0, -0.5, -1.0, 5.0) == 3.0  # capped at |value|
    assert carried_third(1.5, -1.0, -0.5, -1.0, 0.25) == 1.5  # alternating: noise, kept
    np.testing.assert_allclose(carried_third(np.array([1.5, -1.5]), np.array([1.0, 1.0]),
                                             -0.5, -1.0, 0.25), [2.25, -1.5], rtol=1e-15)
