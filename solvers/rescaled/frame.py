r"""The moving frame of the zoomed solvers: a window that follows the profile (``docs/mathematics.md §6``).

Each population ``p`` lives on its own window ``x = c_p(t) + β_p(t) z``, ``z ∈ [−1, 1]``, cut into
the same M cells in ``z``. With ``q_p = β_p ρ_p`` (the density in ``z``, unit mass
``Σ_i h_i q_{p,i}``), the mean-field PDE ``∂_t ρ = ∂_x(D∂_xρ + ∂_xU ρ)`` becomes, exactly
(arbitrary-Lagrangian–Eulerian form),

.. math::
    \partial_t q = \partial_z\Big[\frac{1}{\beta^2}\big(D\,\partial_z q
        + \beta\,(\partial_x U + c' + \beta' z)\,q\big)\Big],

a Fokker–Planck equation in ``z`` whose potential is shifted by the frame velocity
``c' + β' z``. The window is placed on the density itself: it starts ``window`` standard
deviations wide on each side of the mean (cut to the domain), and each new level keeps the
profile where it sits in its window (the same reaches, in standard deviations below and above
the mean) at the mean and spread extrapolated from the solution (:func:`follow`); cut windows
relax back to ``window`` standard deviations at the diffusive rate ``D/σ²``. The frame therefore
moves *affinely with the profile*: through the initial layer, where the profile travels many
concentration widths in a time O(1/γ), and through the contraction of a wide profile (even one
that starts against a wall of the domain) the flow relative to the frame is only the change of
the profile's shape. That matters: where the flow across the cells is fast (cell Péclet number
≫ 1) the Scharfetter–Gummel flux is upwind and smears the profile by about half a cell per
unit of relative displacement, so a frame that lets a wide profile slide across it (as a window
held at a wall does) costs percents of the variance on the default grid (the estimate of
:mod:`solvers.rescaled.smearing` watches it). The frame velocity entering the stage is the
time scheme's own difference of the frame points (the derivative of the curve the scheme
implies through them), so the moving-frame potential is consistent with how the levels are
placed in time and BDF2 keeps order 2; mass is conserved to round-off because the cells in
``z`` never change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from solvers.rescaled.kernels import (
    carried_numpy,
    follow_numpy,
    moments_numpy,
    placement_numpy,
)
from solvers.rescaled.paths import third_at

_NO_ROWS = np.empty((0, 0))
_FRAME_ROWS = np.array([0, 1, 6, 7])  # (c, β) one and two levels back, in ``Frame.history``


@dataclass(frozen=True, eq=False)
class ZoomGrid:
    """The fixed cells in ``z ∈ [−1, 1]``: ``edges`` (M+1), ``widths`` (M), ``centres`` (M),
    ``gaps`` (M−1) between centres, ``squares`` (M−1) ``(z_{i+1}² − z_i²)/2`` and the
    ``samples`` (2M−1) ``z_0, ẑ_0, z_1, …, z_{M−1}`` (centres and the midpoints of the gaps:
    the points of Simpson's rule on every gap, :mod:`solvers.rescaled.kernels`)."""

    edges: np.ndarray
    widths: np.ndarray
    centres: np.ndarray
    gaps: np.ndarray
    squares: np.ndarray
    samples: np.ndarray

    @classmethod
    def uniform(cls, cells: int) -> ZoomGrid:
        edges = np.linspace(-1.0, 1.0, cells + 1)
        centres = (edges[1:] + edges[:-1]) / 2
        samples = np.empty(2 * cells - 1)
        samples[0::2] = centres
        samples[1::2] = (centres[1:] + centres[:-1]) / 2
        return cls(edges=edges, widths=np.diff(edges), centres=centres, gaps=np.diff(centres),
                   squares=(centres[1:] ** 2 - centres[:-1] ** 2) / 2, samples=samples)

    def simpson(self, values: np.ndarray) -> np.ndarray:
        """``∫ g dz`` over every gap (…, M−1) from ``g`` at the ``samples`` (…, 2M−1)."""
        return (values[..., 0:-1:2] + 4 * values[..., 1::2] + values[..., 2::2]) * (
            self.gaps / 6)


@dataclass(frozen=True, eq=False)
class Frame:
    """The windows ``x = centre_p + half_p z`` at time ``t`` and the velocities ``centre'``,
    ``half'`` used in the stage; ``t_prev``, ``centre_prev``, ``half_prev`` are the frame of the
    level before, ``mean_prev``, ``log_std_prev`` the statistics of the profile there and
    ``rates_prev`` their rates ``(μ', (log σ)')`` (2, P); the ``*_prev2`` fields the same one
    level further back (the history of :func:`follow`; ``None`` until there is one);
    ``thirds`` the estimates ``(c‴, (log β)‴)`` (2, P) made for this level's velocity and
    ``third_time`` where they hold (:func:`solvers.rescaled.paths.third_at`). ``rows`` and
    ``history`` are the same data packed as the kernels take them (``(c, β, c', β')`` (4, P)
    and the ``previous`` rows of :func:`solvers.rescaled.kernels.follow_numpy` (15, P)), made
    once by :func:`follow` (``None``: packed on use)."""

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
    rates_prev: np.ndarray | None = None
    t_prev2: float | None = None
    centre_prev2: np.ndarray | None = None
    half_prev2: np.ndarray | None = None
    mean_prev2: np.ndarray | None = None
    log_std_prev2: np.ndarray | None = None
    rates_prev2: np.ndarray | None = None
    thirds: np.ndarray | None = None
    third_time: float | None = None
    rows: np.ndarray | None = None
    history: np.ndarray | None = None

    @classmethod
    def at_rest(cls, t: float, mean: np.ndarray, std: np.ndarray, window: float,
                domain: tuple[float, float]) -> Frame:
        """The first window: ``mean ± window·std`` (cut to the domain), not moving."""
        reach = np.full_like(mean, window)
        centre, half = placement(mean, std, reach, reach, domain)
        zero = np.zeros_like(centre)
        return cls(t=float(t), centre=centre, half=half, velocity=zero, rate=zero)

    def x(self, z: np.ndarray) -> np.ndarray:
        """The positions ``centre_p + half_p z`` (P, …) of the points ``z``."""
        shape = (-1,) + (1,) * np.ndim(z)
        return self.centre.reshape(shape) + self.half.reshape(shape) * z


def placement(mean: np.ndarray, std: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              domain: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width of the window ``[mean − lower·std, mean + upper·std]`` cut to the
    domain ``[a, b]``: the reaches ``lower``, ``upper`` (in standard deviations) are the
    profile's place in its window, kept from level to level (:func:`follow`)."""
    return placement_numpy(mean, std, lower, upper, *domain)


def statistics(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray,
               moments: Callable[..., np.ndarray] = moments_numpy
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and their rates ``(μ, σ, μ', σ')`` of the profiles ``q`` (in
    ``frame``) from ``f = ∂_t q``: ``μ' = c' + β'z̄ + β Σ z h f``,
    ``σ' = β' s_z + β Σ(z − z̄)² h f/(2s_z)`` (``z̄``, ``s_z`` the mean and spread in ``z``;
    the sums by ``moments``, :func:`solvers.rescaled.kernels.moments_numpy` or its twin)."""
    _, zbar, var_z, first_rate, var_rate = moments(q, f, grid.centres, grid.widths)
    std_z = np.sqrt(np.maximum(var_z, 1e-300))
    mean, std = frame.centre + frame.half * zbar, frame.half * std_z
    mean_rate = frame.velocity + frame.rate * zbar + frame.half * first_rate
    std_rate = frame.rate * std_z + frame.half * var_rate / (2 * std_z)
    return mean, std, mean_rate, std_rate


def placement_rates(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, window: float,
                    domain: tuple[float, float], D: np.ndarray,
                    moments: Callable[..., np.ndarray] = moments_numpy
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The rates ``(c', β')`` of the window of the profile ``q`` (rates ``f = ∂_t q``) that
    :func:`follow` places: its ends ``μ − lσ`` and ``μ + uσ`` move with the profile's
    :func:`statistics` and the relaxation of the reaches ``l``, ``u`` towards ``window``
    (``(log r)' = (D/σ²)(log window − log r)``); an end at a wall of the domain stays there
    while it would move out."""
    mean, std, mean_rate, std_rate = statistics(frame, grid, q, f, moments)
    nu = D / std**2
    ends = []
    for sign, wall in ((-1.0, domain[0]), (1.0, domain[1])):
        reach = np.maximum(sign * (frame.centre + sign * frame.half - mean) / std, 1e-3)
        reach_rate = nu * reach * np.log(window / reach)
        rate = mean_rate + sign * (reach * std_rate + reach_rate * std)
        at_wall = np.isclose(frame.centre + sign * frame.half, wall, rtol=0.0,
                             atol=1e-12 * (domain[1] - domain[0]))
        ends.append(np.where(at_wall & (sign * rate > 0), 0.0, rate))
    return (ends[0] + ends[1]) / 2, (ends[1] - ends[0]) / 2


def follow(frame: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray, t_new: float, *,
           window: float, domain: tuple[float, float], D: np.ndarray, scheme: str = "bdf2",
           kernel: Callable[..., np.ndarray] = follow_numpy) -> Frame:
    r"""The frame at ``t_new = t_n + h`` for the step from ``frame`` (profiles ``q``, their rate
    ``f = ∂_t q`` at ``t_n``; ``h₁ = t_n − t_{n−1}``).

    Target: the :func:`placement` ``C ± H`` of the profile's statistics predicted for
    ``t_new``: the mean ``μ`` and ``log σ`` on the cubic through their values at ``t_{n−2}``,
    ``t_{n−1}``, ``t_n`` with the slope at ``t_n`` (:func:`solvers.rescaled.paths.ahead`; the
    quadratic with one level of history, the tangent on the first step; a change beyond
    ``window·σ/2`` or a factor ``e`` is capped by :func:`~solvers.rescaled.paths.saturate`),
    with the reaches the profile has in the frame at ``t_n``, ``l = (μ − c_n + β_n)/σ`` and
    ``u = (c_n + β_n − μ)/σ``, relaxed towards ``window`` by
    :func:`solvers.rescaled.kernels.reaches_numpy` (``log r`` by the factor ``e^{−hD/σ²}``).
    While the profile moves and contracts affinely the target is then its own window carried
    along, and the profile does not move in ``z``. An edge recedes only over empty cells
    (:func:`~solvers.rescaled.paths.hold`). The new frame point is the frame's own
    extrapolation ``Q`` (the same cubic through its points with the slope ``c'_n``) moved the
    fraction ``ω = min(1, (h/h₁)²)`` towards the target (``log β`` likewise): on equal or
    growing steps the frame is the target; a retried shorter step moves it off its own path
    only a little, which the error estimate of the densities at fixed ``z`` would otherwise
    see as an error of the step.

    The velocity: ``(c_{n+1} − c_n)/h`` for backward Euler; for BDF2 the scheme's own
    difference of the frame points ``c_{n+1}/κ − (h + h₁)/(h h₁) c_n + h/(h₁(h + h₁)) c_{n−1}``,
    ``κ = h(h + h₁)/(2h + h₁)`` (and ``β' = β_{n+1}·(log β)'`` with the same difference of
    ``log β``), less its defect ``−h(h + h₁)c‴/6``, with ``c‴`` from the profile's own rates at
    the last three levels (:func:`~solvers.rescaled.paths.third`; ``c' = μ' + (c − μ)σ'/σ`` on
    an affine window; not while the window touches a wall), weighted by
    :func:`~solvers.rescaled.paths.stiff_weight` ``1/(1 + κD/σ²)`` (a step long against the
    profile's relaxation time pins the profile, and its rates no longer reveal the path). Any
    velocity consistent with a
    smooth path through the frame points keeps the scheme second order; this one is the
    profile's own velocity to third order, so the profile stays put in ``z`` and the BDF2 error
    of its travel, a fixed fraction of its width at every step of a collapse (steps growing
    with ``log γ``), is gone.
    """
    h = t_new - frame.t
    history = frame.t_prev is not None and frame.mean_prev is not None
    h1 = frame.t - frame.t_prev if history else h
    h2 = frame.t_prev - frame.t_prev2 if history and frame.t_prev2 is not None and (
        frame.mean_prev2 is not None) else 0.0
    previous = frame.history if frame.history is not None else _history(frame)
    rows = frame.rows if frame.rows is not None else np.array(
        [frame.centre, frame.half, frame.velocity, frame.rate])
    out = kernel(q, f, grid.centres, grid.widths, rows, previous, float(h), float(h1),
                 float(h2), history, scheme == "bdf2", float(window),
                 np.asarray(D, dtype=float), float(domain[0]), float(domain[1]))
    packed = np.empty_like(previous)  # the history of the new level, for its own step
    packed[0], packed[1], packed[2:6], packed[6:12] = frame.centre, frame.half, out[4:8], (
        previous[:6])
    thirds = out[8:10]
    made = math.isfinite(float(thirds.sum()))
    packed[12:14] = thirds
    packed[14] = frame.t + third_at(h2, h1) - t_new if made else np.nan
    return Frame(t=float(t_new), centre=out[0], half=out[1], velocity=out[2], rate=out[3],
                 t_prev=frame.t, centre_prev=frame.centre, half_prev=frame.half,
                 mean_prev=out[4], log_std_prev=out[5], rates_prev=out[6:8],
                 t_prev2=frame.t_prev, centre_prev2=frame.centre_prev,
                 half_prev2=frame.half_prev, mean_prev2=frame.mean_prev,
                 log_std_prev2=frame.log_std_prev, rates_prev2=frame.rates_prev,
                 thirds=thirds if made else None,
                 third_time=frame.t + third_at(h2, h1) if made else None,
                 rows=out[:4], history=packed)


def _history(frame: Frame) -> np.ndarray:
    """The ``previous`` rows of :func:`solvers.rescaled.kernels.follow_numpy` for a step from
    ``frame``, from its fields (a frame not made by :func:`follow`)."""
    previous = np.ones((15, frame.centre.size))
    previous[12:] = np.nan
    if frame.t_prev is not None and frame.mean_prev is not None:
        previous[:4] = [frame.centre_prev, frame.half_prev, frame.mean_prev, frame.log_std_prev]
        previous[4:6] = frame.rates_prev
        if frame.t_prev2 is not None and frame.mean_prev2 is not None:
            previous[6:10] = [frame.centre_prev2, frame.half_prev2, frame.mean_prev2,
                              frame.log_std_prev2]
            previous[10:12] = frame.rates_prev2
            if frame.thirds is not None and frame.third_time is not None:
                previous[12:14], previous[14] = frame.thirds, frame.third_time - frame.t
    return previous


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


def carried_deviation(old: Frame, new: Frame, grid: ZoomGrid, q: np.ndarray, f: np.ndarray,
                      q_prev: np.ndarray | None, h: float, q_new: np.ndarray,
                      kernel: Callable[..., np.ndarray] = carried_numpy) -> np.ndarray:
    r"""``Σ_i |q_{n+1} − p̃| h_i`` per population: the step's deviation from its predictor
    carried onto the new frame (the local error estimate of :mod:`solvers.stepping`).

    The predictor ``p`` at fixed ``z`` (``q_n + h f_n``, or for BDF2, ``q_prev`` given, the
    quadratic through ``q_{n−1}``, ``q_n`` with slope ``f_n``) is the profile on the frame
    ``Q`` that the frame's own extrapolation gives (``c_n + hc'_n``, or the curve of
    :func:`follow`: the cubic through ``c_{n−2}``, ``c_{n−1}``, ``c_n`` with slope ``c'_n``;
    ``log β`` likewise, its change capped at one e-fold by
    :func:`~solvers.rescaled.paths.saturate` as the target's is). The new level
    sits on ``(c_{n+1}, β_{n+1})``, placed from the profile, so ``p`` is carried there before
    the comparison: ``p̃(z) = (β_{n+1}/Q_β) p(z')``, ``z' = (c_{n+1} − Q_c + β_{n+1} z)/Q_β``
    (second-order Taylor in ``s = z' − z``; the sum by ``kernel``,
    :func:`solvers.rescaled.kernels.carried_numpy` or its numba twin). Compared at fixed ``z``
    instead, the offset of the frame from its own path would count as an error of the step
    although the density in ``x`` is unchanged by it.
    """
    frame = old.rows if old.rows is not None else np.array(
        [old.centre, old.half, old.velocity, old.rate])
    h1, h2 = h, 0.0
    if q_prev is None:
        q_prev, previous = _NO_ROWS, _NO_ROWS
    elif old.history is not None:
        previous, h1 = old.history[_FRAME_ROWS], old.t - old.t_prev
        if old.t_prev2 is not None:
            h2 = old.t_prev - old.t_prev2
    else:
        previous, h1 = np.ones((4, old.centre.size)), old.t - old.t_prev
        previous[:2] = [old.centre_prev, old.half_prev]
        if old.t_prev2 is not None:
            previous[2:], h2 = [old.centre_prev2, old.half_prev2], old.t_prev - old.t_prev2
    placed = new.rows[:2] if new.rows is not None else np.array([new.centre, new.half])
    return kernel(q, f, q_prev, q_new, frame, previous, placed, float(h), float(h1), float(h2),
                  grid.centres, grid.widths)
