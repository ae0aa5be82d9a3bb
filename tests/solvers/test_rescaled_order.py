"""Time order of the zoomed solver with moving windows, against the exact OU transient.

With the affine model ``meanfield.models.linear_ou`` a Gaussian stays Gaussian and its mean and
variance obey closed ODEs (see ``test_rescaled_layer``). A profile started 30 concentration
widths off the balance point travels and contracts through the initial layer, and the window
follows it; fixed steps of BDF2 must then converge with order 2 in both the mean and the
variance (the frame's velocity is the scheme's own difference of the frame points).
"""

from __future__ import annotations

import warnings

import numpy as np

import meanfield as mf
from solvers.limits import balance_points
from solvers.rescaled import Gaussian, solve_rescaled
from tests.solvers.test_rescaled_layer import _exact


def test_bdf2_with_moving_windows_is_second_order_in_mean_and_variance():
    gamma = 1e4
    model = mf.models.linear_ou()
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    start, spread = point.v + 30 * width, 4 * width
    t_final = 1.0 / (gamma * point.slope.min())
    times = np.array([0.0, 0.5, 1.0]) * t_final
    mean, var = _exact(model, gamma, start, spread**2, times)
    steps = np.array([80, 160, 320, 640])  # (coarser, a third-order part of the variance shows)
    mean_err, var_err = [], []
    for n in steps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (coarse steps lag the layer)
            sol = solve_rescaled(model, gamma=gamma, t_final=t_final, save_at=times, cells=100,
                                 dt=t_final / n,
                                 initial=[Gaussian(c, s) for c, s in zip(start, spread,
                                                                          strict=True)])
        assert sol.info["steps"] == n
        assert sol.info["positivity_fallbacks"] == 0
        mean_err.append(np.max(np.abs(sol.mean - mean) / width))
        var_err.append(np.max(np.abs(sol.var / var - 1)))
        np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    # the windows moved: by 15+ concentration widths, and contracted by a factor 2+
    assert np.all(np.abs(sol.center[-1] - sol.center[0]) > 15 * width)
    assert np.all(sol.y_edges[-1, :, -1] < 0.5 * sol.y_edges[0, :, -1])
    mean_order = -np.polyfit(np.log(steps), np.log(mean_err), 1)[0]
    var_order = -np.polyfit(np.log(steps), np.log(var_err), 1)[0]
    # measured: 2.00 (mean), 2.27 (variance); errors at n = 640: 3.4e-5 widths, 4.5e-7
    assert 1.7 <= mean_order <= 2.3, (mean_order, mean_err)
    assert 1.7 <= var_order <= 2.3, (var_order, var_err)
    assert mean_err[-1] < 1e-4
    assert var_err[-1] < 2e-6
