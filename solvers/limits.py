r"""The γ → ∞ limits of the mean-field PDE (MATH.md §4), computed numerically.

* :func:`early_behaviour` — the initial layer in fast time ``τ = γt``: the nonlocal transport
  ``∂_τ ρ_p = ∂_x(h_p ρ_p)``, ``h_p = Σ_j g_pj Φ_pj(x) m_j(τ)``, ``m_q = ∫Ψ_q ρ_q``, solved along
  characteristics ``dX/dτ = −h_p(X; m(τ))`` started from Gauss–Legendre nodes of the initial
  density (the moments are then quadratures over the initial positions, spectrally accurate).
  Its end point decides which balance point the network reaches.
* :func:`balance_points`, :func:`balance_trajectory` — γ = ∞ for a concentrating model: every
  population is a Dirac mass at ``v_p`` with ``h_p(v_p; Ψ(v), t) = 0``; with a time-dependent
  external input the points move and are followed by continuation in ``t``.
* :func:`constrained_fokker_planck` — γ = ∞ for a non-concentrating balanced model (constant
  ``Φ``): ``∂_t ρ_p = −∂_x((f_p − λ_p(t)) ρ_p) + D_p ∂_xx ρ_p`` with the multipliers ``λ_p`` fixed
  by the constraints ``h_p(m(t), t) = 0`` (a DAE), solved with the same Scharfetter–Gummel finite
  volumes and implicit steps as every solver (:func:`solvers.stepping.march`; λ found by Newton
  in each stage).
  Inconsistent initial data are first moved along the early-behaviour flow, which for constant
  ``Φ`` translates each population rigidly until the constraints hold.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize as so
from scipy.integrate import solve_ivp

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.expressions import x as x_symbol
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.implicit import StageProblem
from solvers.kernels import stage_kernel
from solvers.rescaled import Fields, initial_profiles
from solvers.stepping import StepState, march

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def is_concentrating(model: Model) -> bool:
    """True when some coupling factor ``Φ_pj`` (populations or inputs) depends on ``x``."""
    phis = [e for row in model.phi for e in row] + [e for inp in model.inputs for e in inp.phi]
    return any(sp_expr.has(x_symbol) for sp_expr in phis)


def _quadrature(domain: tuple[float, float], panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite 4-point Gauss–Legendre nodes and weights on ``domain``."""
    edges = np.linspace(domain[0], domain[1], panels + 1)
    half = np.diff(edges) / 2
    mid = (edges[1:] + edges[:-1]) / 2
    return ((mid[:, None] + half[:, None] * _GL_NODES).ravel(),
            (half[:, None] * _GL_WEIGHTS).ravel())


# ----------------------------------------------------------------------------- (a) early behaviour
@dataclass(frozen=True, eq=False)
class EarlyBehaviour:
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
    nodes, qw = _quadrature((a, b), panels)
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
@dataclass(frozen=True, eq=False)
class BalancePoint:
    """A γ = ∞ state of a concentrating model: Dirac masses at ``v`` (P,), moments ``m = Ψ(v)``.

    ``slope`` is ``A_p = ∂_x h_p(v_p)``; ``eigenvalues`` those of the Jacobian of
    ``v ↦ h(v; Ψ(v))`` (the Dirac dynamics ``dv/dτ = −h``): stable when every real part is > 0
    and every slope is > 0.
    """

    v: np.ndarray
    m: np.ndarray
    slope: np.ndarray
    eigenvalues: np.ndarray
    stable: bool


class _BalanceSystem:
    """``H_p(v) = h_p(v_p; m = Ψ(v), t)`` and its Jacobian, for a concentrating model."""

    def __init__(self, nm: NumericModel, fields: Fields) -> None:
        self.nm, self.fields = nm, fields

    def moments(self, v: np.ndarray) -> np.ndarray:
        return np.array([float(self.nm.psi[q](np.array([v[q]]))[0]) for q in range(self.nm.P)])

    def __call__(self, v: np.ndarray, time: float) -> np.ndarray:
        m_all = self.nm.all_moments(self.moments(v), time)
        return np.array([float(self.fields.field(p, np.array([v[p]]), m_all)[0])
                         for p in range(self.nm.P)])

    def jacobian(self, v: np.ndarray, time: float) -> np.ndarray:
        nm, P = self.nm, self.nm.P
        m = self.moments(v)
        m_all = nm.all_moments(m, time)
        jac = np.diag([float(self.fields.slope(p, np.array([v[p]]), m_all)[0]) for p in range(P)])
        step = 1e-6
        dpsi = np.array([(nm.psi[q](np.array([v[q] + step]))[0]
                          - nm.psi[q](np.array([v[q] - step]))[0]) / (2 * step) for q in range(P)])
        for q in range(P):
            bump = m_all.copy()
            bump[q] += 1.0
            for p in range(P):  # h is linear in m: an exact difference
                dh_dm = float(self.fields.field(p, np.array([v[p]]), bump)[0]
                              - self.fields.field(p, np.array([v[p]]), m_all)[0])
                jac[p, q] += dh_dm * dpsi[q]
        return jac

    def point(self, v: np.ndarray, time: float) -> BalancePoint:
        m = self.moments(v)
        m_all = self.nm.all_moments(m, time)
        slope = np.array([float(self.fields.slope(p, np.array([v[p]]), m_all)[0])
                          for p in range(self.nm.P)])
        eig = np.linalg.eigvals(self.jacobian(v, time))
        return BalancePoint(v=v.copy(), m=m, slope=slope, eigenvalues=eig,
                            stable=bool(np.all(slope > 0) and np.all(eig.real > 0)))

    def polish(self, v0: np.ndarray, time: float) -> np.ndarray | None:
        v = np.array(v0, dtype=float)
        for _ in range(50):
            r = self(v, time)
            try:
                step = np.linalg.solve(self.jacobian(v, time), r)
            except np.linalg.LinAlgError:
                return None
            v = v - step
            if np.max(np.abs(step)) <= 1e-15 * max(1.0, float(np.max(np.abs(v)))):
                break
        a, b = self.nm.model.domain
        if np.max(np.abs(self(v, time))) > 1e-12 or np.any(v < a) or np.any(v > b):
            return None
        return v


def _concentrating(model: Model) -> tuple[NumericModel, _BalanceSystem]:
    if not is_concentrating(model):
        bad_value("model", model.names, "a concentrating model (some Φ depends on x); for "
                  "constant Φ use constrained_fokker_planck")
    nm = numeric(model)
    return nm, _BalanceSystem(nm, Fields.of(nm))


def balance_points(model: Model, *, time: float = 0.0, starts: int = 64
                   ) -> tuple[BalancePoint, ...]:
    """Every balance point found at slow time ``time`` (sorted by ``v``), with its stability.

    P = 1: sign scan of ``H`` on the domain and Brent; P ≥ 2: Newton from ``starts`` Sobol points
    of the domain box. Balance points are computed from the model's numeric view only.
    """
    _check_model(model)
    time = check_finite_number("time", time)
    starts = check_int("starts", starts, minimum=1)
    nm, system = _concentrating(model)
    a, b = model.domain
    found: list[np.ndarray] = []
    if nm.P == 1:
        xs = np.linspace(a, b, 4001)
        values = np.array([system(np.array([v]), time)[0] for v in xs])
        for i in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0)[0]:
            if values[i] == values[i + 1] == 0:
                continue
            root = so.brentq(lambda v: system(np.array([v]), time)[0], xs[i], xs[i + 1],
                             xtol=1e-15)
            found.append(np.array([root]))
    else:
        from scipy.stats import qmc

        sample = a + (b - a) * qmc.Sobol(d=nm.P, scramble=True, seed=0).random(starts)
        for start in sample:
            out = so.root(lambda v: system(v, time), start, jac=lambda v: system.jacobian(v, time),
                          method="hybr")
            if out.success:
                found.append(out.x)
    points: list[np.ndarray] = []
    for v in found:
        polished = system.polish(v, time)
        if polished is not None and not any(np.max(np.abs(polished - w)) < 1e-9 for w in points):
            points.append(polished)
    points.sort(key=lambda v: tuple(v))
    return tuple(system.point(v, time) for v in points)


@dataclass(frozen=True, eq=False)
class BalanceTrajectory:
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
    nm, system = _concentrating(model)
    ts = np.asarray([check_finite_number("times", s) for s in times], dtype=float)
    if ts.size < 1 or np.any(np.diff(ts) <= 0):
        bad_value("times", list(times), "a non-empty, strictly increasing list of times")
    if start is None:
        guess = early_behaviour(model, tau_final=tau_final, time=float(ts[0]),
                                save_at=[tau_final]).limit
    else:
        guess = np.asarray(start, dtype=float).reshape(-1)
        if guess.size != nm.P or not np.all(np.isfinite(guess)):
            bad_value("start", start, f"None or {nm.P} finite numbers")
    vs: list[np.ndarray] = []
    for k, tk in enumerate(ts):
        if k >= 2:
            guess = vs[-1] + (vs[-1] - vs[-2]) * (tk - ts[k - 1]) / (ts[k - 1] - ts[k - 2])
        elif k == 1:
            guess = vs[-1]
        v = system.polish(guess, float(tk))
        if v is None:
            raise RuntimeError(f"the balance point is lost at t={tk:.6g} (a fold?)")
        vs.append(v)
    points = [system.point(v, float(tk)) for v, tk in zip(vs, ts, strict=True)]
    return BalanceTrajectory(model=model, t=ts, v=np.array(vs),
                             m=np.array([p.m for p in points]),
                             slope=np.array([p.slope for p in points]),
                             stable=np.array([p.stable for p in points]))


# ----------------------------------------------------------------------------- (c) constrained FP
@dataclass(frozen=True, eq=False)
class ConstrainedSolution:
    """γ = ∞ solution of a balanced, non-concentrating model.

    ``rho`` (nt, P, M) at centres ``x``; ``multipliers`` (nt, P) the ``λ_p(t) = lim γ h_p``;
    ``mass``, ``mean``, ``var``, ``m`` (nt, P); ``shift`` (P,) the initial translation that made
    the initial data consistent (the γ = ∞ initial layer).
    """

    model: Model
    t: np.ndarray
    x: np.ndarray
    edges: np.ndarray
    rho: np.ndarray
    multipliers: np.ndarray
    mass: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    m: np.ndarray
    shift: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _constraint(nm: NumericModel, fields: Fields, m: np.ndarray, time: float) -> np.ndarray:
    """``h_p(m, t)`` (independent of x for constant Φ)."""
    m_all = nm.all_moments(m, time)
    return np.array([float(fields.field(p, np.zeros(1), m_all)[0]) for p in range(nm.P)])


def balanced_moments(nm: NumericModel, fields: Fields, time: float) -> np.ndarray:
    """The moments ``m*`` with ``h_p(m*, t) = 0`` (``h`` is affine in ``m`` for constant Φ)."""
    zero = _constraint(nm, fields, np.zeros(nm.P), time)
    K = np.column_stack([_constraint(nm, fields, np.eye(nm.P)[q], time) - zero
                         for q in range(nm.P)])
    return np.linalg.solve(K, -zero)


@dataclass(frozen=True, eq=False)
class MultiplierCoupling:
    r"""The stage of the constrained equation: ``δ_p = base_p + λ_p·gaps_p`` (``−ΔF_p/D_p`` and
    ``Δx/D_p``), the unknowns ``λ`` fixed by ``w·ρ(λ) = m*(t)`` (:func:`balanced_moments`)."""

    base: np.ndarray
    gaps: np.ndarray
    goal: Callable[[float], np.ndarray]

    def differences(self, lam: np.ndarray, time: float) -> np.ndarray:
        return self.base + np.asarray(lam, dtype=float)[:, None] * self.gaps

    def derivative(self, lam: np.ndarray, time: float) -> np.ndarray:
        P = self.base.shape[0]
        out = np.zeros((P, P, self.base.shape[1]))
        out[np.arange(P), np.arange(P)] = self.gaps
        return out

    def target(self, lam: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        return self.goal(time), np.zeros((lam.size, lam.size))


def consistent_shift(model: Model, profiles: Sequence[Callable[[np.ndarray], np.ndarray]], *,
                     time: float = 0.0, panels: int = 400) -> np.ndarray:
    """Translations ``s_p`` reached by the early-behaviour flow (rigid for constant Φ).

    Solves ``ds_p/dτ = −h_p(m(s))``, ``m_q(s) = ∫Ψ_q(x + s_q) ρ_q(x) dx``, to equilibrium, then
    polishes ``h(m(s)) = 0`` by Newton.
    """
    nm = numeric(model)
    fields = Fields.of(nm)
    nodes, qw = _quadrature(model.domain, panels)
    weights = np.array([qw * np.asarray(fn(nodes), float) for fn in profiles])
    weights /= weights.sum(axis=1, keepdims=True)

    def h_of(s: np.ndarray) -> np.ndarray:
        m = np.array([nm.psi[q](nodes + s[q]) @ weights[q] for q in range(nm.P)])
        return _constraint(nm, fields, m, time)

    s = np.zeros(nm.P)
    for _ in range(20):
        out = solve_ivp(lambda _t, s: -h_of(s), (0.0, 50.0), s, method="LSODA", rtol=1e-10,
                        atol=1e-12)
        s = out.y[:, -1]
        if np.max(np.abs(h_of(s))) < 1e-6:
            break
    sol = so.root(h_of, s, method="hybr", tol=1e-14)
    if np.max(np.abs(h_of(sol.x))) > 1e-11:
        raise RuntimeError("the early-behaviour translation did not reach the balance manifold")
    return sol.x


def multipliers(model: Model, rho: np.ndarray, edges: np.ndarray, time: float) -> np.ndarray:
    r"""``λ_p`` from the differentiated constraint, for densities ``rho`` (P, M) on ``edges``.

    ``Σ_q K_pq (a_q − λ_q b_q) = −∂_t h_p`` with ``K_pq = ∂h_p/∂m_q``,
    ``a_q = ∫Ψ_q' f_q ρ_q + D_q ∫Ψ_q'' ρ_q``, ``b_q = ∫Ψ_q' ρ_q`` (from ``m_q' = ∫Ψ_q ∂_t ρ_q``).
    """
    import sympy as sp

    nm = numeric(model)
    fields = Fields.of(nm)
    P = nm.P
    xc = (edges[1:] + edges[:-1]) / 2
    widths = np.diff(edges)
    d1 = [sp.lambdify(x_symbol, sp.diff(e, x_symbol), "numpy") for e in model.psi]
    d2 = [sp.lambdify(x_symbol, sp.diff(e, x_symbol, 2), "numpy") for e in model.psi]
    b = np.array([(np.broadcast_to(d1[q](xc), xc.shape) * rho[q]) @ widths for q in range(P)])
    a = np.array([(np.broadcast_to(d1[q](xc), xc.shape) * nm.f[q](xc) * rho[q]) @ widths
                  + nm.D[q] * (np.broadcast_to(d2[q](xc), xc.shape) * rho[q]) @ widths
                  for q in range(P)])
    m = np.array([nm.psi[q](xc) @ (rho[q] * widths) for q in range(P)])
    base = _constraint(nm, fields, m, time)
    K = np.empty((P, P))
    for q in range(P):
        bump = m.copy()
        bump[q] += 1.0
        K[:, q] = _constraint(nm, fields, bump, time) - base
    step = 1e-5
    dh_dt = (_constraint(nm, fields, m, time + step) - _constraint(nm, fields, m, max(
        time - step, 0.0))) / (time + step - max(time - step, 0.0))
    return np.linalg.solve(K * b[None, :], K @ a + dh_dt)


def constrained_fokker_planck(model: Model, *, t_final: float, cells: int = 400,
                              initial: Any = None, scheme: str = "bdf2",
                              dt: float | None = None, rtol: float = 1e-6, atol: float = 1e-10,
                              save_at: Sequence[float] | None = None,
                              max_steps: int = 100_000,
                              method: str | None = None) -> ConstrainedSolution:
    r"""The γ = ∞ DAE of a balanced non-concentrating model, solved with SG finite volumes.

    ``∂_t ρ_p = ∂_x(D_p ∂_x ρ_p + (λ_p − f_p) ρ_p)`` on the model's domain (zero flux), with
    ``λ(t)`` solving ``h_p(m(t), t) = 0`` at every implicit step (Newton on P unknowns).
    ``initial`` is translated first onto the constraint (:func:`consistent_shift`). The time
    steps are those of :mod:`solvers.stepping` (``scheme``, ``rtol``/``atol`` with their meaning
    there, the error measured on the densities only); ``save_at`` follows the rules of
    :func:`solvers.solve`. ``method`` is a deprecated name of ``scheme``.
    """
    _check_model(model)
    if is_concentrating(model):
        bad_value("model", model.names, "a non-concentrating model (every Φ constant in x); "
                  "for a concentrating model use balance_trajectory or solve_rescaled")
    t_final = check_finite_number("t_final", t_final, positive=True)
    cells = check_int("cells", cells, minimum=8)
    name = "scheme"
    if method is not None:
        warnings.warn("constrained_fokker_planck(method=...) is deprecated; use scheme=...",
                      DeprecationWarning, stacklevel=2)
        scheme, name = method, "method"
    if scheme not in ("bdf2", "be"):
        bad_value(name, scheme, "'bdf2' or 'be'")
    rtol = check_finite_number("rtol", rtol, positive=True)
    atol = check_finite_number("atol", atol, positive=True)
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    nm = numeric(model)
    fields = Fields.of(nm)
    P = nm.P
    profiles = initial_profiles(nm, initial)
    shift = consistent_shift(model, profiles)
    a, b = model.domain
    edges = np.linspace(a, b, cells + 1)
    xc = (edges[1:] + edges[:-1]) / 2
    widths = np.diff(edges)
    psi = np.array([nm.psi[q](xc) for q in range(P)])

    def shifted(s: np.ndarray) -> np.ndarray:
        q = np.array([np.asarray(profiles[p](xc - s[p]), float) for p in range(P)])
        return q / (q @ widths)[:, None]

    # consistent on the grid itself: the discrete moments satisfy the constraint
    def discrete(s: np.ndarray) -> np.ndarray:
        return _constraint(nm, fields, (psi * shifted(s)) @ widths, 0.0)

    polish = so.root(discrete, shift, method="hybr", tol=1e-14)
    if np.max(np.abs(discrete(polish.x))) < np.max(np.abs(discrete(shift))):
        shift = polish.x
    q0 = shifted(shift)

    lam0 = multipliers(model, q0, edges, 0.0)
    gaps = np.diff(xc)
    drift = np.array([nm.F[p].integrate_between(xc[:-1], xc[1:]) for p in range(P)])
    kernel_name, kernel = stage_kernel("auto")
    coupling = MultiplierCoupling(base=-drift / nm.D[:, None],
                                  gaps=gaps[None, :] / nm.D[:, None],
                                  goal=lambda time: balanced_moments(nm, fields, time))
    problem = StageProblem(scale=nm.D[:, None] / gaps[None, :], widths=widths,
                           weights=psi * widths, coupling=coupling, kernel=kernel)
    from solvers.solve import output_times

    start = StepState(t=0.0, rho=q0, m=lam0, f=problem.operator(q0, lam0, 0.0))
    states, counters = march(lambda _state, _h: problem, start,
                             output_times(save_at, t_final, P * cells, dt), scheme=scheme,
                             dt=dt, rtol=rtol, atol=atol, max_steps=max_steps)
    info = {"scheme": scheme, "kernel": kernel_name, "rtol": rtol, "atol": atol, **counters}
    t = np.array([s.t for s in states])
    rho = np.array([s.rho for s in states])
    lam = np.array([s.m for s in states])
    mass = rho @ widths
    mean = (rho @ (xc * widths)) / mass
    var = np.einsum("tpi,tpi,i->tp", rho, (xc - mean[..., None]) ** 2, widths) / mass
    m = np.einsum("tpi,pi,i->tp", rho, psi, widths)
    return ConstrainedSolution(model=model, t=t, x=xc, edges=edges, rho=rho, multipliers=lam,
                               mass=mass, mean=mean, var=var, m=m, shift=shift, info=info)
