r"""The γ → ∞ limits of the mean-field PDE (docs/mathematics.md §4), computed numerically.

* :func:`early_behaviour` — the initial layer in fast time ``τ = γt``: the nonlocal transport
  ``∂_τ ρ_p = ∂_x(h_p ρ_p)``, ``h_p = Σ_j g_pj Φ_pj(x) m_j(τ)``, ``m_q = ∫Ψ_q ρ_q``, solved along
  characteristics ``dX/dτ = −h_p(X; m(τ))`` started from Gauss–Legendre nodes of the initial
  density (the moments are then quadratures over the initial positions, spectrally accurate).
  Its end point decides which balance point the network reaches.
* :func:`balance_points`, :func:`balance_trajectory` — γ = ∞ for a concentrating model: every
  population is a Dirac mass at ``v_p`` with ``h_p(v_p; Ψ(v), t) = 0`` (the points of the model
  layer's engine :mod:`meanfield.balance`); with a time-dependent external input the points move
  and are followed by continuation in ``t``.
* :func:`constrained_fokker_planck` (:mod:`solvers.constrained`) — γ = ∞ for a non-concentrating
  balanced model (constant ``Φ``): ``∂_t ρ_p = −∂_x((f_p − λ_p(t)) ρ_p) + D_p ∂_xx ρ_p`` with
  the multipliers ``λ_p`` fixed by the constraints ``h_p(m(t), t) = 0`` (a DAE), solved with the
  Scharfetter–Gummel finite volumes and time steps of every solver
  (:func:`solvers.stepping.march`; λ found by Newton in each stage). Inconsistent initial data
  are first moved along the early-behaviour flow, which for constant ``Φ`` translates each
  population rigidly until the constraints hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from meanfield.balance import BalancePoint, BalanceSystem, is_concentrating
from meanfield.balance import balance_points as engine_points
from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.numeric import numeric
from solvers.constrained import (
    ConstrainedSolution,
    MultiplierCoupling,
    balanced_moments,
    consistent_shift,
    constrained_fokker_planck,
    multipliers,
    quadrature,
)
from solvers.limits_io import LimitResult
from solvers.rescaled import Fields, initial_profiles

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


# ----------------------------------------------------------------------------- (a) early behaviour
@dataclass(frozen=True, eq=False)
class EarlyBehaviour(LimitResult):
    """Characteristics of the fast-time transport: ``positions`` (nτ, P, N) with ``weights`` (P, N).

    ``tau`` (nτ,); ``m``, ``mean``, ``var`` (nτ, P) are exact quadratures over the initial
    positions. ``time`` is the (frozen) slow time at which external inputs are evaluated.
    """

    model: Model
    time: float
    tau: np.ndarray
    positions: np.ndarray
    weights: np.ndarray
    m: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    def cdf(self, points: np.ndarray, index: int = -1) -> np.ndarray:
        """Cumulative distribution (P, len(points)) of the transported densities at ``tau[index]``."""
        out = []
        for p in range(self.model.P):
            order = np.argsort(self.positions[index, p], kind="stable")
            xs = self.positions[index, p][order]
            cumulative = np.cumsum(self.weights[p][order])
            out.append(np.interp(points, xs, cumulative, left=0.0, right=1.0))
        return np.array(out)

    @property
    def limit(self) -> np.ndarray:
        """Means at the last ``tau``: the balance point the flow is heading to (for large τ)."""
        return self.mean[-1]


def early_behaviour(model: Model, *, tau_final: float, initial: Any = None,
                    time: float = 0.0, panels: int = 400, save_at: Sequence[float] | None = None,
                    rtol: float = 1e-10, atol: float = 1e-12) -> EarlyBehaviour:
    r"""Solve ``∂_τ ρ_p = ∂_x(h_p ρ_p)`` up to ``tau_final`` along characteristics.

    ``initial``: ``None`` (the model's) or P callables of ``x``; ``panels`` Gauss–Legendre panels
    (4 nodes each) on the domain; ``save_at`` the fast times to store (default 101 equal steps).
    Characteristics stop at the domain ends (zero flux).
    """
    _check_model(model)
    tau_final = check_finite_number("tau_final", tau_final, positive=True)
    time = check_finite_number("time", time)
    panels = check_int("panels", panels, minimum=4)
    nm = numeric(model)
    fields = Fields.of(nm)
    profiles = initial_profiles(nm, initial)
    a, b = model.domain
    nodes, qw = quadrature((a, b), panels)
    weights = np.array([qw * np.asarray(fn(nodes), float) for fn in profiles])
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        bad_value("initial", initial, "finite, nonnegative initial densities")
    mass = weights.sum(axis=1)
    if np.any(mass <= 0):
        bad_value("initial", initial, "initial densities with positive mass")
    weights = weights / mass[:, None]
    P, N = nm.P, nodes.size
    psi = nm.psi
    external = nm.external_m(time)

    def moments(X: np.ndarray) -> np.ndarray:
        return np.array([psi[p](X[p]) @ weights[p] for p in range(P)])

    def rhs(_tau: float, flat: np.ndarray) -> np.ndarray:
        X = flat.reshape(P, N)
        m_all = np.concatenate([moments(X), external])
        v = np.array([-fields.field(p, X[p], m_all) for p in range(P)])
        v[(X <= a) & (v < 0)] = 0.0
        v[(X >= b) & (v > 0)] = 0.0
        return v.ravel()

    taus = (np.linspace(0, tau_final, 101) if save_at is None
            else np.asarray(sorted(float(s) for s in save_at), float))
    if taus.size == 0 or taus[0] < 0 or taus[-1] > tau_final:
        bad_value("save_at", save_at, f"times in [0, tau_final={tau_final}]")
    out = solve_ivp(rhs, (0.0, tau_final), np.tile(nodes, P), method="DOP853", t_eval=taus,
                    rtol=rtol, atol=atol)
    if not out.success:
        raise RuntimeError(f"early-behaviour transport failed: {out.message}")
    X = np.clip(out.y.T.reshape(-1, P, N), a, b)
    m = np.array([moments(Xk) for Xk in X])
    mean = np.einsum("tpn,pn->tp", X, weights)
    var = np.einsum("tpn,pn->tp", (X - mean[..., None]) ** 2, weights)
    return EarlyBehaviour(model=model, time=time, tau=out.t, positions=X, weights=weights, m=m,
                          mean=mean, var=var)


# ----------------------------------------------------------------------------- (b) balance points
def _concentrating(model: Model) -> None:
    if not is_concentrating(model):
        bad_value("model", model.names, "a concentrating model (some Φ depends on x); for "
                  "constant Φ use constrained_fokker_planck")


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64
                   ) -> tuple[BalancePoint, ...]:
    """Every balance point at slow time ``time`` (sorted by ``v``), with its stability.

    The points of the model layer's engine, :func:`meanfield.balance.balance_points`.
    """
    _check_model(model)
    _concentrating(model)
    return engine_points(model, time=time, starts=starts).all


@dataclass(frozen=True, eq=False)
class BalanceTrajectory(LimitResult):
    """The γ = ∞ trajectory of a concentrating model: ``v``, ``m``, ``slope`` (nt, P) at ``t``."""

    model: Model
    t: np.ndarray
    v: np.ndarray
    m: np.ndarray
    slope: np.ndarray
    stable: np.ndarray


def balance_trajectory(model: Model, times: Sequence[float], *, start: Any = None,
                       tau_final: float = 60.0) -> BalanceTrajectory:
    """Follow the balance point in slow time (time-dependent external inputs) by continuation.

    ``start``: a guess (P,) for the point at ``times[0]``, or ``None`` to take the end of the
    early-behaviour flow (up to ``tau_final``) from the model's initial densities — the balance
    point the network actually reaches.
    """
    _check_model(model)
    _concentrating(model)
    P = model.P
    ts = np.asarray([check_finite_number("times", s) for s in times], dtype=float)
    if ts.size < 1 or np.any(np.diff(ts) <= 0):
        bad_value("times", list(times), "a non-empty, strictly increasing list of times")
    if start is None:
        guess = early_behaviour(model, tau_final=tau_final, time=float(ts[0]),
                                save_at=[tau_final]).limit
    else:
        guess = np.asarray(start, dtype=float).reshape(-1)
        if guess.size != P or not np.all(np.isfinite(guess)):
            bad_value("start", start, f"None or {P} finite numbers")
    system = BalanceSystem(model)
    vs: list[np.ndarray] = []
    for k, tk in enumerate(ts):
        if k >= 2:
            guess = vs[-1] + (vs[-1] - vs[-2]) * (tk - ts[k - 1]) / (ts[k - 1] - ts[k - 2])
        elif k == 1:
            guess = vs[-1]
        v = system.at(float(tk)).polish(guess)
        if v is None:
            raise RuntimeError(f"the balance point is lost at t={tk:.6g} (a fold?)")
        vs.append(v)
    points = [system.at(float(tk)).point(v) for v, tk in zip(vs, ts, strict=True)]
    return BalanceTrajectory(model=model, t=ts, v=np.array(vs),
                             m=np.array([p.m for p in points]),
                             slope=np.array([p.slope for p in points]),
                             stable=np.array([p.stable for p in points]))


__all__ = ["BalancePoint", "BalanceTrajectory", "ConstrainedSolution", "EarlyBehaviour",
           "MultiplierCoupling", "balance_points", "balance_trajectory", "balanced_moments",
           "consistent_shift", "constrained_fokker_planck", "early_behaviour",
           "is_concentrating", "multipliers", "quadrature"]
