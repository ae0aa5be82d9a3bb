r"""Observables of the empirical law of a network (docs/mathematics.md §4): balance points, the fraction of
agents near them, and the Wasserstein-1 distance to a PDE density.

* Balance points (from the engine :mod:`meanfield.balance`): ``v ∈ R^P`` with
  ``h_p(v_p; m) = 0`` and ``∂_x h_p(v_p; m) > 0`` where ``m_q = Ψ_q(v_q)`` — the γ → ∞ fixed
  point of docs/mathematics.md §4 (every population a Dirac mass at a stable zero of its field).
  For reversal-potential coupling this is ``v_p = Σ_q g_pq E_q S_q(v_q) / Σ_q g_pq S_q(v_q)``.
* ``W_1(μ_n, ρ) = ∫ |F_n(x) − F(x)| dx`` in one dimension, evaluated exactly for a cell-wise
  constant density ``ρ`` (``F`` piecewise linear, ``F_n`` a step function).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meanfield.balance import balance_points as engine_points
from meanfield.balance import is_concentrating
from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.model import Model


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64) -> np.ndarray:
    """Stable balance points ``v`` (K, P) of ``model``, sorted by the first population.

    The stable points (every ``∂_x h_p(v_p) > 0``, contracting fixed-point map) of the model
    layer's engine :func:`meanfield.balance.balance_points` (``starts`` Sobol starts for P ≥ 2).
    Empty (0, P) when no field depends on ``x`` (current-based coupling: nothing concentrates,
    docs/mathematics.md §4).
    """
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    if not is_concentrating(model):
        return np.zeros((0, model.P))
    points = engine_points(model, time=time, starts=starts).stable
    return np.array([b.v for b in points]).reshape(-1, model.P)


def fraction_within(states: Sequence[np.ndarray], points: np.ndarray, delta: float) -> np.ndarray:
    """Per population, the fraction of agents within ``delta`` of a balance point (P,).

    ``points`` (K, P) as returned by :func:`balance_points`; an agent counts when it is within
    ``delta`` of the ``p``-th coordinate of any of the K points. NaN when K = 0.
    """
    delta = check_finite_number("delta", delta, positive=True)
    pts = np.asarray(points, dtype=float)
    P = len(states)
    if pts.ndim != 2 or pts.shape[1] != P:
        bad_value("points", points, f"an array of shape (K, {P})")
    if pts.shape[0] == 0:
        return np.full(P, np.nan)
    out = np.empty(P)
    for p, values in enumerate(states):
        values = np.asarray(values, dtype=float)
        near = np.zeros(values.size, dtype=bool)
        for v in np.unique(pts[:, p]):
            near |= np.abs(values - v) <= delta
        out[p] = near.mean()
    return out


def wasserstein_to_density(samples: np.ndarray, edges: np.ndarray, density: np.ndarray) -> float:
    """Exact ``W_1`` between the empirical law of ``samples`` and a cell-wise constant density.

    The density is normalised to mass 1 on ``edges``; samples may lie outside the cells.
    """
    s = np.sort(np.asarray(samples, dtype=float).ravel())
    e = np.asarray(edges, dtype=float)
    rho = np.asarray(density, dtype=float)
    if s.size == 0 or not np.all(np.isfinite(s)):
        bad_value("samples", samples, "a non-empty array of finite values")
    if e.ndim != 1 or rho.shape != (e.size - 1,) or np.any(np.diff(e) <= 0):
        bad_value("density", rho.shape, f"one value per cell of edges ({e.size - 1} cells)")
    mass = np.cumsum(np.maximum(rho, 0.0) * np.diff(e))
    if mass[-1] <= 0:
        bad_value("density", "zero mass", "a density with positive mass")
    F_edges = np.concatenate([[0.0], mass / mass[-1]])
    knots = np.union1d(s, e)
    F = np.interp(knots, e, F_edges, left=0.0, right=1.0)
    Fn = np.searchsorted(s, knots, side="right") / s.size
    d0 = F[:-1] - Fn[:-1]
    d1 = F[1:] - Fn[:-1]
    length = np.diff(knots)
    same = d0 * d1 >= 0
    total = np.abs(d0) + np.abs(d1)
    safe = np.where(total > 0, total, 1.0)
    pieces = np.where(same, length * total / 2, length * (d0**2 + d1**2) / (2 * safe))
    return float(pieces.sum())


def wasserstein_to_pde(states: Sequence[np.ndarray], reference: Any) -> np.ndarray:
    """``W_1`` per population between agent ``states`` and a PDE state (``edges``, ``rho`` (P, M))."""
    if not (hasattr(reference, "edges") and hasattr(reference, "rho")):
        bad_type("reference", reference, "an object with edges and rho (P, M), e.g. a "
                 "StationaryState")
    rho = np.asarray(reference.rho, dtype=float)
    if rho.ndim != 2 or rho.shape[0] != len(states):
        bad_value("reference", rho.shape, f"densities of shape ({len(states)}, M)")
    return np.array([wasserstein_to_density(states[p], reference.edges, rho[p])
                     for p in range(len(states))])
