"""The fused kernels of the zoomed solvers: numba twins agree with numpy; Simpson gap integrals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import meanfield as mf
from meanfield.numeric import numeric
from solvers.kernels import numba_available
from solvers.limits import balance_points
from solvers.rescaled.frame import ZoomGrid
from solvers.rescaled.kernels import assemble_numpy, follow_numpy, moments_numpy

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")


def _inputs(rng, P=3, J=4, M=50):
    grid = ZoomGrid.uniform(M)
    values = rng.normal(size=(P, J + 2, 2 * M - 1))
    frame = (rng.normal(size=P), rng.uniform(0.1, 2, P), rng.normal(size=P), rng.normal(size=P))
    q = rng.uniform(0.1, 1, (P, M))
    f = rng.normal(size=(P, M))
    return grid, values, frame, q, f


@needs_numba
def test_numba_kernels_agree_with_the_numpy_twins(rng):
    from solvers.rescaled.kernels_numba import assemble, follow, moments

    grid, values, (centre, half, velocity, rate), q, f = _inputs(rng)
    D, coupling = rng.uniform(0.1, 1, 3), rng.normal(size=(3, 4)) * 1e6
    args = (values, half, velocity, rate, grid.gaps, grid.squares, grid.widths, D, coupling)
    for fast, slow in zip(assemble(*args), assemble_numpy(*args), strict=True):
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12 * np.abs(slow).max())
    np.testing.assert_allclose(moments(q, f, grid.centres, grid.widths),
                               moments_numpy(q, f, grid.centres, grid.widths), rtol=1e-12,
                               atol=1e-15)
    frame = np.array([centre, half, velocity, rate])
    previous = np.array([centre - 0.01, half * 1.01, centre + 0.1, np.log(half / 12),
                         velocity * 0.9, rate / half * 1.1,  # level n−1
                         centre - 0.03, half * 1.02, centre + 0.12, np.log(half / 11),
                         velocity * 0.8, rate / half * 1.2,  # level n−2
                         rng.normal(size=3) * 1e3, rng.normal(size=3) * 1e2,  # c‴, (log β)‴
                         np.full(3, -2.5e-3)])  # where they hold
    none = previous.copy()
    none[12:] = np.nan
    for history in (False, True):
        for bdf2 in (False, True):
            for h, h1, h2 in ((1e-3, 2e-3, 0.0), (3e-3, 1e-3, 0.0), (1e-3, 2e-3, 1.5e-3),
                              (3e-3, 1e-3, 2e-3)):
                for rows in (previous, none):
                    args = (q, f, grid.centres, grid.widths, frame, rows, h, h1, h2, history,
                            bdf2, 10.0, D, -3.0, 4.0)
                    np.testing.assert_allclose(follow(*args), follow_numpy(*args),
                                               rtol=1e-10, atol=1e-12)
    from solvers.rescaled.kernels import carried_numpy
    from solvers.rescaled.kernels_numba import carried

    q_new = q + 1e-3 * rng.normal(size=q.shape)
    new = np.array([centre + 1e-3, half * 1.01])
    from solvers.rescaled.kernels_numba import smearing
    from solvers.rescaled.smearing import rates

    delta = rng.normal(size=(3, q.shape[1] - 1)) * np.array([[1e-4], [3.0], [800.0]])
    slopes, m = rng.normal(size=(3, 2, q.shape[1] - 1)), np.array([0.3, -0.7])
    for args in ((delta, np.empty((3, 0, q.shape[1] - 1)), np.empty(0)), (delta, slopes, m)):
        np.testing.assert_allclose(
            smearing(q, *args, half, D, grid.centres, grid.widths),
            np.array(rates(q, *args, half, D, grid.centres, grid.widths)), rtol=1e-9,
            atol=1e-14)
    rows = previous[[0, 1, 6, 7]]
    for q_prev in (q * 1.01, np.empty((0, 0))):
        for h2 in (0.0, 2e-3):
            args = (q, f, q_prev, q_new, frame, rows, new, 1e-3, 1.25e-3, h2, grid.centres,
                    grid.widths)
            np.testing.assert_allclose(carried(*args), carried_numpy(*args), rtol=1e-10)


def test_simpson_gap_integrals_are_exact_for_the_cubic_drift_of_the_catalogue():
    # the chemical drift x − x³/3 and affine Φ: Simpson's rule on every gap is exact, so the
    # stage data equal the differences of the closed-form antiderivatives (to round-off)
    model = mf.models.chemical()
    nm = numeric(model)
    grid = ZoomGrid.uniform(40)
    centre, half = np.array([0.3, -0.7]), np.array([0.5, 1.2])
    values = nm.table(centre[:, None] + half[:, None] * grid.samples)
    zero = np.zeros(2)
    base, slopes, scale, weights = assemble_numpy(values, half, zero, zero, grid.gaps,
                                                  grid.squares, grid.widths, nm.D, nm.g)
    xs = centre[:, None] + half[:, None] * grid.centres
    for p in range(2):
        exact = -np.diff(nm.F[p](xs[p])) / nm.D[p]
        np.testing.assert_allclose(base[p], exact, rtol=1e-10, atol=1e-13)
        for j in range(nm.J):
            exact = nm.g[p, j] * np.diff(nm.G[p][j](xs[p])) / nm.D[p]
            np.testing.assert_allclose(slopes[p, j], exact, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(weights[p], nm.psi[p](xs[p]) * grid.widths, rtol=1e-14)
        np.testing.assert_allclose(scale[p], nm.D[p] / (half[p] ** 2 * grid.gaps), rtol=1e-14)


def test_carried_predictor_does_not_charge_an_offset_of_the_new_frame_to_the_step():
    """A density at rest in x on a frame moving along a straight line, with the new window put
    0.3 cells off the frame's extrapolation: at fixed z the predictor differs from the new level
    by the offset (≈ 0.3·Δz·‖∂_z q‖₁); carried onto the new frame it agrees 100 times better."""
    from solvers.rescaled.frame import Frame, carried_deviation

    grid = ZoomGrid.uniform(200)
    mean, std = 0.3, 0.05

    def sampled(centre: float, half: float) -> np.ndarray:
        x = centre + half * grid.centres
        return (half * np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi)))[None]

    half, velocity, h = 0.5, 0.2, 1e-3
    old = Frame(t=2 * h, centre=np.array([0.2 + 2 * h * velocity]), half=np.array([half]),
                velocity=np.array([velocity]), rate=np.array([0.0]), t_prev=h,
                centre_prev=np.array([0.2 + h * velocity]), half_prev=np.array([half]))
    q_prev, q = sampled(0.2 + h * velocity, half), sampled(0.2 + 2 * h * velocity, half)
    x = old.centre[0] + half * grid.centres
    f = q * velocity * (-(x - mean) / std**2)  # ∂_t q at fixed z: β ρ'(x) c'
    offset = 0.3 * grid.widths[0] * half
    new_centre = 0.2 + 3 * h * velocity + offset
    new = Frame(t=3 * h, centre=np.array([new_centre]), half=np.array([half * 1.001]),
                velocity=np.array([velocity]), rate=np.array([0.0]))
    q_new = sampled(new_centre, half * 1.001)
    predictor = q_prev + 2 * h * f  # the quadratic through q_prev, q with slope f, at 3h
    fixed = np.abs(q_new - predictor) @ grid.widths
    carried = carried_deviation(old, new, grid, q, f, q_prev, h, q_new)
    assert fixed[0] > 1e-3
    assert carried[0] < 1e-2 * fixed[0]
    first_order = carried_deviation(old, new, grid, q, f, None, h, q_new)
    assert first_order[0] < 1e-2 * fixed[0]


def test_the_numpy_twins_run_a_collapse_at_gamma_1e12_without_overflow(monkeypatch):
    """Without numba the numpy twins run the whole solver. Its first step, sized on the profile
    (which barely changes in z) while the frame contracts at the rate γ, extrapolated the window
    e^{-1000} narrow: a division by zero the error control rejected, with numpy's
    RuntimeWarnings printed to the user. The extrapolated width is now capped at an e-fold as the
    target's is; the same steps, no warning."""
    import solvers.rescaled.solver as solver_module
    from solvers.rescaled import Gaussian, solve_rescaled
    from solvers.rescaled.kernels import FRAME_NUMPY

    monkeypatch.setattr(solver_module, "frame_kernel", lambda name: FRAME_NUMPY)
    model = mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                               g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                               sigma=(0.8, 0.6, 0.7))
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (1e12 * point.slope))
    start = [Gaussian(v + 5 * w, 3 * w) for v, w in zip(point.v, width, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sol = solve_rescaled(model, gamma=1e12, t_final=5.0, save_at=(0.0, 5.0),
                             initial=start)
    np.testing.assert_allclose(sol.var[-1] / width**2, 1.0, rtol=1e-6)  # measured 4e-11
