"""The stage Jacobian from centred readout weights: exact where the plain adjoint cancels.

On a zoomed window 1e-5 wide (γ = 1e12) the readout weights ``Ψ h`` are proportional to ``h`` to
six digits, and the adjoint Jacobian of ``w`` loses them; the one of ``w − c h`` (the same in
exact arithmetic, the stage conserving mass) matches central differences of the readout.
"""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
from meanfield.numeric import numeric
from solvers.implicit import AffineCoupling, newton_stage
from solvers.kernels import centred_weights_numpy, numba_available, stage_kernel
from solvers.limits import balance_points
from solvers.rescaled.frame import Frame, ZoomGrid
from solvers.rescaled.stage import exact_problem

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")
GAMMA, KAPPA = 1e12, 2.34375e-3


def _model() -> mf.Model:
    return mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                              g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                              sigma=(0.8, 0.6, 0.7))


def _stage(kernel_name: str):
    """A stage on windows ±10 widths about the balance point, the profiles 1 width off it."""
    model = _model()
    nm = numeric(model)
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (GAMMA * point.slope))
    grid = ZoomGrid.uniform(200)
    frame = Frame.at_rest(0.0, np.asarray(point.v), width, 10.0, model.domain)
    _, kernel = stage_kernel(kernel_name)
    problem = exact_problem(nm, GAMMA, frame, grid, kernel)
    xs = frame.x(grid.centres)
    rhs = np.exp(-0.5 * ((xs - (np.asarray(point.v) + width)[:, None]) / width[:, None]) ** 2)
    rhs /= (rhs @ grid.widths)[:, None]
    return problem, rhs, problem.readout(rhs)


def _readout(problem, rhs, m):
    delta = problem.coupling.differences(m, 0.0)
    return problem.kernel.solve(delta, problem.scale, problem.widths, problem.weights, KAPPA, rhs,
                                {})


@pytest.mark.parametrize("kernel_name", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_centred_adjoint_matches_central_differences_at_gamma_1e12(kernel_name):
    problem, rhs, m = _stage(kernel_name)
    rho, _, _, factors = _readout(problem, rhs, m)
    slopes = problem.coupling.derivative(m, 0.0)
    centred = centred_weights_numpy(problem.weights, problem.widths, rhs, m)
    jac = problem.kernel.jacobian(factors, slopes, problem.scale, problem.widths, centred,
                                  KAPPA, rho)
    plain = problem.kernel.jacobian(factors, slopes, problem.scale, problem.widths,
                                    problem.weights, KAPPA, rho)
    differences = np.empty((3, 3))
    for j in range(3):
        bump = np.zeros(3)
        bump[j] = 1e-8 * m[j]
        up, down = _readout(problem, rhs, m + bump)[1], _readout(problem, rhs, m - bump)[1]
        differences[:, j] = (up - down) / (2 * bump[j])
    assert np.max(np.abs(jac - differences)) < 1e-5 * np.max(np.abs(differences))
    assert np.max(np.abs(plain - differences)) > 1e-3 * np.max(np.abs(differences))


@needs_numba
def test_compiled_centred_newton_agrees_with_its_numpy_twin_and_converges_in_few_steps():
    from solvers.kernels_numba_newton import centred_weights

    problem, rhs, m = _stage("numba")
    twin, _, _ = _stage("numpy")
    np.testing.assert_allclose(centred_weights(problem.weights, problem.widths, rhs, m),
                               centred_weights_numpy(problem.weights, problem.widths, rhs, m),
                               rtol=0, atol=1e-15)
    guess = m * (1 + 1e-9)
    fast = newton_stage(problem, rhs, KAPPA, 0.0, guess, rtol=1e-14)
    slow = newton_stage(twin, rhs, KAPPA, 0.0, guess, rtol=1e-14)
    assert fast.converged
    assert slow.converged
    assert fast.iterations <= 4
    assert slow.iterations <= 4
    np.testing.assert_allclose(fast.m, slow.m, rtol=1e-13)
    # ρ moves ~1e6 times more than m here (the profile shifts by γβ·δm widths)
    np.testing.assert_allclose(fast.rho, slow.rho, rtol=1e-6, atol=1e-12 * fast.rho.max())
    assert isinstance(problem.coupling, AffineCoupling)
    assert problem.centred


def test_a_massless_row_is_left_unshifted():
    weights, widths = np.full((2, 4), 0.5), np.full(4, 0.25)
    rhs = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])  # masses 1 and 0
    out = centred_weights_numpy(weights, widths, rhs, np.array([2.0, 1.0]))
    np.testing.assert_allclose(out, [[0.0] * 4, [0.5] * 4], atol=1e-15)  # c = 2/1, then 0
