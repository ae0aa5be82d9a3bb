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
``window`` standard deviations wide on each side (kept inside the domain), placed for the new
time level on the profile's mean and spread extrapolated from the solution (:func:`follow`). It
therefore follows the profile through the initial layer, where the profile travels many
concentration widths in a time O(1/γ), and the contraction of a wide profile: the flow relative
to the frame is the small relaxation of the shape, so the cell Péclet number stays O(1) on the
default grid. The frame velocity entering the stage is the time scheme's own difference of the
frame points (the derivative of the curve the scheme implies through them), so the moving-frame
potential is consistent with how the levels are placed in time and BDF2 keeps order 2; mass is
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
    """The windows ``x = centre_p + half_p z`` at time ``t`` and the velocities ``centre'``,
    ``half'`` used in the stage; ``t_prev``, ``centre_prev``, ``half_prev`` are the frame of the
    level before and ``mean_prev``, ``log_std_prev`` the statistics of the profile there (the
    history of :func:`follow`; ``None`` at the start)."""

    t: float
    centre: np.ndarray
    half: np.ndarray
    velocity: np.ndarray
    rate: np.ndarray
    t_prev: float | None = None
    centre_prev: np.ndarray | None = None
    half_prev: np.ndarray | None = None
    mean_prev: np.ndarray | None = None
    log_std_prev: np.ndarray | None = None

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


def statistics(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and their rates ``(μ, σ, μ', σ')`` of the profiles ``q`` (in
    ``frame``) from ``f = ∂_t q``: ``μ' = c' + β'z̄ + β Σ z h f``,
    ``σ' = β' s_z + β Σ(z − z̄)² h f/(2s_z)`` (``z̄``, ``s_z`` the mean and spread in ``z``)."""
    z, w = grid.centres, grid.widths
    mass = q @ w
    zbar = (q @ (z * w)) / mass
    centred = (z[None] - zbar[:, None]) ** 2
    std_z = np.sqrt(np.maximum(np.einsum("pi,pi,i->p", q, centred, w) / mass, 1e-300))
    mean, std = frame.centre + frame.half * zbar, frame.half * std_z
    mean_rate = frame.velocity + frame.rate * zbar + frame.half * (f @ (z * w)) / mass
    var_rate = np.einsum("pi,pi,i->p", f, centred, w) / mass
    std_rate = frame.rate * std_z + frame.half * var_rate / (2 * std_z)
    return mean, std, mean_rate, std_rate


def placed(mean: np.ndarray, std: np.ndarray, mean_rate: np.ndarray, std_rate: np.ndarray,
           window: float, domain: tuple[float, float]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The :func:`placement` ``C ± H`` of ``mean ± window·std`` and its rates ``(C', H')`` along
    ``(mean', std')`` (a centred difference over ``10⁻⁶`` of the time to move one ``std``)."""
    speed = np.maximum(np.abs(mean_rate), window * np.abs(std_rate))
    tau = 1e-6 * std / np.maximum(speed, 1e-300)
    centre, half = placement(mean, std, window, domain)
    ahead, wider = placement(mean + tau * mean_rate, std + tau * std_rate, window, domain)
    behind, narrower = placement(mean - tau * mean_rate, std - tau * std_rate, window, domain)
    return centre, half, (ahead - behind) / (2 * tau), (wider - narrower) / (2 * tau)


def placement_rates(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, window: float,
                    domain: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The rates ``(C', H')`` of the placement ``C ± H`` of the profile ``q`` (:func:`placed`
    at its :func:`statistics`)."""
    return placed(*statistics(frame, grid, q, f), window, domain)[2:]


def follow(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, t_new: float, *,
           window: float, domain: tuple[float, float], scheme: str = "bdf2") -> Frame:
    r"""The frame at ``t_new = t_n + h`` for the step from ``frame`` (profiles ``q``, their rate
    ``f = ∂_t q`` at ``t_n``; ``h₁ = t_n − t_{n−1}``).

    Target: the :func:`placement` ``C ± H`` of the profile's statistics predicted for
    ``t_new``, the mean ``μ`` and ``log σ`` on the quadratic through their values at
    ``t_{n−1}`` and ``t_n`` with the slope at ``t_n`` (``u + hu' + (u_{n−1} − u + h₁u')(h/h₁)²``,
    the tangent on the first step; a change beyond ``window·σ/2`` or a factor ``e`` is
    saturated), plus the offset ``c_n − C_n`` of the frame from the placement of the profile at
    ``t_n`` carried with the factor ``h₁/(h + h₁)`` (so it decays over a few steps and the
    target tends to ``c_n`` as ``h → 0``). The new frame point is the frame's own extrapolation
    ``Q`` (the quadratic through ``c_{n−1}``, ``c_n`` with the slope ``c'_n``) moved the
    fraction ``ω = min(1, (h/h₁)²)`` towards the target (``log β`` likewise): on equal or
    growing steps the frame is the target; a retried shorter step moves it off its own path
    only by ``O(h³)``, which the error estimate of the densities at fixed ``z`` would
    otherwise see as an error of the step.

    The velocity is the derivative at ``t_new`` of the curve through the frame points that the
    scheme implies, the same difference the scheme applies to the densities:
    ``(c_{n+1} − c_n)/h`` for backward Euler and, for BDF2,
    ``c' = c_{n+1}/κ − (h + h₁)/(h h₁) c_n + h/(h₁(h + h₁)) c_{n−1}``,
    ``κ = h(h + h₁)/(2h + h₁)`` (likewise ``β'``): the moving-frame potential then matches how
    the levels are placed in time, and the scheme keeps its order.
    """
    h = t_new - frame.t
    mean, std, mean_rate, std_rate = statistics(frame, grid, q, f)
    log_std, log_rate = np.log(std), std_rate / std
    mean_new, log_new = mean + h * mean_rate, log_std + h * log_rate
    log_half, log_half_rate = np.log(frame.half), frame.rate / frame.half
    own_centre, own_log = frame.centre + h * frame.velocity, log_half + h * log_half_rate
    history = frame.t_prev is not None and frame.mean_prev is not None
    h1 = frame.t - frame.t_prev if history else h
    if history:
        bend = (h / h1) ** 2
        mean_new = mean_new + bend * (frame.mean_prev - mean + h1 * mean_rate)
        log_new = log_new + bend * (frame.log_std_prev - log_std + h1 * log_rate)
        own_centre = own_centre + bend * (frame.centre_prev - frame.centre
                                          + h1 * frame.velocity)
        own_log = own_log + bend * (np.log(frame.half_prev) - log_half + h1 * log_half_rate)
    mean_new = mean + _saturate(mean_new - mean, window * std / 2)
    log_new = log_std + _saturate(log_new - log_std, 1.0)
    here, spread = placement(mean, std, window, domain)
    target, wide = placement(mean_new, np.exp(log_new), window, domain)
    keep = h1 / (h + h1) if history else 1.0
    target = target + keep * (frame.centre - here)
    wide = wide * np.exp(keep * np.log(frame.half / spread))
    weight = min(1.0, (h / h1) ** 2)
    centre = own_centre + weight * (target - own_centre)
    half = np.exp(own_log + weight * (np.log(wide) - own_log))
    a, b = domain
    lo, hi = np.maximum(centre - half, a), np.minimum(centre + half, b)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    if history and scheme == "bdf2" and frame.centre_prev is not None:
        a0, a1, a2 = (2 * h + h1) / (h * (h + h1)), (h + h1) / (h * h1), h / (h1 * (h + h1))
        velocity = a0 * centre - a1 * frame.centre + a2 * frame.centre_prev
        rate = a0 * half - a1 * frame.half + a2 * frame.half_prev
    else:
        velocity, rate = (centre - frame.centre) / h, (half - frame.half) / h
    return Frame(t=float(t_new), centre=centre, half=half, velocity=velocity, rate=rate,
                 t_prev=frame.t, centre_prev=frame.centre, half_prev=frame.half,
                 mean_prev=mean, log_std_prev=log_std)


def _saturate(change: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
    """``d/(1 + |d/L|³)^{1/3}``: ``d − O(d⁴/L³)`` for small changes, at most ``L`` in size (a
    prediction far beyond the step's reach, e.g. from a discontinuous start, is not trusted)."""
    return change / np.cbrt(1.0 + np.abs(change / limit) ** 3)


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
