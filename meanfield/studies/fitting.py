r"""Log–log slope fits: the observed order ``p`` in ``error ≈ C · s^p``.

``fit_slope(s, e)`` is the least-squares line through ``(log s, log e)``; its slope is the
observed order (``p = −1`` for an error decaying like ``1/γ``, ``p = 2`` for a second-order scheme
against the cell width ``h``). Points a solver flags as unresolved are left out of the fits:
:func:`resolution_flags`, :func:`exclude_unresolved`, :func:`slope_anchor`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def resolution_flags(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """``resolved`` and ``cells_needed`` of every point (points stored before #13: resolved)."""
    flags = np.array([bool(ds["resolved"].values) if "resolved" in ds else True
                      for ds in result.datasets])
    needed = np.array([int(ds["cells_needed"].values) if "cells_needed" in ds else 0
                       for ds in result.datasets])
    return flags, needed


def exclude_unresolved(study: str, name: str, values: np.ndarray, resolved: np.ndarray,
               needed: np.ndarray) -> dict[str, Any]:
    """Attributes naming the unresolved points, and one ``ResolutionWarning`` for them."""
    import warnings

    from meanfield.errors import ResolutionWarning

    excluded = [float(v) for v, ok in zip(values, resolved, strict=True) if not ok]
    note = ("all points resolved" if not excluded else
            f"{len(excluded)} unresolved point(s) excluded from the slope fits: {name}="
            f"{excluded}" + (f"; use about cells={int(needed.max())} or more"
                             if needed.max() > 0 else ""))
    if excluded:
        warnings.warn(f"{study}: {note} (solvers.resolution)", ResolutionWarning, stacklevel=3)
    return {"excluded_points": json.dumps(excluded), "resolution": note}


def slope_anchor(values: np.ndarray, mask: np.ndarray) -> float | None:
    """The abscissa the predicted-slope line is anchored on: the last resolved point fitted."""
    kept = values[mask]
    return float(kept[-1]) if kept.size else None
