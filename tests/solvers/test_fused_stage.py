"""The compiled BDF2 stage (right-hand side, Newton and step tail in one call) is the three calls.

:func:`solvers.kernels_numba_fused.bdf2_stage` must give the steps of
:func:`solvers.stepping.take_step` without it bit for bit, and its numpy twin (the same
sequence with the numpy kernel and the Python Newton) to round-off.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import meanfield as mf
from meanfield.numeric import numeric
from solvers.implicit import StageProblem
from solvers.kernels import numba_available, stage_kernel
from solvers.limits import balance_points
from solvers.rescaled.frame import Frame, ZoomGrid
from solvers.rescaled.stage import exact_problem
from solvers.stepping import initial_state, take_step

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not installed")


def _problem(kernel_name: str, gamma: float, centred: bool) -> tuple[StageProblem, np.ndarray]:
    model = mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                               g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                               sigma=(0.8, 0.6, 0.7))
    nm = numeric(model)
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    grid = ZoomGrid.uniform(60)
    frame = Frame.at_rest(0.0, np.asarray(point.v), width, 10.0, model.domain)
    stage = exact_problem(nm, gamma, frame, grid, stage_kernel(kernel_name)[1])
    problem = StageProblem(scale=stage.scale, widths=stage.widths, weights=stage.weights,
                           coupling=stage.coupling, kernel=stage.kernel, centred=centred)
    xs = frame.x(grid.centres)
    rho = np.exp(-0.5 * ((xs - (np.asarray(point.v) + 2 * width)[:, None])
                         / (1.5 * width[:, None])) ** 2)
    return problem, rho / (rho @ grid.widths)[:, None]


def _two_steps(problem: StageProblem, rho: np.ndarray, h: float):
    state = initial_state(problem, rho, 0.0)
    first = take_step(problem, state, h, "bdf2", rtol=1e-6, atol=1e-10)  # backward Euler
    return take_step(problem, first.state, 1.5 * h, "bdf2", rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize(("gamma", "centred"), [(1e2, False), (1e8, True), (1e12, True)])
def test_fused_bdf2_stage_is_the_three_calls_bit_for_bit(gamma, centred):
    problem, rho = _problem("numba", gamma, centred)
    assert problem.kernel.bdf2_stage is not None
    plain = dataclasses.replace(problem, kernel=dataclasses.replace(problem.kernel,
                                                                    bdf2_stage=None),
                                workspace={})
    h = 0.3 / gamma
    fused, three = _two_steps(problem, rho, h), _two_steps(plain, rho, h)
    assert fused.order == 2
    assert fused.newton == three.newton
    assert fused.error == three.error
    np.testing.assert_array_equal(fused.state.rho, three.state.rho)
    np.testing.assert_array_equal(fused.state.m, three.state.m)
    np.testing.assert_array_equal(fused.state.f, three.state.f)
    np.testing.assert_array_equal(fused.state.m_slope, three.state.m_slope)


def test_fused_bdf2_stage_agrees_with_its_numpy_twin():
    fast, rho = _problem("numba", 1e4, True)
    slow, _ = _problem("numpy", 1e4, True)
    h = 0.3e-4
    a, b = _two_steps(fast, rho, h), _two_steps(slow, rho, h)
    assert a.newton == b.newton
    np.testing.assert_allclose(a.state.m, b.state.m, rtol=1e-12)
    np.testing.assert_allclose(a.state.rho, b.state.rho, rtol=1e-8,
                               atol=1e-12 * np.abs(b.state.rho).max())
    assert a.error == pytest.approx(b.error, rel=1e-6)
