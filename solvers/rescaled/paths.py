r"""The frame's path in time: extrapolations and the BDF2 velocity with its defect corrected.

A zoomed frame follows its profile; through the collapse of a wide start the profile travels
and contracts by ``log(1/ε)`` e-folds, and every error of the frame's path counts as a fraction
of the current width. The pieces here (plain arithmetic on floats or arrays; the numba kernels
register them with ``register_jitable``) keep that error at fourth order:

- :func:`ahead`: ``u(t_n + h)`` from ``u_{n−2}``, ``u_{n−1}``, ``u_n`` and the slope ``u'_n``
  (the cubic through them; steps ``h₂ = t_{n−1} − t_{n−2}``, ``h₁ = t_n − t_{n−1}``), or, with
  no ``u_{n−2}`` (``h₂ = 0``), the quadratic through ``u_{n−1}``, ``u_n`` with slope ``u'_n``;
- :func:`bdf2_slope`: the BDF2 difference ``u'(t_{n+1}) ≈ u_{n+1}/κ − …`` (the derivative of
  the quadratic through three levels), whose defect is ``−h(h + h₁)u‴/6``;
- :func:`saturate`: a smooth cap on the predicted change of a step;
- :func:`hold`: a window edge recedes only over empty cells;
- :func:`stiff_weight`: how much of that correction a step takes (none once the step is long
  against the profile's relaxation time);
- :func:`third_at`, :func:`defect_at`, :func:`carried_third`: where that ``u‴`` is exact and
  where the defect needs it, and the estimate carried from the one to the other;
- :func:`third`: ``u‴`` from the slopes at three levels, to remove that defect. The slopes
  are the profile's own rates, from the moments of ``∂_t q`` (the drift it feels), not
  differences of its levels: the levels of a BDF2 solution satisfy the BDF2 relation exactly,
  so their differences cannot reveal the scheme's own defect.

:mod:`solvers.rescaled.kernels_numba` compiles these very functions; its cached kernels do not
see edits here, so clear the numba cache (``*.nbi``, ``*.nbc``) after changing this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ahead(u2: Any, u1: Any, u: Any, slope: Any, h2: float, h1: float, h: float) -> Any:
    """``u(t_n + h)`` on the cubic through ``u2``, ``u1``, ``u`` with ``slope`` at ``t_n``
    (the quadratic without ``u2`` when ``h2 == 0``)."""
    r1 = u1 - u + slope * h1
    if h2 == 0.0:
        return u + slope * h + r1 * (h / h1) ** 2
    span = h1 + h2
    r2 = u2 - u + slope * span
    a = (r1 * span**3 - h1**3 * r2) / (h1**2 * span**2 * h2)
    b = (span**2 * r1 - h1**2 * r2) / (h1**2 * span**2 * h2)
    return u + slope * h + a * h**2 + b * h**3


def bdf2_slope(u_prev: Any, u: Any, u_new: Any, h1: float, h: float) -> Any:
    """The BDF2 difference at ``t_n + h`` of the levels ``u_{n−1}``, ``u_n``, ``u_{n+1}``."""
    return ((2 * h + h1) / (h * (h + h1)) * u_new - (h + h1) / (h * h1) * u
            + h / (h1 * (h + h1)) * u_prev)


def third(r2: Any, r1: Any, r: Any, h2: float, h1: float) -> Any:
    """``u‴`` at ``t_n`` from the slopes ``u'`` at ``t_{n−2}``, ``t_{n−1}``, ``t_n``
    (twice their second divided difference)."""
    return 2 * ((r - r1) / h1 - (r1 - r2) / h2) / (h1 + h2)


def stiff_weight(h: float, h1: float, relax: Any) -> Any:
    """``1/(1 + κν)``, ``κ = h(h + h₁)/(2h + h₁)`` the BDF2 stage coefficient and ``ν`` the
    profile's relaxation rate (``D/σ²``): the share of the defect correction a step takes.

    A step long against ``1/ν`` pins the profile in its confinement, and the rates read from
    ``∂_t q`` then report the frame's own correction instead of a motion of the profile (the
    stage's mismatch ``Δv`` between the frame velocity and the BDF2 difference of the frame
    points displaces the profile by ``Δv/ν`` and makes it drift at about ``Δv``). Fed back into
    the next correction, that closes a loop (a period-4 mode, ``|λ|`` 0.85–0.95 per step) which
    rings at ~10⁻⁶ of the width on round-off, a floor the error control sees at half the
    tolerance: after the layer the steps then grew by 9 % per step instead of 2× (30 steps per
    decade of time). The correction matters only while the profile travels on the time scale
    of the step (``κν ≲ 1``)."""
    return 1.0 / (1.0 + h * (h + h1) / (2 * h + h1) * relax)


def third_at(h2: float, h1: float) -> float:
    """Where (after ``t_n``) :func:`third` is exact for a quartic path: the mean of its nodes,
    ``−(2h₁ + h₂)/3`` (twice a second divided difference of a cubic slope is its second
    derivative at the mean of the nodes)."""
    return -(2 * h1 + h2) / 3


def defect_at(h: float, h1: float) -> float:
    """Where (after ``t_n``) ``u‴`` gives the BDF2 defect exactly for a quartic path:
    ``h − (2h + h₁)/4``. The difference is the derivative at ``t_{n+1}`` of the quadratic
    through the three levels; its error is ``h(h + h₁)`` times the third divided difference over
    ``t_{n−1}``, ``t_n``, ``t_{n+1}``, ``t_{n+1}``, which is ``u‴/6`` at the mean of those nodes
    (for equal steps ``t_n + h/4``: taken at the centre of :func:`third` instead, ``5h/4``
    earlier, the defect left ``5h³u⁗/12``)."""
    return h - (2 * h + h1) / 4


def carried_third(value: Any, prior: Any, at: float, prior_at: float, to: float) -> Any:
    """The estimate ``value`` of ``u‴`` at ``at`` carried to ``to`` along the line through
    ``prior`` (at ``prior_at``) while the two agree in sign, the change capped at ``|value|``;
    not at all where they disagree (estimates that alternate are noise, which the line would
    amplify: on 20 cells a profile sliding across its cells made the correction grow fivefold
    per step until the steps underflowed)."""
    change = (value - prior) * ((to - at) / (at - prior_at))
    bound = np.abs(value) * (value * prior > 0)
    return value + np.minimum(np.maximum(change, -bound), bound)


def saturate(change: Any, limit: Any) -> Any:
    """``d/(1 + (d/L)⁸)^{1/8}``: ``d`` itself to a relative ``(d/L)⁸/8`` below the limit ``L``
    (a lower power would bias every step of a steady contraction at third order), ``±L``
    far beyond it (written so that no power overflows: ``r = |d|/L``, ``m = max(r, 1)``)."""
    r = np.abs(change / limit)
    m = np.maximum(r, 1.0)
    return change / (m * ((1.0 / m) ** 8 + (r / m) ** 8) ** 0.125)


def hold(end: Any, new_end: Any, tail: Any, inward: float) -> Any:
    """``new_end``, with a move inwards (``inward = +1`` for a lower end, ``−1`` for an upper)
    scaled down while the edge cell holds mass: by ``1 − S(u)``, ``S`` the smoothstep,
    ``u = (log₁₀ tail + 5)/2`` in ``[0, 1]`` (all of it below ``tail = 10⁻⁵`` of the peak,
    none above ``10⁻³``). A window edge recedes only over empty cells: a profile whose shape
    changes (a uniform start growing Gaussian tails) keeps room for its tails. The band starts
    above the edge of a Gaussian cut at 5 standard deviations (``3.7·10⁻⁶``, a wide start
    against a wall): with the band one decade lower such an edge sat in it and braked the
    window a little at every step (non-affine, so the profile drifted across its frame): 120
    steps of the first relaxation time at γ = 1e12 against 52 at 1e2 (now 52 at both)."""
    u = np.minimum(np.maximum((np.log10(np.maximum(tail, 1e-300)) + 5.0) / 2.0, 0.0), 1.0)
    keep = 1.0 - u * u * (3.0 - 2.0 * u)
    move = (new_end - end) * inward
    return end + inward * (np.minimum(move, 0.0) + keep * np.maximum(move, 0.0))
