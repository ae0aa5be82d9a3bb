r"""Fused kernels of the zoomed solvers in plain numpy (this module); numba twins in
:mod:`solvers.rescaled.kernels_numba`.

Two pieces run once per step on every population's window ``x = c_p + β_p z`` (``docs/mathematics.md §6,
§10``):

- :func:`assemble_numpy`, the stage data from the model evaluated once on the samples
  ``z_0, ẑ_0, z_1, …, z_{M−1}`` (cell centres ``z_i`` and the midpoints ``ẑ_i`` of the gaps
  between them; ``values`` (P, J + 2, 2M − 1) holds ``f_p``, ``Φ_pj``, ``Ψ_p`` there, as
  :meth:`meanfield.numeric.NumericModel.table` returns them). Every gap integral is Simpson's
  rule ``∫_{x_i}^{x_{i+1}} g\,dx ≈ β Δz (g_i + 4ĝ_i + g_{i+1})/6`` (exact for cubics; no
  differences of large antiderivatives, so nothing cancels on a window 10⁻⁶ wide), and

  .. math::
     \text{base}_{p,i} = \frac{β_p c_p' Δz_i + β_p β_p' (z_{i+1}^2 − z_i^2)/2 − ∫ f_p}{D_p},\quad
     \text{slopes}_{p,j,i} = \frac{γ g_{pj} ∫ Φ_{pj}}{D_p},\quad
     \text{scale}_{p,i} = \frac{D_p}{β_p^2 Δz_i},\quad w_{p,i} = Ψ_p(x_{p,i}) h_i;

- :func:`moments_numpy`, the statistics of the profiles ``q`` in ``z`` and of their rates
  ``f = ∂_t q`` that place the next window: per population the mass ``Σ h q``, the mean
  ``z̄``, the variance ``Σ h (z − z̄)² q / mass``, and ``Σ h z f / mass``,
  ``Σ h (z − z̄)² f / mass``;
- :func:`follow_numpy`, from those statistics the frame of the next time level (the rule of
  :func:`solvers.rescaled.frame.follow`);
- :func:`carried_numpy`, the local error deviation of a step from its predictor carried onto
  the new frame (:func:`solvers.rescaled.frame.carried_deviation`).

The numba twins fuse each into one pass over the cells; they agree with these to round-off
(``tests/solvers/test_rescaled_kernels.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from solvers.kernels import numba_available
from solvers.rescaled.paths import (
    ahead,
    bdf2_slope,
    carried_third,
    defect_at,
    hold,
    saturate,
    stiff_weight,
    third,
    third_at,
)
from solvers.rescaled.smearing import rates


def assemble_numpy(values: np.ndarray, half: np.ndarray, velocity: np.ndarray, rate: np.ndarray,
                   gaps: np.ndarray, squares: np.ndarray, widths: np.ndarray, D: np.ndarray,
                   coupling: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(base (P, M−1), slopes (P, J, M−1), scale (P, M−1), weights (P, M))`` (see above);
    ``coupling`` is ``γ g`` (P, J)."""
    J = coupling.shape[1]
    left, mid, right = values[:, : J + 1, 0:-1:2], values[:, : J + 1, 1::2], values[:, : J + 1, 2::2]
    integrals = (left + 4 * mid + right) * (gaps / 6) * half[:, None, None]
    base = ((half * velocity)[:, None] * gaps + (half * rate)[:, None] * squares
            - integrals[:, 0]) / D[:, None]
    slopes = coupling[:, :, None] * integrals[:, 1:] / D[:, None, None]
    scale = D[:, None] / (half[:, None] ** 2 * gaps)
    weights = values[:, J + 1, ::2] * widths
    return base, slopes, scale, weights


def moments_numpy(q: np.ndarray, f: np.ndarray, centres: np.ndarray, widths: np.ndarray
                  ) -> np.ndarray:
    """Rows ``(mass, z̄, var_z, Σhzf/mass, Σh(z − z̄)²f/mass)`` (5, P) of the profiles ``q``
    and their rates ``f`` (P, M) (see above)."""
    mass = q @ widths
    zbar = (q @ (centres * widths)) / mass
    centred = (centres[None] - zbar[:, None]) ** 2 * widths
    var_z = np.einsum("pi,pi->p", q, centred) / mass
    return np.array([mass, zbar, var_z, (f @ (centres * widths)) / mass,
                     np.einsum("pi,pi->p", f, centred) / mass])


def placement_numpy(mean: np.ndarray, std: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width of ``[mean − lower·std, mean + upper·std]`` cut to ``[a, b]``
    (:func:`solvers.rescaled.frame.placement` documents the rule)."""
    lo, hi = np.maximum(mean - lower * std, a), np.minimum(mean + upper * std, b)
    return (lo + hi) / 2, (hi - lo) / 2


def reaches_numpy(centre: np.ndarray, half: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  D: np.ndarray, h: float, window: float) -> tuple[np.ndarray, np.ndarray]:
    """The reaches ``(lower, upper)`` of the window ``centre ± half`` in standard deviations
    below and above the mean, each relaxed towards ``window`` over the time ``h`` at the
    diffusive rate ``ν = D/σ²`` (``log r ← log w + (log r − log w)e^{−νh}``)."""
    fade = np.exp(-h * D / std**2)
    lower = np.maximum((mean - centre + half) / std, 1e-3)
    upper = np.maximum((centre + half - mean) / std, 1e-3)
    return window * (lower / window) ** fade, window * (upper / window) ** fade


def follow_numpy(q: np.ndarray, f: np.ndarray, centres: np.ndarray, widths: np.ndarray,
                 frame: np.ndarray, previous: np.ndarray, h: float, h1: float, h2: float,
                 history: bool, bdf2: bool, window: float, D: np.ndarray, a: float, b: float
                 ) -> np.ndarray:
    """The next frame of :func:`solvers.rescaled.frame.follow` (which documents the rule).

    ``frame`` rows ``(c, β, c', β')`` (4, P) at ``t_n``; ``previous`` rows
    ``(c, β, μ, log σ, μ', (log σ)')`` at ``t_{n−1}`` and then at ``t_{n−2}``, then the
    previous level's estimates of ``(c‴, (log β)‴)`` and where (after ``t_n``) they hold
    (15, P; NaN: none), used when ``history`` (the second six when ``h2 > 0``);
    ``h = t_{n+1} − t_n``, ``h1 = t_n − t_{n−1}``, ``h2 = t_{n−1} − t_{n−2}`` (0: unknown).
    Returns rows ``(c_{n+1}, β_{n+1}, c', β', μ_n, log σ_n, μ'_n, (log σ)'_n, c‴, (log β)‴)``
    (10, P; the last two this level's estimates at :func:`~solvers.rescaled.paths.third_at`,
    NaN when not made).
    """
    centre, half, velocity, rate = frame
    thirds = np.full((2, centre.size), np.nan)
    _, zbar, var_z, first_rate, var_rate = moments_numpy(q, f, centres, widths)
    std_z = np.sqrt(np.maximum(var_z, 1e-300))
    mean, std = centre + half * zbar, half * std_z
    mean_rate = velocity + rate * zbar + half * first_rate
    std_rate = rate * std_z + half * var_rate / (2 * std_z)
    log_std, log_rate = np.log(std), std_rate / std
    log_half, log_half_rate = np.log(half), rate / half
    if not history:
        h1, h2 = h, 0.0
        mean_new, log_new = mean + h * mean_rate, log_std + h * log_rate
        own_centre, own_log = centre + h * velocity, log_half + h * log_half_rate
    else:
        old = previous[6:] if h2 > 0 else previous[:6]
        mean_new = ahead(old[2], previous[2], mean, mean_rate, h2, h1, h)
        log_new = ahead(old[3], previous[3], log_std, log_rate, h2, h1, h)
        own_centre = ahead(old[0], previous[0], centre, velocity, h2, h1, h)
        own_log = ahead(np.log(old[1]), np.log(previous[1]), log_half, log_half_rate, h2, h1, h)
    mean_new = mean + saturate(mean_new - mean, window * std / 2)
    log_new = log_std + saturate(log_new - log_std, 1.0)
    lower, upper = reaches_numpy(centre, half, mean, std, D, h, window)
    target, wide = placement_numpy(mean_new, np.exp(log_new), lower, upper, a, b)
    weight = min(1.0, (h / h1) ** 2)
    new_centre = own_centre + weight * (target - own_centre)
    new_half = np.exp(own_log + weight * (np.log(wide) - own_log))
    lo, hi = np.maximum(new_centre - new_half, a), np.minimum(new_centre + new_half, b)
    peak = q.max(axis=1)
    lo = hold(centre - half, lo, q[:, 0] / peak, 1.0)
    hi = hold(centre + half, hi, q[:, -1] / peak, -1.0)
    new_centre, new_half = (lo + hi) / 2, (hi - lo) / 2
    if history and bdf2:
        new_velocity = bdf2_slope(previous[0], centre, new_centre, h1, h)
        new_log_rate = bdf2_slope(np.log(previous[1]), log_half, np.log(new_half), h1, h)
        if h2 > 0:  # remove the BDF2 defect −h(h + h₁)u‴/6 of the profile's own path
            free = (centre - half > a) & (centre + half < b)
            skew = (centre - mean) / std  # the window moves with the profile: c − μ ∝ σ
            path = third(previous[10] + skew * np.exp(previous[9]) * previous[11],
                         previous[4] + skew * np.exp(previous[3]) * previous[5],
                         mean_rate + skew * std * log_rate, h2, h1)
            spread = third(previous[11], previous[5], log_rate, h2, h1)
            thirds = np.array([path, spread])
            at = third_at(h2, h1)
            if np.all(np.isfinite(previous[12:])) and at > previous[14, 0]:  # to the defect's
                path = carried_third(path, previous[12], at, previous[14], defect_at(h, h1))
                spread = carried_third(spread, previous[13], at, previous[14],
                                       defect_at(h, h1))
            lag = h * (h + h1) / 6 * stiff_weight(h, h1, D / std**2)
            new_velocity = new_velocity + np.where(free, lag * path, 0.0)
            new_log_rate = new_log_rate + np.where(free, lag * spread, 0.0)
        new_rate = new_half * new_log_rate
    else:
        new_velocity = (new_centre - centre) / h
        new_rate = new_half * (np.log(new_half) - log_half) / h
    return np.array([new_centre, new_half, new_velocity, new_rate, mean, log_std, mean_rate,
                     log_rate, *thirds])


def carried_numpy(q: np.ndarray, f: np.ndarray, q_prev: np.ndarray, q_new: np.ndarray,
                  frame: np.ndarray, previous: np.ndarray, new: np.ndarray, h: float,
                  h1: float, h2: float, centres: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """``Σ_i h_i |q_new − J(p + s ∂_z p + s²/2 ∂_z² p)|`` per population
    (:func:`solvers.rescaled.frame.carried_deviation` documents the rule).

    ``frame`` rows ``(c, β, c', β')`` (4, P) at ``t_n``, ``previous`` rows ``(c_{n−1}, β_{n−1})``
    and ``new`` rows ``(c_{n+1}, β_{n+1})`` (2, P); ``h = t_{n+1} − t_n``, ``h₁ = t_n − t_{n−1}``.
    With ``ω² = (h/h₁)²``: ``p = (1 − ω²) q + ω² q_prev + h(1 + h/h₁) f`` (``p = q + h f`` when
    ``q_prev`` has no rows; likewise the frame ``Q``: ``c`` and ``log β`` extrapolated),
    ``s = (c_{n+1} − Q_c)/Q_β + (β_{n+1}/Q_β − 1) z``, ``J = β_{n+1}/Q_β``; ``∂_z p`` by centred
    differences (one-sided at the ends), ``∂_z² p`` by the three-point difference (zero at the
    ends) on the uniform cells.
    """
    centre, half, velocity, rate = frame
    log_half, log_rate = np.log(half), rate / half
    at, log_span = centre + h * velocity, log_half + h * log_rate
    if q_prev.shape[0] == q.shape[0]:
        bend = (h / h1) ** 2
        p = q * (1.0 - bend) + q_prev * bend + f * (h * (1.0 + h / h1))
        old = previous[2:] if h2 > 0 else previous[:2]
        at = ahead(old[0], previous[0], centre, velocity, h2, h1, h)
        log_span = ahead(np.log(old[1]), np.log(previous[1]), log_half, log_rate, h2, h1, h)
    else:
        p = q + h * f
    span = np.exp(log_half + saturate(log_span - log_half, 1.0))  # as the target (finite)
    jacobian = new[1] / span
    dz = widths[0]
    slope = np.empty_like(p)
    slope[:, 1:-1] = (p[:, 2:] - p[:, :-2]) / (2 * dz)
    slope[:, 0], slope[:, -1] = (p[:, 1] - p[:, 0]) / dz, (p[:, -1] - p[:, -2]) / dz
    curve = np.zeros_like(p)
    curve[:, 1:-1] = (p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]) / dz**2
    shift = ((new[0] - at) / span)[:, None] + (jacobian - 1.0)[:, None] * centres[None]
    carried = jacobian[:, None] * (p + shift * (slope + 0.5 * shift * curve))
    return np.abs(q_new - carried) @ widths


@dataclass(frozen=True)
class FrameKernel:
    """:func:`assemble_numpy`, :func:`moments_numpy`, :func:`follow_numpy`,
    :func:`carried_numpy`, :func:`solvers.rescaled.smearing.rates` or their numba twins."""

    name: str
    assemble: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    moments: Callable[..., np.ndarray]
    follow: Callable[..., np.ndarray]
    carried: Callable[..., np.ndarray]
    smearing: Callable[..., Any]


FRAME_NUMPY = FrameKernel("numpy", assemble_numpy, moments_numpy, follow_numpy, carried_numpy,
                          rates)


def frame_kernel(name: str) -> FrameKernel:
    """The kernel pair for ``name`` (``"numba"`` or ``"numpy"``, as resolved by
    :func:`solvers.kernels.stage_kernel`)."""
    if name == "numba" and numba_available():
        from solvers.rescaled.kernels_numba import assemble, carried, follow, moments, smearing

        return FrameKernel("numba", assemble, moments, follow, carried, smearing)
    return FRAME_NUMPY
