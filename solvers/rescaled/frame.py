r"""The moving frame of the zoomed solvers: a window that follows the profile (``docs/mathematics.md §6``).

Each population ``p`` lives on its own window ``x = c_p(t) + β_p(t) z``, ``z ∈ [−1, 1]``, cut into
the same M cells in ``z``. With ``q_p = β_p ρ_p`` (the density in ``z``, unit mass
``Σ_i h_i q_{p,i}``), the mean-field PDE ``∂_t ρ = ∂_x(D∂_xρ + ∂_xU ρ)`` becomes, exactly
(arbitrary-Lagrangian–Eulerian form),

.. math::
    \partial_t q = \partial_z\Big[\frac{1}{\beta^2}\big(D\,\partial_z q
        + \beta\,(\partial_x U + c' + \beta' z)\,q\big)\Big],

a Fokker–Planck equation in ``z`` whose potential is shifted by the frame velocity
``c' + β' z``. The window is placed on the density itself: centred on its mean and
``window`` standard deviations wide on each side (kept inside the domain), moved for the new time
level with the velocity of the profile's mean and spread (:func:`follow`). It therefore
follows the profile through the initial layer, where the
profile travels many concentration widths in a time O(1/γ), and the contraction of a wide
profile: the flow relative to the frame is the small relaxation of the shape, so the cell
Péclet number stays O(1) on the default grid. The frame moves on a continuously differentiable
trajectory whose exact velocity enters the stage, so the scheme keeps its order; mass is
conserved to round-off because the cells in ``z`` never change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(4)


@dataclass(frozen=True, eq=False)
class ZoomGrid:
    """The fixed cells in ``z ∈ [−1, 1]``: ``edges`` (M+1), ``widths`` (M), ``centres`` (M),
    ``gaps`` (M−1) between centres, the Gauss–Legendre ``nodes`` (M−1, 4) of every gap with
    ``quadrature`` weights (M−1, 4) (``∫ g dz ≈ Σ quadrature·g(nodes)``) and ``squares`` (M−1)
    ``(z_{i+1}² − z_i²)/2``."""

    edges: np.ndarray
    widths: np.ndarray
    centres: np.ndarray
    gaps: np.ndarray
    nodes: np.ndarray
    quadrature: np.ndarray
    squares: np.ndarray

    @classmethod
    def uniform(cls, cells: int) -> ZoomGrid:
        edges = np.linspace(-1.0, 1.0, cells + 1)
        centres = (edges[1:] + edges[:-1]) / 2
        gaps = np.diff(centres)
        mid = (centres[1:] + centres[:-1]) / 2
        return cls(edges=edges, widths=np.diff(edges), centres=centres, gaps=gaps,
                   nodes=mid[:, None] + (gaps / 2)[:, None] * _NODES,
                   quadrature=(gaps / 2)[:, None] * _WEIGHTS,
                   squares=(centres[1:] ** 2 - centres[:-1] ** 2) / 2)


@dataclass(frozen=True, eq=False)
class Frame:
    """The windows ``x = centre_p + half_p z`` at time ``t``, their exact velocities
    ``centre'``, ``half'`` (used in the stage) and the time of the level before (``t_prev``)."""

    t: float
    centre: np.ndarray
    half: np.ndarray
    velocity: np.ndarray
    rate: np.ndarray
    t_prev: float | None = None

    @classmethod
    def at_rest(cls, t: float, mean: np.ndarray, std: np.ndarray, window: float,
                domain: tuple[float, float]) -> Frame:
        """The first window: ``mean ± window·std`` (clipped to the domain), not moving."""
        centre, half = placement(mean, std, window, domain)
        zero = np.zeros_like(centre)
        return cls(t=float(t), centre=centre, half=half, velocity=zero, rate=zero)

    def x(self, z: np.ndarray) -> np.ndarray:
        """The positions ``centre_p + half_p z`` (P, …) of the points ``z``."""
        shape = (-1,) + (1,) * np.ndim(z)
        return self.centre.reshape(shape) + self.half.reshape(shape) * z


def placement(mean: np.ndarray, std: np.ndarray, window: float, domain: tuple[float, float]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width of ``mean ± window·std`` kept inside the domain ``[a, b]``.

    The ends are the smooth minimum ``b − s·log(1 + e^{(b − mean − window·std)/s})`` (and its
    mirror at ``a``), ``s = window·std/10``: equal to ``mean ± window·std`` away from the walls,
    to the wall beyond it, and smooth in between, so that a window leaving a wall (a wide
    profile contracting) does not jerk the frame.
    """
    a, b = domain
    reach = window * std
    s = reach / 10
    hi = b - s * np.logaddexp(0.0, (b - mean - reach) / s)
    lo = a + s * np.logaddexp(0.0, (mean - reach - a) / s)
    return (lo + hi) / 2, (hi - lo) / 2


def target_rates(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, window: float,
                 domain: tuple[float, float]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The placement ``(C, H)`` of the profile ``q`` and its rates ``(C', (log H)')`` from
    ``f = ∂_t q`` (in ``frame``), and the time ``τ`` in which the profile moves or deforms by one
    standard deviation (``mean' = c' + β'z̄ + β Σ z h f``, ``std' = β' s_z + β Σ(z − z̄)² h f/(2s_z)``)."""
    z, w = grid.centres, grid.widths
    mass = q @ w
    zbar = (q @ (z * w)) / mass
    std_z = np.sqrt(np.maximum(np.einsum("pi,pi,i->p", q, (z[None] - zbar[:, None]) ** 2, w)
                               / mass, 1e-300))
    mean, std = frame.centre + frame.half * zbar, frame.half * std_z
    mean_rate = frame.velocity + frame.rate * zbar + frame.half * (f @ (z * w)) / mass
    var_rate = np.einsum("pi,pi,i->p", f, (z[None] - zbar[:, None]) ** 2, w) / mass
    std_rate = frame.rate * std_z + frame.half * var_rate / (2 * std_z)
    speed = np.maximum(np.abs(mean_rate), window * np.abs(std_rate))
    tau = 1e-6 * std / np.maximum(speed, 1e-300)
    centre, half = placement(mean, std, window, domain)
    ahead, wider = placement(mean + tau * mean_rate, std + tau * std_rate, window, domain)
    return centre, half, (ahead - centre) / tau, np.log(wider / half) / tau, 1e6 * tau


def follow(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, t_new: float, *,
           window: float, domain: tuple[float, float]) -> Frame:
    r"""The frame at ``t_new = t_n + h`` for the step from ``frame`` (densities ``q``, their rate
    ``f = ∂_t q`` at ``t_n``; ``h₁ = t_n − t_{n−1}``, or ``h`` at the start).

    The window aims at the velocity of the placement ``C, H`` of the profile
    (:func:`target_rates`) plus a catch-up of the lag over the time ``τ`` the profile needs to
    move by one standard deviation: ``w = C' + (C − c_n)/τ`` (and ``(log H)' +
    (log H − log β_n)/τ`` for ``log β``). The frame moves on a parabola that leaves ``t_n`` with
    its velocity ``v_n`` and turns towards ``w`` (linear velocity ramp, gain
    ``g = h/(h + h₁)``): ``v(t_n + h) = v_n + g(w − v_n)``, ``c(t_n + h) = c_n + h(v_n + v)/2``.
    Its trajectory is continuously differentiable (a rejected step retried shorter sees no jump
    of the frame velocity) and the stage uses its exact velocity. The window never leaves the
    domain (an end held at a wall does not move).
    """
    h = t_new - frame.t
    h1 = frame.t - frame.t_prev if frame.t_prev is not None else h
    target, spread, move, grow, tau = target_rates(frame, grid, q, f, window, domain)
    gain = h / (h + h1)
    aim = move + (target - frame.centre) / tau
    velocity = frame.velocity + gain * (aim - frame.velocity)
    centre = frame.centre + h * (frame.velocity + velocity) / 2
    growth = frame.rate / frame.half
    new_growth = growth + gain * (grow + np.log(spread / frame.half) / tau - growth)
    half = frame.half * np.exp(h * (growth + new_growth) / 2)
    rate = half * new_growth
    a, b = domain
    lo, hi = centre - half, centre + half
    lo_speed = np.where(lo < a, 0.0, velocity - rate)
    hi_speed = np.where(hi > b, 0.0, velocity + rate)
    lo, hi = np.maximum(lo, a), np.minimum(hi, b)
    return Frame(t=float(t_new), centre=(lo + hi) / 2, half=(hi - lo) / 2,
                 velocity=(lo_speed + hi_speed) / 2, rate=(hi_speed - lo_speed) / 2,
                 t_prev=frame.t)


def remap(edges: np.ndarray, q: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Conservative, positive remap of cell averages: clamped cubic spline of the cumulative mass.

    Linear in ``q`` and fourth order on smooth profiles; the tiny negative values it can create
    far in the tails are set to zero. Mass outside the new window goes into its end cells, so
    the total is kept exactly. Used to put a solution on other cells (e.g. a common grid).
    """
    from scipy.interpolate import CubicSpline

    widths = np.diff(edges)
    cumulative = np.concatenate([[0.0], np.cumsum(q * widths)])
    total = cumulative[-1]
    inside = np.clip(new_edges, edges[0], edges[-1])
    spline = CubicSpline(edges, cumulative, bc_type=((1, float(q[0])), (1, float(q[-1]))))
    values = spline(inside)
    values[0], values[-1] = 0.0, total
    out = np.maximum(np.diff(values), 0.0)
    return out * (total / out.sum()) / np.diff(new_edges)
