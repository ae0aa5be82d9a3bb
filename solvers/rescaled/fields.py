r"""The coupling fields ``h_p(x; m) = Σ_j g_pj Φ_pj(x) m_j`` and their stable zeros (balance points).

Used by the γ = ∞ limits (:mod:`solvers.limits`) and by the zoomed solvers to locate balance
points (``docs/mathematics.md §4``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.numeric import NumericModel


@dataclass(frozen=True, eq=False)
class Fields:
    """One lambdified callable per population for ``h_p(x; m_j)`` and ``∂_x h_p`` (fast path).

    ``m_all`` is the J-vector of moments (populations, then external inputs, as in
    :meth:`meanfield.numeric.NumericModel.all_moments`).
    """

    nm: NumericModel
    h: tuple[Callable[..., Any], ...]
    dh: tuple[Callable[..., Any], ...]

    @classmethod
    def of(cls, nm: NumericModel) -> Fields:
        pairs = [nm.field_functions(p) for p in range(nm.P)]
        return cls(nm=nm, h=tuple(h for h, _ in pairs), dh=tuple(dh for _, dh in pairs))

    def field(self, p: int, points: np.ndarray, m_all: np.ndarray) -> np.ndarray:
        """``h_p`` at ``points`` for the J-vector ``m_all``."""
        out = self.h[p](points, *m_all)
        return np.broadcast_to(np.asarray(out, dtype=float), np.shape(points))

    def slope(self, p: int, points: np.ndarray, m_all: np.ndarray) -> np.ndarray:
        """``∂_x h_p`` at ``points``."""
        out = self.dh[p](points, *m_all)
        return np.broadcast_to(np.asarray(out, dtype=float), np.shape(points))

    def stable_zero(self, p: int, m_all: np.ndarray, guess: float, tol: float = 4e-16) -> float:
        """The zero of ``h_p`` reached by Newton from ``guess``; ``ValueError`` if not stable."""
        a, b = self.nm.model.domain
        span = b - a
        c = float(guess)
        for _ in range(60):
            point = np.array([c])
            slope = float(self.slope(p, point, m_all)[0])
            if not np.isfinite(slope) or slope <= 0:
                break
            step = float(np.clip(self.field(p, point, m_all)[0] / slope, -span / 4, span / 4))
            c -= step
            if abs(step) <= tol * max(1.0, abs(c)):
                return c
        raise ValueError(
            f"population {self.nm.model.names[p]!r} has no stable balance point near "
            f"x={guess:.6g} (h_p must vanish with ∂_x h_p > 0: a concentrating model; for a "
            f"non-concentrating balanced model use solvers.limits.constrained_fokker_planck)")


def zero_candidates(fields: Fields, p: int, m_all: np.ndarray, points: int = 2001) -> np.ndarray:
    """Sign changes of ``h_p`` from − to + on a scan of the domain (candidate stable zeros)."""
    xs = np.linspace(*fields.nm.model.domain, points)
    values = fields.field(p, xs, m_all)
    ups = np.nonzero((values[:-1] <= 0) & (values[1:] > 0))[0]
    return (xs[ups] + xs[ups + 1]) / 2
