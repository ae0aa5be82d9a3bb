r"""Log–log slope fits: the observed order ``p`` in ``error ≈ C · s^p``.

``fit_slope(s, e)`` is the least-squares line through ``(log s, log e)``; its slope is the
observed order (``p = −1`` for an error decaying like ``1/γ``, ``p = 2`` for a second-order scheme
against the cell width ``h``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from meanfield.errors import bad_value


@dataclass(frozen=True)
class SlopeFit:
    """``log e ≈ log C + slope · log s`` over ``points`` finite, positive pairs."""

    slope: float
    constant: float
    points: int

    def __call__(self, s: np.ndarray) -> np.ndarray:
        """The fitted line ``C s^slope``."""
        return self.constant * np.asarray(s, dtype=float) ** self.slope


def fit_slope(s: Sequence[float] | np.ndarray, errors: Sequence[float] | np.ndarray, *,
              name: str = "errors") -> SlopeFit:
    """Least-squares slope of ``log errors`` against ``log s``.

    Pairs where either value is not finite and positive are ignored (an error of exactly zero
    has no logarithm); at least two must remain.
    """
    s_arr = np.asarray(s, dtype=float).ravel()
    e_arr = np.asarray(errors, dtype=float).ravel()
    if s_arr.shape != e_arr.shape:
        bad_value(name, e_arr.tolist(), f"{s_arr.size} values (one per abscissa)")
    keep = np.isfinite(s_arr) & np.isfinite(e_arr) & (s_arr > 0) & (e_arr > 0)
    if np.count_nonzero(keep) < 2 or np.unique(s_arr[keep]).size < 2:
        bad_value(name, e_arr.tolist(), "at least two finite, positive values at distinct "
                  "abscissae to fit a slope")
    slope, intercept = np.polyfit(np.log(s_arr[keep]), np.log(e_arr[keep]), 1)
    return SlopeFit(slope=float(slope), constant=float(np.exp(intercept)),
                    points=int(np.count_nonzero(keep)))


def observed_orders(s: Sequence[float] | np.ndarray,
                    errors: Sequence[float] | np.ndarray) -> np.ndarray:
    """Local orders ``log(e_{k+1}/e_k) / log(s_{k+1}/s_k)`` between consecutive points."""
    s_arr = np.asarray(s, dtype=float)
    e_arr = np.asarray(errors, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(e_arr[1:] / e_arr[:-1]) / np.log(s_arr[1:] / s_arr[:-1])
