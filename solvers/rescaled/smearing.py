r"""Spatial accuracy of the zoomed solvers: the variance the flux adds while a profile moves.

Across a gap where the flow relative to the frame is fast (cell Péclet number ``|δ| ≫ 1``) the
Scharfetter–Gummel flux is upwind: it carries the mass with the excess diffusion
``(D/β²)·E(δ)``, ``E(δ) = (δ/2)coth(δ/2) − 1`` (:func:`solvers.resolution.excess_diffusion`),
in ``z`` units. Only the share ``r`` of the flux that is transport counts (``r = 0`` where the
flux is in detailed balance, on a Gibbs state, which the scheme keeps exactly; ``r → 1`` while
the profile is carried; the weight of :func:`solvers.resolution.assess`). The excess adds to
the variance in ``z`` at the rate ``2 Σ_i (D/β²) E(δ_i) r_i q̄_i Δz_i`` (``q̄_i`` the mean of the
two cells), and an excess variance relaxes at twice the confinement ``κ`` of the profile in
its frame, ``κ = −Cov(z, b)/Var(z)`` for the drift ``b = −(D/β²)δ/Δz`` at the faces (zero
while a wide profile contracts with its frame, ``γA`` at rest). The relative variance error
``e`` therefore follows

.. math::
    e' = \frac{2\sum_i (D/\beta^2)\,E(\delta_i)\,r_i\,\bar q_i\,\Delta z_i}{\mathrm{Var}(z)}
         - 2\kappa\,e,

integrated by backward Euler over the accepted steps (:class:`Smearing`); the estimate at a
saved time adds the aliasing error of the cells per standard deviation
(:func:`solvers.resolution.aliasing_error`). A frame that follows the profile affinely keeps
``δ`` small where the mass is, so ``e`` stays far below 1e-2 on the default grid; a window that
lets a wide profile slide across it (or too few cells) shows here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from solvers.resolution import aliasing_error, excess_diffusion


def _bernoulli(u: np.ndarray) -> np.ndarray:
    """``B(u) = u/(e^u − 1)`` (``B(0) = 1``), stable for large ``|u|``."""
    small = np.abs(u) < 1e-8
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = u / np.expm1(np.where(small, 1.0, u))
    return np.where(small, 1.0 - u / 2, np.nan_to_num(out, nan=0.0, posinf=0.0))


def rates(q: np.ndarray, base: np.ndarray, slopes: np.ndarray, m: np.ndarray,
          half: np.ndarray, D: np.ndarray, centres: np.ndarray, widths: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(growth, κ, cells per std)`` (each (P,)) of the profiles ``q`` (P, M) with potential
    differences ``δ = base + Σ_k slopes_k m_k`` ((P, M−1); ``slopes`` (P, K, M−1), ``m`` (K,),
    ``K = 0`` when ``base`` is ``δ`` itself) on windows of half-width ``β`` (see above)."""
    delta = base + np.einsum("pki,k->pi", slopes, m)
    gaps = np.diff(centres)
    mass = q @ widths
    zbar = (q @ (centres * widths)) / mass
    var_z = np.einsum("pi,pi->p", q, (centres[None] - zbar[:, None]) ** 2 * widths) / mass
    left, right = q[:, :-1], q[:, 1:]
    forward, backward = _bernoulli(delta) * left, _bernoulli(-delta) * right
    total = forward + backward
    share = np.abs(forward - backward) / np.where(total > 0, total, 1.0)
    weight = (left + right) / 2 * gaps / mass[:, None]
    diffusion = D / half**2
    growth = 2 * diffusion * np.sum(excess_diffusion(delta) * share * weight, axis=1) / var_z
    faces = (centres[1:] + centres[:-1]) / 2
    drift = -diffusion[:, None] * delta / gaps
    norm = weight.sum(axis=1)
    zf = faces[None] - (weight * faces).sum(axis=1, keepdims=True) / norm[:, None]
    bf = drift - (weight * drift).sum(axis=1, keepdims=True) / norm[:, None]
    kappa = -np.sum(zf * bf * weight, axis=1) / np.sum(zf**2 * weight, axis=1)
    return growth, np.maximum(kappa, 0.0), np.sqrt(var_z) / widths.max()


@dataclass(frozen=True)
class Smearing:
    """The running estimate ``e`` (P,) at time ``t`` and ``per_std``, the cells per standard
    deviation there (for the aliasing part, :meth:`total`)."""

    t: float
    error: np.ndarray
    per_std: np.ndarray

    def advanced(self, t: float, q: np.ndarray, base: np.ndarray, slopes: np.ndarray,
                 m: np.ndarray, half: np.ndarray, D: np.ndarray, centres: np.ndarray,
                 widths: np.ndarray, kernel: Callable[..., Any] = rates) -> Smearing:
        """The estimate at ``t`` (one backward-Euler step from ``self.t`` with the rates of the
        level at ``t``; the rates by ``kernel``, :func:`rates` or its numba twin)."""
        growth, kappa, per_std = kernel(q, base, slopes, m, half, D, centres, widths)
        h = t - self.t
        error = [(e + h * g) / (1 + 2 * k * h)  # on the P floats (the same IEEE operations)
                 for e, g, k in zip(self.error.tolist(), growth.tolist(), kappa.tolist(),
                                    strict=True)]
        return Smearing(t=t, error=np.array(error), per_std=per_std)

    def total(self) -> np.ndarray:
        """The expected relative error of each variance: ``e`` plus the aliasing error."""
        return self.error + aliasing_error(self.per_std)
