"""Readouts of the zoomed result assembled at once agree with their per-level definitions."""

from __future__ import annotations

import warnings

import numpy as np

import meanfield as mf
from meanfield.numeric import all_field_functions, field_functions, numeric
from solvers.rescaled import solve_rescaled
from solvers.rescaled.frame import ZoomGrid
from solvers.rescaled.solver import balance_residuals


def _model() -> mf.Model:
    return mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                              g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                              sigma=(0.8, 0.6, 0.7))


def test_balance_residuals_match_the_field_summed_level_by_level():
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_rescaled(model, gamma=1e4, t_final=0.5, cells=40, save_at=[0.1, 0.3])
    nm = numeric(model)
    grid = ZoomGrid.uniform(40)
    half = (sol.y_edges[..., -1] - sol.y_edges[..., 0]) * sol.eps / 2  # window half-widths
    q = sol.rho * half[..., None]  # the densities in z
    expected = np.empty((sol.t.size, nm.P))
    for k in range(sol.t.size):
        for p in range(nm.P):
            xs = sol.center[k, p] + half[k, p] * grid.centres
            expected[k, p] = (np.abs(nm.field(p, xs, sol.m[k], sol.t[k])) * q[k, p]) @ grid.widths
    got = balance_residuals(nm, grid, sol.t, sol.center, half, sol.m, q)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sol.balance_residual, expected, rtol=1e-10, atol=1e-14)


def test_field_functions_of_every_population_are_those_of_each():
    model = _model()
    points, m = np.linspace(-1.0, 1.0, 7), np.array([0.3, 0.6, 0.7])
    for p, (h, dh) in enumerate(all_field_functions(model)):
        one, slope = field_functions(model, p)
        np.testing.assert_allclose(h(points, *m), one(points, *m), rtol=1e-15)
        np.testing.assert_allclose(dh(points, *m), slope(points, *m), rtol=1e-15)
        np.testing.assert_allclose(numeric(model).field_functions(p)[0](points, *m),
                                   one(points, *m), rtol=1e-15)
