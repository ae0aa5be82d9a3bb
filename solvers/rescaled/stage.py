r"""The stage problem of the zoomed solvers: the moving frame as a :class:`~solvers.implicit.StageProblem`.

In the frame ``x = c + βz`` (:mod:`solvers.rescaled.frame`) the Scharfetter–Gummel fluxes between
the centres ``z_i`` use the scaled potential differences (``docs/mathematics.md §10``)

.. math::
    \delta_{p,i} = \frac{1}{D_p}\Big[\int_{x_i}^{x_{i+1}} \partial_x U_p\,dx
        + \beta_p c_p'\,(z_{i+1} - z_i) + \beta_p\beta_p'\,\frac{z_{i+1}^2 - z_i^2}{2}\Big],
    \qquad \partial_x U_p = -f_p + \gamma\sum_j g_{pj}\Phi_{pj}(x)\,m_j,

with the integrals by Simpson's rule on every gap (centres and gap midpoints; never differences
of large antiderivatives; :mod:`solvers.rescaled.kernels`), the diffusion ``D_p/β_p²``
(``scale = D_p/(β_p²Δz)``) and the readout
``w_{p,i} = Ψ_p(x_{p,i}) h_i``. The frame of the new level is known before the stage (it is
predicted from the profile), so for the exact equation ``δ`` is affine in the unknown moments
and the stage is the native one (:class:`~solvers.implicit.AffineCoupling`, solved by the
compiled Newton kernel when numba is present). A drift given by a callable (a truncated
expansion about the balance point, :func:`solvers.rescaled.solve_zoomed`) gives a
:class:`CallableCoupling`, nonlinear in ``m``, solved by the generic Newton of
:mod:`solvers.implicit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meanfield.numeric import NumericModel
from solvers.implicit import AffineCoupling, StageProblem
from solvers.kernels import StageKernel
from solvers.rescaled.frame import Frame, ZoomGrid, carried_deviation
from solvers.rescaled.kernels import assemble_numpy, carried_numpy

MOMENT_RTOL = 1e-14
"""Newton tolerance of the moments: below the native 1e-12, because on a window much wider than
the concentration width (a wide start at large γ) the drift is γ·β times the moments and their
rounding would show as noise in the error control."""


@dataclass(frozen=True, eq=False)
class FrameStage(StageProblem):
    """A stage on a moving frame: ``grid`` is the zoom grid, and :meth:`deviation` is the hook
    of :mod:`solvers.stepping` that measures the step against its predictor carried onto the
    new frame (:func:`solvers.rescaled.frame.carried_deviation`)."""

    grid: ZoomGrid | None = None
    carry: Callable[..., np.ndarray] = carried_numpy

    def deviation(self, state: Any, h: float, rho: np.ndarray, bdf2: bool) -> np.ndarray:
        return carried_deviation(state.frame, self.frame, self.grid, state.rho, state.f,
                                 state.rho_prev if bdf2 else None, h, rho, self.carry)


def frame_terms(frame: Frame, grid: ZoomGrid) -> np.ndarray:
    """``β c' Δz + β β' (z_{i+1}² − z_i²)/2`` (P, M−1): the frame's share of the potential."""
    return (frame.half * frame.velocity)[:, None] * grid.gaps[None] + (
        frame.half * frame.rate)[:, None] * grid.squares[None]


def readout_weights(nm: NumericModel, frame: Frame, grid: ZoomGrid) -> np.ndarray:
    """``w_{p,i} = Ψ_p(x_{p,i}) h_i`` (P, M) at the cell centres of the frame."""
    xs = frame.x(grid.centres)
    return np.array([nm.psi[p](xs[p]) for p in range(nm.P)]) * grid.widths


def exact_problem(nm: NumericModel, gamma: float, frame: Frame, grid: ZoomGrid,
                  kernel: StageKernel, assemble: Callable[..., Any] = assemble_numpy,
                  carry: Callable[..., np.ndarray] = carried_numpy,
                  coupling: np.ndarray | None = None,
                  workspace: dict[str, Any] | None = None) -> StageProblem:
    """The stage of the exact mean-field PDE in ``frame`` (``δ`` affine in the moments).

    The model is evaluated once, for every population at once, on the ``samples`` of the
    windows (:meth:`meanfield.numeric.NumericModel.table`); ``assemble``
    (:func:`solvers.rescaled.kernels.assemble_numpy` or its numba twin) builds the rest.
    ``coupling`` is ``γ g`` (computed when not given); ``workspace`` the kernel's scratch dict,
    shared by the stages of one run (they are solved one after another; a new one if not given).
    """
    points = frame.half[:, None] * grid.samples
    points += frame.centre[:, None]  # c + βz (one temporary less)
    values = nm.table(points)
    base, slopes, scale, weights = assemble(
        values, frame.half, frame.velocity, frame.rate, grid.gaps, grid.squares, grid.widths,
        nm.D, gamma * nm.g if coupling is None else coupling)
    coupling = AffineCoupling(base=base, slopes=slopes, external=nm.external_m, unknowns=nm.P)
    return FrameStage(scale=scale, widths=grid.widths, weights=weights, coupling=coupling,
                      kernel=kernel, frame=frame, moment_rtol=MOMENT_RTOL, grid=grid,
                      carry=carry, centred=True, workspace={} if workspace is None else workspace)


Velocity = Callable[[int, np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]
Balance = Callable[[np.ndarray, float, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class CallableCoupling:
    r"""``δ(m, t)`` for a drift ``b_p(y; c, m, t)`` given in the balance frame ``x = c(m) + εy``.

    ``∂_xU_p = −ε b_p((x − c_p)/ε; c, m, t)`` with ``c = balance(m, t, guess)`` the balance
    points (the last ones found are the next guess); ``∂δ/∂m`` by one-sided differences.
    """

    velocity: Velocity
    balance: Balance
    eps: float
    D: np.ndarray
    frame: Frame
    grid: ZoomGrid
    guess: dict[str, np.ndarray] = field(default_factory=dict)

    def differences(self, m: np.ndarray, time: float) -> np.ndarray:
        m = np.asarray(m, dtype=float)
        centre = self.balance(m, time, self.guess.get("c", self.frame.centre))
        self.guess["c"] = centre
        points = self.frame.x(self.grid.samples)
        grad = np.empty_like(points)
        for p in range(self.D.size):
            grad[p] = -self.eps * np.asarray(self.velocity(
                p, (points[p] - centre[p]) / self.eps, centre, m, time), dtype=float)
        potential = self.grid.simpson(grad) * self.frame.half[:, None]
        return (potential + frame_terms(self.frame, self.grid)) / self.D[:, None]

    def derivative(self, m: np.ndarray, time: float) -> np.ndarray:
        m = np.asarray(m, dtype=float)
        base = self.differences(m, time)
        out = np.empty((m.size, m.size, base.shape[1]))
        for j in range(m.size):
            eta = 1e-7 * max(1.0, abs(float(m[j])))
            bumped = m.copy()
            bumped[j] += eta
            out[:, j] = (self.differences(bumped, time) - base) / eta
        self.differences(m, time)  # the guess back at m
        return out


def callable_problem(nm: NumericModel, velocity: Velocity, balance: Balance, eps: float,
                     frame: Frame, grid: ZoomGrid, kernel: StageKernel,
                     guess: dict[str, Any], carry: Callable[..., np.ndarray] = carried_numpy
                     ) -> StageProblem:
    """The stage of a zoomed equation with the drift given by ``velocity`` (see above)."""
    coupling = CallableCoupling(velocity=velocity, balance=balance, eps=eps, D=nm.D,
                                frame=frame, grid=grid, guess=guess)
    return FrameStage(scale=nm.D[:, None] / (frame.half[:, None] ** 2 * grid.gaps[None]),
                      widths=grid.widths, weights=readout_weights(nm, frame, grid),
                      coupling=coupling, kernel=kernel, frame=frame, moment_rtol=MOMENT_RTOL,
                      grid=grid, carry=carry, centred=True)
