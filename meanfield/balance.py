r"""Balance points: the γ → ∞ states of a model (docs/mathematics.md §4), computed numerically.

In the fast time ``τ = γt`` every agent of population ``p`` follows ``dx/dτ = -h_p(x; m, t)``
with ``h_p(x; m, t) = Σ_j g_pj Φ_pj(x) m_j`` (populations, then external inputs).

*Concentrating* (every ``h_p`` depends on ``x``): population ``p`` collapses onto a stable zero
``v_p`` of its field and ``m_q = Ψ_q(v_q)``, so a balance point solves the P equations

.. math:: H_p(v) = h_p(v_p;\, Ψ(v),\, t) = 0 .

With the slopes ``A_p = ∂_x h_p(v_p)`` and ``C_pr = g_pr Φ_pr(v_p) Ψ_r'(v_r)`` the Jacobian of
``H`` is ``diag(A) + C``; the fixed-point map ``v ↦ T(v)`` (``T_p(v)`` the zero of
``h_p(·; Ψ(v))`` near ``v_p``) has Jacobian ``∂T/∂v = -diag(A)^{-1} C``. A point is *stable* when
every ``A_p > 0`` and that Jacobian has spectral radius < 1.

*Non-concentrating* (no ``h_p`` depends on ``x``): the balance manifold is the affine constraint
``K m + e(t) = 0`` with ``K_pq = g_pq Φ_pq``; :func:`balanced_moments` solves it.

This is the one numeric balance-point engine of the package: :mod:`solvers`, the studies and the
CLI use it, and :mod:`asymptotics` adds the symbolic formulas on top of it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from typing import Any

import numpy as np
import scipy.optimize as so

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.expressions import x
from meanfield.model import Model
from meanfield.numeric import pointwise

ROOT_TOL = 1e-12
"""Largest accepted ``max_p |H_p(v)|`` of a balance point (times ``max(1, domain length)``)."""


def check_model(model: Any) -> Model:
    """``model`` must be a :class:`meanfield.Model`."""
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def is_concentrating(model: Model) -> bool:
    """True when every field ``h_p`` depends on ``x``, False when none does.

    A model where only some populations' fields depend on ``x`` has no balance of either kind and
    is rejected with a ``ValueError``.
    """
    check_model(model)
    depends = [model.field(p).has(x) for p in range(model.P)]
    if all(depends):
        return True
    if not any(depends):
        return False
    bad_value("model", model.names, "populations whose fields h_p all depend on x "
              f"(concentrating) or all do not (non-concentrating balance); got {depends}")


@dataclass(frozen=True, eq=False)
class BalancePoint:
    """One balance point: Dirac masses at ``v`` (P,) with moments ``m = Ψ(v)``.

    ``slope`` the ``A_p = ∂_x h_p(v_p)``; ``jacobian`` that of ``H`` (``diag(A) + C``);
    ``iteration_jacobian`` that of the fixed-point map (``-diag(A)^{-1} C``); ``residual`` the
    largest ``|H_p(v)|``.
    """

    v: np.ndarray
    m: np.ndarray
    slope: np.ndarray
    jacobian: np.ndarray
    iteration_jacobian: np.ndarray
    residual: float

    @property
    def iteration_radius(self) -> float:
        """Spectral radius of the fixed-point map ``v ↦ T(v)``."""
        return float(np.max(np.abs(np.linalg.eigvals(self.iteration_jacobian))))

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the Jacobian of ``H`` (the Dirac dynamics ``dv/dτ = -H(v)``)."""
        return np.linalg.eigvals(self.jacobian)

    @property
    def concentrating(self) -> bool:
        """Every ``∂_x h_p(v_p) > 0``: each population collapses onto its point."""
        return bool(np.all(self.slope > 0))

    @property
    def stable(self) -> bool:
        """Every slope > 0 and the fixed-point map contracts (spectral radius < 1)."""
        return self.concentrating and self.iteration_radius < 1

    def __repr__(self) -> str:
        return (f"BalancePoint(v={np.round(self.v, 10).tolist()}, slope="
                f"{np.round(self.slope, 6).tolist()}, radius={self.iteration_radius:.4g}, "
                f"{'stable' if self.stable else 'unstable'})")


@dataclass(frozen=True, eq=False, kw_only=True)
class BalancePoints:
    """Every balance point of a model at slow time ``time``.

    ``all`` the points inside the domain (sorted by ``v``); ``principal`` the stable point with the
    smallest iteration radius (an unstable one only when none is stable); ``outside`` points found
    beyond the domain ends when none lies inside. Non-concentrating: ``all`` is empty and
    ``moments`` holds the balanced ``m`` (:func:`balanced_moments`).
    """

    model: Model
    time: float
    concentrating: bool
    all: tuple[BalancePoint, ...]
    moments: np.ndarray | None = None
    outside: tuple[np.ndarray, ...] = ()

    @property
    def principal(self) -> BalancePoint:
        if not self.all and not self.concentrating:
            bad_value("model", self.model.names, "a concentrating model (this one has a "
                      "non-concentrating balance: use .moments)")
        if not self.all and self.outside:
            shown = [np.round(v, 6).tolist() for v in self.outside]
            bad_value("model", self.model.names, f"a balance point inside the domain "
                      f"{self.model.domain}: the balance point(s) v={shown} lie outside it, so the "
                      "stationary mass piles up on the wall instead of concentrating; widen the "
                      "domain")
        if not self.all:
            bad_value("model", self.model.names, "a model with a balance point h_p(v_p) = 0 in "
                      f"its domain {self.model.domain} (none was found)")
        return min(self.all, key=lambda b: (not b.stable, b.iteration_radius, b.v.tolist()))

    @property
    def v(self) -> np.ndarray:
        """Coordinates ``v_p`` of the principal balance point."""
        return self.principal.v

    @property
    def stable(self) -> tuple[BalancePoint, ...]:
        return tuple(b for b in self.all if b.stable)

    def to_xarray(self) -> Any:
        """Every point found (``point`` × ``population``) with its stability data.

        Built by :func:`solvers.limits_io.balance_points_dataset` (CF metadata on every variable,
        the model and the package version in the attributes), like every result of the package.
        """
        from solvers.limits_io import balance_points_dataset

        return balance_points_dataset(self)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> BalancePoints:
        """The balance points of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.limits_io import read_balance_points

        return read_balance_points(ds, path)


class BalanceSystem:
    """``H_p(v) = h_p(v_p; Ψ(v), t)`` of a model at slow time ``time``, with its derivatives."""

    def __init__(self, model: Model, time: float = 0.0) -> None:
        self.model, self.time = check_model(model), float(time)
        self._c = pointwise(model)  # hashes the model: build a system once, then use :meth:`at`
        self.external = self.external_at(self.time)

    def external_at(self, time: float) -> np.ndarray:
        """The moments of the external inputs at ``time``."""
        return np.array([float(fn(float(time))) for fn in self._c.external])

    def at(self, time: float) -> BalanceSystem:
        """The same system at another slow time (no recompilation)."""
        other = object.__new__(BalanceSystem)
        other.model, other.time, other._c = self.model, float(time), self._c
        other.external = self.external_at(time)
        return other

    def stable_zero(self, p: int, m_all: np.ndarray, guess: float) -> float:
        """The zero of ``h_p(·; m)`` reached by Newton from ``guess`` (``m_all`` the J moments).

        ``ValueError`` when Newton meets ``∂_x h_p ≤ 0`` (no stable zero near ``guess``).
        """
        h, dh = self._c.h[p], self._c.dh[p]
        a, b = self.model.domain
        span, v = b - a, float(guess)
        for _ in range(60):
            slope = float(dh(v, *m_all))
            if not np.isfinite(slope) or slope <= 0:
                break
            step = float(np.clip(float(h(v, *m_all)) / slope, -span / 4, span / 4))
            v -= step
            if abs(step) <= 4e-16 * max(1.0, abs(v)):
                return v
        raise ValueError(f"population {self.model.names[p]!r} has no stable balance point near "
                         f"x={guess:.6g} (h_p must vanish with ∂_x h_p > 0)")

    def moments(self, v: np.ndarray) -> np.ndarray:
        """``m_q = Ψ_q(v_q)``."""
        return np.array([float(fn(float(vq))) for fn, vq in zip(self._c.psi, v, strict=True)])

    def _all(self, v: np.ndarray) -> np.ndarray:
        return np.concatenate([self.moments(v), self.external])

    def __call__(self, v: np.ndarray) -> np.ndarray:
        m_all = self._all(v)
        return np.array([float(h(float(v[p]), *m_all)) for p, h in enumerate(self._c.h)])

    def slopes(self, v: np.ndarray) -> np.ndarray:
        """``A_p = ∂_x h_p(v_p; Ψ(v))``."""
        m_all = self._all(v)
        return np.array([float(dh(float(v[p]), *m_all)) for p, dh in enumerate(self._c.dh)])

    def coupling(self, v: np.ndarray) -> np.ndarray:
        """``C_pr = g_pr Φ_pr(v_p) Ψ_r'(v_r)`` (``h`` is linear in ``m``)."""
        c, P = self._c, self.model.P
        dpsi = np.array([float(c.dpsi[r](float(v[r]))) for r in range(P)])
        return np.array([[c.g[p, r] * float(c.phi[p][r](float(v[p]))) * dpsi[r]
                          for r in range(P)] for p in range(P)])

    def jacobian(self, v: np.ndarray) -> np.ndarray:
        """``∂H/∂v = diag(A) + C``."""
        return np.diag(self.slopes(v)) + self.coupling(v)

    def point(self, v: np.ndarray) -> BalancePoint:
        v = np.array(v, dtype=float)
        slope, coupling = self.slopes(v), self.coupling(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            iteration = -coupling / slope[:, None]
        return BalancePoint(v=v, m=self.moments(v), slope=slope,
                            jacobian=np.diag(slope) + coupling, iteration_jacobian=iteration,
                            residual=float(np.max(np.abs(self(v)))))

    def tolerance(self) -> float:
        a, b = self.model.domain
        return ROOT_TOL * max(1.0, b - a)

    def polish(self, v0: np.ndarray, *, inside: bool = True) -> np.ndarray | None:
        """Newton from ``v0``; ``None`` unless it converges to a root (inside the domain)."""
        v = np.array(v0, dtype=float)
        with np.errstate(all="ignore"):
            for _ in range(50):
                try:
                    step = np.linalg.solve(self.jacobian(v), self(v))
                except np.linalg.LinAlgError:
                    return None
                if not np.all(np.isfinite(step)):
                    return None
                v = v - step
                if np.max(np.abs(step)) <= 1e-15 * max(1.0, float(np.max(np.abs(v)))):
                    break
            residual = float(np.max(np.abs(self(v))))
        a, b = self.model.domain
        if not (np.isfinite(residual) and residual <= self.tolerance()):
            return None
        if inside and (np.any(v < a) or np.any(v > b)):
            return None
        return v


def stable_zero(model: Model, p: int, m_all: np.ndarray, guess: float) -> float:
    """:meth:`BalanceSystem.stable_zero` of ``model`` (for repeated calls build the system once)."""
    return BalanceSystem(model).stable_zero(p, m_all, guess)


def balanced_moments(model: Model, time: float = 0.0) -> np.ndarray:
    """The moments ``m*`` with ``h_p(m*, t) = 0`` for constant Φ: ``K m* = -e(t)``."""
    c = pointwise(check_model(model))
    P = model.P
    external = [float(fn(time)) for fn in c.external]

    def h(m: np.ndarray) -> np.ndarray:
        return np.array([float(c.h[p](0.0, *m, *external)) for p in range(P)])

    zero = h(np.zeros(P))
    K = np.column_stack([h(np.eye(P)[q]) - zero for q in range(P)])
    if abs(np.linalg.det(K)) <= 1e-14 * max(1.0, float(np.max(np.abs(K)))) ** P:
        bad_value("model", model.names, "an invertible balance matrix K_pq = g_pq Φ_pq (got a "
                  "singular one: the balance constraint does not fix the moments)")
    return np.linalg.solve(K, -zero)


def _roots(system: BalanceSystem, lo: float, hi: float, starts: int) -> list[np.ndarray]:
    P = system.model.P
    if P == 1:
        grid = np.linspace(lo, hi, 4001)
        with np.errstate(all="ignore"):
            values = np.array([system(np.array([v]))[0] for v in grid])
        roots = [np.array([grid[i]]) for i in np.nonzero(values == 0)[0]]
        for i in np.nonzero(values[:-1] * values[1:] < 0)[0]:
            root = so.brentq(lambda v: system(np.array([v]))[0], grid[i], grid[i + 1],
                             xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
            roots.append(np.array([root]))
        return roots
    from scipy.stats import qmc

    exponent = int(np.ceil(np.log2(starts)))
    sample = qmc.Sobol(d=P, scramble=True, seed=0).random_base2(exponent)[:starts]
    found = []
    for start in [np.full(P, (lo + hi) / 2), *(lo + (hi - lo) * sample)]:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = so.root(system, start, jac=system.jacobian, method="hybr",
                          options={"xtol": 1e-14})
        if np.all(np.isfinite(out.x)):
            found.append(out.x)
    return found


def _distinct(points: list[np.ndarray], v: np.ndarray, span: float) -> bool:
    return not any(np.max(np.abs(v - w)) < 1e-8 * max(1.0, span) for w in points)


@lru_cache(maxsize=64)
def _balance(model: Model, time: float, starts: int) -> BalancePoints:
    if not is_concentrating(model):
        return BalancePoints(model=model, time=time, concentrating=False, all=(),
                             moments=balanced_moments(model, time))
    system = BalanceSystem(model, time)
    lo, hi = model.domain
    span = hi - lo
    inside: list[np.ndarray] = []
    for root in _roots(system, lo, hi, starts):
        v = system.polish(root)
        if v is not None and _distinct(inside, v, span):
            inside.append(v)
    inside.sort(key=lambda v: v.tolist())
    outside: list[np.ndarray] = []
    if not inside:  # diagnose: balance points beyond the ends of the domain
        for root in _roots(system, lo - 10 * span, hi + 10 * span, starts):
            v = system.polish(root, inside=False)
            with np.errstate(all="ignore"):  # det 0 where the read-outs saturate: no root
                det = float(np.linalg.det(system.jacobian(v))) if v is not None else 0.0
            if v is not None and np.isfinite(det) and det != 0 and _distinct(outside, v, span):
                outside.append(v)
    return BalancePoints(model=model, time=time, concentrating=True,
                         all=tuple(system.point(v) for v in inside), outside=tuple(outside))


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64) -> BalancePoints:
    """Every balance point of ``model`` with external inputs frozen at ``time``.

    P = 1: a sign scan of ``H`` on the domain and Brent's method; P ≥ 2: Powell's hybrid method
    from the centre and ``starts`` (scrambled, seeded) Sobol points of the domain box. Every root
    is polished by Newton to ``|H| ≤`` :data:`ROOT_TOL`. See :class:`BalancePoints`.
    """
    check_model(model)
    time = check_finite_number("time", time)
    starts = check_int("starts", starts, minimum=1)
    return _balance(model, time, starts)


__all__ = ["ROOT_TOL", "BalancePoint", "BalancePoints", "BalanceSystem", "balance_points",
           "balanced_moments", "check_model", "is_concentrating", "stable_zero"]
