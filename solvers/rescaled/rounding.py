r"""The rounding floor of the zoomed solver's error control.

The drift of population ``p`` is ``γ h_p(x; m) = γ Σ_j g_pj Φ_pj(x) m_j``: γ times the moments,
which Newton knows to the relative tolerance ``η = MOMENT_RTOL`` (:mod:`solvers.rescaled.stage`).
A rounding of the moments adds a force of up to ``F_p = ηγ Σ_j |g_pj Φ_pj m_j|`` and moves the
profile, held at its balance point ``c_p`` by the confinement ``κ_p = γ ∂_x h_p(c_p)``, by
``F_p/κ_p``: in concentration widths ``(D_p/κ_p)^{1/2}`` that is ``F_p/(κ_p D_p)^{1/2}``. A
Gaussian shifted by ``s`` widths changes by ``s(2/π)^{1/2}`` in L1, so the steps carry the noise

.. math::
    e_p = \sqrt{2/\pi}\;\frac{F_p}{\sqrt{\kappa_p D_p}} \;\propto\; \eta\sqrt{\gamma},

the floor below which the local error estimates (L1 per unit mass) cannot fall. On the
three-population benchmark (from a concentrated start to t = 5) it is 3.3e-8 at γ = 1e12:
``rtol`` 1e-7, 2e-8, 1e-8 took 331, 508, 749 steps (14, 15, 91 rejected), 5e-9 ran out of
20 000; at γ = 1e14 (floor 3.3e-7) ``rtol`` 1e-7 took 515 steps and 5e-8 ran out.
"""

from __future__ import annotations

import numpy as np

from meanfield.numeric import NumericModel
from solvers.rescaled.fields import Fields


def rounding_floor(nm: NumericModel, gamma: float, m_all: np.ndarray, centres: np.ndarray,
                   moment_rtol: float) -> np.ndarray:
    """``e_p`` above (P,) for the moments ``m_all`` (J,) and the balance points ``centres`` (P,)."""
    fields = Fields.of(nm)
    values = nm.table(np.asarray(centres, dtype=float)[:, None])[:, 1:-1, 0]  # Φ_pj(c_p)
    force = moment_rtol * gamma * np.abs(nm.g * values * np.asarray(m_all)[None]).sum(axis=1)
    kappa = gamma * np.array([fields.slope(p, np.array([centres[p]]), m_all)[0]
                              for p in range(nm.P)])
    return np.sqrt(2 / np.pi) * force / np.sqrt(kappa * nm.D)
