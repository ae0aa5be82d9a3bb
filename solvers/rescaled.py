r"""The exact mean-field PDE in the moving, zoomed frame (MATH.md §6), at a cost independent of γ.

With ``x = c_p(t) + ε y``, ``ε = γ^{-1/2}`` and ``ρ_p(t, x) = ε⁻¹ q_p(t, y)``, the mean-field PDE
``∂_t ρ = ∂_x(D ∂_x ρ + ∂_x U ρ)``, ``∂_x U_p = −f_p + γ h_p``, becomes, *exactly*,

.. math::
    \partial_t q = \varepsilon^{-2}\,\partial_y\big(D\,\partial_y q + \partial_y V\, q\big),
    \qquad \partial_y V(y) = -\varepsilon f(c + \varepsilon y)
        + \varepsilon^{-1} h(c + \varepsilon y) + \varepsilon\, c'(t),

a Fokker–Planck equation in ``y`` whose drift is O(1) for every γ (``ε⁻¹ h ≈ h'(c) y`` near the
balance point ``c``, the zero of ``h_p(·; m(t), t)`` with ``∂_x h_p > 0``). It is discretised
exactly like the native solver: Scharfetter–Gummel fluxes built from potential differences
(Gauss–Legendre integrals of ``∂_y V`` between centres, never differences of large
antiderivatives), so the discrete equilibrium is ``exp(−V/D)`` at the centres and the implicit
operator is an M-matrix; the coupling moments (and with them the frame ``c``) are solved
implicitly by Newton at every step. Time stepping: backward Euler (``"be"``) or variable-step
BDF2 (``"bdf2"``), error-controlled; both positive and conservative to round-off (BDF2's
stage solutions are limited where they dip below zero by no more than the step's local error
estimate, and the step is redone with backward Euler otherwise: the same rule as the native
solver, counted in ``info["positivity_clips"]`` and ``info["positivity_fallbacks"]``). The
y-window of each population is ``mean ± window·std`` of its current profile (clipped to the
domain) and is moved by a conservative, positive remap (clamped cubic spline of the cumulative
mass, linear in ``q``) when the profile drifts or shrinks.

The machinery (:func:`march`) is generic in the frame: with scale 1 and centre 0 it is the
native solver in ``x``, and :mod:`solvers.limits` reuses it for the γ = ∞ constrained
Fokker–Planck equation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.linalg.lapack import dgtsv

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.fv import bernoulli, divergence_bands

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(4)
NEWTON_TOL = 1e-12
"""Relative tolerance of the implicit moments (Newton on the P unknowns): a step is rejected
above it. Newton iterates further, down to round-off (``NEWTON_TARGET``) or until it stagnates:
the frame centre follows the moments and any noise in them shows as a jitter ``δc/ε`` of the
zoomed profile, which the error control would otherwise see."""
NEWTON_TARGET = 1e-15

Gradient = Callable[[int, np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]
"""``(p, z, centre, theta, t) -> ∂_x U_p`` at ``x = centre_p + s z`` for parameters ``theta``."""


# ----------------------------------------------------------------------------- finite volumes
def frame_bands(grad: np.ndarray, edges: np.ndarray, scale: float, velocity: float, D: float,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Tridiagonal bands of ``L q = s⁻² ∂_z(D ∂_z q + ∂_z V q)``, ``∂_z V = s(∂_x U + w)``.

    ``grad`` holds ``∂_x U`` at the Gauss nodes of every gap between centres (see
    :func:`gap_nodes`); the potential differences are their Gauss–Legendre integrals.
    """
    z = (edges[1:] + edges[:-1]) / 2
    gaps = np.diff(z)
    dV = scale * (gaps / 2) * ((grad + velocity) @ _WEIGHTS)
    delta = dV / D
    coeff = D / gaps
    a, b = coeff * bernoulli(delta), coeff * bernoulli(-delta)
    lower, diag, upper = divergence_bands(a[None], b[None], np.diff(edges))
    inv = 1.0 / scale**2
    return lower[0] * inv, diag[0] * inv, upper[0] * inv


def gap_nodes(edges: np.ndarray) -> np.ndarray:
    """Gauss–Legendre nodes (M−1, 4) on each gap between consecutive cell centres."""
    z = (edges[1:] + edges[:-1]) / 2
    return ((z[1:] + z[:-1]) / 2)[:, None] + (np.diff(z) / 2)[:, None] * _NODES


def solve_implicit(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, alpha: float,
                   dt: float, rhs: np.ndarray) -> np.ndarray:
    """``(α I − dt L) q = rhs`` for tridiagonal ``L`` (LAPACK ``dgtsv``, O(M))."""
    _, _, _, sol, info = dgtsv(-dt * lower, alpha - dt * diag, -dt * upper, rhs)
    if info != 0:
        raise np.linalg.LinAlgError(f"tridiagonal solve failed (info={info})")
    return sol


def remap(edges: np.ndarray, q: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Conservative remap of cell averages: clamped cubic spline of the cumulative mass.

    Linear in ``q`` (so remapping every stored time level commutes with the divided differences
    of the error control) and fourth order on smooth profiles; the tiny negative values it can
    create far in the tails are set to zero. Mass outside the new window goes into its end
    cells, so the total is kept exactly.
    """
    widths = np.diff(edges)
    cumulative = np.concatenate([[0.0], np.cumsum(q * widths)])
    total = cumulative[-1]
    inside = np.clip(new_edges, edges[0], edges[-1])
    spline = CubicSpline(edges, cumulative, bc_type=((1, float(q[0])), (1, float(q[-1]))))
    values = spline(inside)
    values[0], values[-1] = 0.0, total
    out = np.maximum(np.diff(values), 0.0)
    return out * (total / out.sum()) / np.diff(new_edges)


# ----------------------------------------------------------------------------- time marching
@dataclass(frozen=True, eq=False)
class Level:
    """One time level: densities ``q`` (P, M) on ``edges`` (P, M+1), parameters, frame centres."""

    t: float
    q: np.ndarray
    theta: np.ndarray
    centre: np.ndarray


@dataclass(frozen=True, eq=False)
class Frame:
    """What :func:`march` needs to know about a problem (all callables numeric).

    ``gradient(p, z, centre, theta, t)`` is ``∂_x U_p`` at ``x = centre_p + scale·z``;
    ``centres(theta, t, guess)`` the frame centres (zeros for a fixed frame);
    ``residual(theta, q, edges, centre, t)`` the P equations that fix ``theta``;
    ``window(level, edges)`` new edges or ``None`` (no remap); ``scale`` is ``s`` in
    ``x = c + s z``; ``control_theta=False`` leaves the parameters out of the error control
    (algebraic multipliers of an index-2 DAE, which follow the densities).
    """

    D: np.ndarray
    scale: float
    gradient: Gradient
    centres: Callable[[np.ndarray, float, np.ndarray], np.ndarray]
    residual: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]
    window: Callable[[Level, np.ndarray], np.ndarray | None] = field(
        default=lambda level, edges: None)
    control_theta: bool = True


def _coefficients(order: int, dt: float, dt_prev: float) -> tuple[float, float, float]:
    """BDF coefficients ``α0 u_{n+1} − α1 u_n + α2 u_{n−1} = dt u'`` (variable-step BDF2)."""
    if order == 1:
        return 1.0, 1.0, 0.0
    w = dt / dt_prev
    return (1 + 2 * w) / (1 + w), 1 + w, w * w / (1 + w)


@dataclass(frozen=True, eq=False)
class Attempt:
    """A converged implicit step: the (limited) new level, and what limiting removed.

    ``raw`` is the stage solution before limiting (``None`` when it was already ≥ 0) and
    ``negative`` (P,) the mass ``Σ min(q, 0) Δy ≤ 0`` that limiting removed per population.
    """

    level: Level
    raw: np.ndarray | None
    negative: np.ndarray


def _limited(q: np.ndarray, widths: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """``max(q, 0)`` rescaled to mass ``target`` (exact: ≥ 0, mass to round-off), and ``Σ min(q, 0) Δy``.

    ``q`` itself is returned (rescaled) when it has no negative entry.
    """
    negative = float(np.minimum(q, 0.0) @ widths) if q.min() < 0 else 0.0
    if negative < 0:
        q = np.maximum(q, 0.0)
    mass = float(q @ widths)
    if not mass > 0:
        raise FloatingPointError("a population lost all its mass in the implicit solve")
    return q * (target / mass), negative


def _step(frame: Frame, history: list[Level], edges: np.ndarray, t_new: float, order: int,
          theta_guess: np.ndarray, cache: dict[str, Any], max_iter: int = 30) -> Attempt | None:
    """One implicit step; ``theta`` by Newton with a finite-difference Jacobian (P unknowns).

    The densities entering the moment equations are limited (:func:`_limited`): the implicit
    map ``θ ↦ q(θ)`` is the stage solve followed by ``max(·, 0)`` and the rescaling to the
    conserved mass, so the returned level is ≥ 0, conserves mass to round-off and its ``θ`` and
    frame centre are consistent with the limited densities. Whether the limiting was small
    enough to keep is decided by the caller (:func:`_clip_allowed`).
    """
    now = history[-1]
    dt = t_new - now.t
    dt_prev = now.t - history[-2].t if order == 2 else 1.0
    a0, a1, a2 = _coefficients(order, dt, dt_prev)
    rhs = a1 * now.q - (a2 * history[-2].q if order == 2 else 0.0)
    c_hist = a1 * now.centre - (a2 * history[-2].centre if order == 2 else 0.0)
    nodes = [gap_nodes(e) for e in edges]
    widths = np.diff(edges, axis=1)
    target = cache["mass"]  # the conserved masses (BDF2 would extrapolate any drift)
    P = now.q.shape[0]

    def solve(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[Any, Any]]:
        centre = frame.centres(theta, t_new, now.centre)
        velocity = (a0 * centre - c_hist) / dt
        raw = np.empty_like(now.q)
        q = np.empty_like(now.q)
        negative = np.zeros(P)
        for p in range(P):
            grad = frame.gradient(p, nodes[p], centre, theta, t_new)
            bands = frame_bands(grad, edges[p], frame.scale, velocity[p], frame.D[p])
            raw[p] = solve_implicit(*bands, a0, dt, rhs[p])
            # the solve conserves mass exactly only in exact arithmetic: rescale (and limit)
            q[p], negative[p] = _limited(raw[p], widths[p], target[p])
        limiting = (raw if np.any(negative < 0) else None, negative)
        return q, centre, frame.residual(theta, q, edges, centre, t_new), limiting

    theta = np.array(theta_guess, dtype=float)
    scale = np.maximum(np.abs(theta), 1.0)

    def jacobian(theta: np.ndarray, r: np.ndarray) -> np.ndarray:
        jac = np.empty((P, P))
        for k in range(P):
            eta = 1e-7 * scale[k]
            for _ in range(6):  # widen the difference until the residual visibly responds
                trial = theta.copy()
                trial[k] += eta
                change = solve(trial)[2] - r
                if np.max(np.abs(change)) > 1e-9 * max(1.0, float(np.max(np.abs(r)))):
                    break
                eta *= 100
            jac[:, k] = change / eta
        cache["jacobians"] = cache.get("jacobians", 0) + 1
        return jac

    try:
        q, centre, r, limiting = solve(theta)
        jac = cache.get("jac")
        fresh = False
        previous = np.inf
        for _ in range(max_iter):
            norm = float(np.max(np.abs(r) / scale))
            if norm <= NEWTON_TARGET or (norm <= NEWTON_TOL and norm > 0.3 * previous):
                break  # converged to round-off, or stagnating below the tolerance
            if jac is None or (not fresh and norm > 0.2 * previous):
                jac, fresh = jacobian(theta, r), True
            previous = norm
            trial_theta = theta - np.linalg.solve(jac, r)
            trial_q, trial_centre, trial_r, trial_limiting = solve(trial_theta)
            cache["solves"] = cache.get("solves", 0) + 1
            if norm <= NEWTON_TOL and float(np.max(np.abs(trial_r) / scale)) >= norm:
                break  # round-off floor reached: keep the better iterate
            theta, q, centre, r, limiting = (trial_theta, trial_q, trial_centre, trial_r,
                                             trial_limiting)
        cache["jac"] = jac
        if not np.all(np.isfinite(q)) or np.any(np.abs(r) > NEWTON_TOL * scale):
            return None
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None
    return Attempt(Level(t=t_new, q=q, theta=theta, centre=centre), *limiting)


def _divided(levels: Sequence[Level], attr: str) -> np.ndarray:
    """Highest divided difference of ``attr`` over ``levels`` (2 to 4 levels)."""
    values = [np.asarray(getattr(lv, attr), dtype=float) for lv in levels]
    times = [lv.t for lv in levels]
    for k in range(1, len(values)):
        values = [(values[i + 1] - values[i]) / (times[i + k] - times[i])
                  for i in range(len(values) - 1)]
    return values[0]


def _lte_factor(levels: Sequence[Level], order: int) -> float:
    """Local error = factor × highest divided difference over ``levels`` (order + 2 levels)."""
    dt = levels[-1].t - levels[-2].t
    if order == 1:
        return dt * dt
    dt_prev = levels[-2].t - levels[-3].t
    return dt * dt * (dt + dt_prev) ** 2 / (2 * dt + dt_prev)


def _error(levels: Sequence[Level], order: int, rtol: float, atol: float,
           control_theta: bool = True) -> float:
    """Scaled local error of the last step from divided differences of the history."""
    factor = _lte_factor(levels, order)
    new = levels[-1]
    lte_q = factor * np.abs(_divided(levels, "q"))
    lte_theta = factor * np.abs(_divided(levels, "theta"))
    err_q = np.max(lte_q / (rtol * np.max(np.abs(new.q), axis=1, keepdims=True)))
    err_theta = np.max(lte_theta / (atol + rtol * np.abs(new.theta))) if control_theta else 0.0
    return float(max(err_q, err_theta))


def _clip_allowed(history: Sequence[Level], attempt: Attempt, widths: np.ndarray, mass: np.ndarray,
                  rtol: float) -> bool:
    r"""Whether a BDF2 step may keep its limited densities (else it is redone with backward Euler).

    BDF2's right-hand side ``α1 q_n − α2 q_{n−1}`` is negative where a density drops by more
    than a factor ``α1/α2 ≈ 4`` in one step (tails during transients, or behind a moving
    profile), and so may be the stage solution. Limiting (``max(q, 0)`` rescaled to the exact
    mass) changes a population by about twice its negative mass ``N_p`` in L1, so it is kept
    when ``|N_p| ≤ ‖lte_p‖₁ + 10⁻³ rtol M_p``, ``lte`` the step's own local error estimate
    (divided differences, as in :func:`_error`) of the *unlimited* solution: the order is kept.
    The same rule as the native solver (:mod:`solvers.stepping`).
    """
    levels = [*history[-3:], replace(attempt.level, q=attempt.raw)]
    lte = _lte_factor(levels, 2) * np.abs(_divided(levels, "q"))
    limit = np.einsum("pi,pi->p", lte, widths) + 1e-3 * rtol * mass
    return bool(np.all(-attempt.negative <= limit))


def _attempt(frame: Frame, history: list[Level], edges: np.ndarray, t_new: float, order: int,
             guess: np.ndarray, cache: dict[str, Any]) -> Attempt | None:
    """:func:`_step` from the extrapolated ``guess``, then once more from ``θ_n`` afresh."""
    attempt = _step(frame, history, edges, t_new, order, guess, cache)
    if attempt is None:
        cache.pop("jac", None)
        attempt = _step(frame, history, edges, t_new, order, history[-1].theta, cache)
    return attempt


def march(frame: Frame, start: Level, edges: np.ndarray, t_final: float, *, method: str = "bdf2",
          dt: float | None = None, rtol: float = 1e-6, atol: float = 1e-10,
          dt_initial: float | None = None, save_at: np.ndarray | None = None,
          max_steps: int = 100_000) -> tuple[list[Level], list[np.ndarray], dict[str, Any]]:
    """Integrate from ``start`` to ``t_final``; returns saved levels, their edges and diagnostics.

    ``dt=None``: adaptive steps (local error per step ≤ ``rtol`` relative for the densities,
    ``atol + rtol|θ|`` for the parameters); a float: fixed steps. ``save_at=None`` saves every
    accepted step.

    Every level is ≥ 0 with the masses of ``start`` to round-off: the stage solutions are
    limited (:func:`_step`); a BDF2 step whose negative part exceeds its own error estimate is
    redone with backward Euler (:func:`_clip_allowed`). The diagnostics count the accepted steps
    that were limited (``positivity_clips``) and redone (``positivity_fallbacks``).
    """
    edges = np.array(edges, dtype=float)
    history = [start]
    saved, saved_edges = [start], [edges.copy()]
    targets = None if save_at is None else list(np.sort(np.asarray(save_at, float)))
    if targets is not None:
        targets = [s for s in targets if s > start.t]
        if not targets or targets[-1] < t_final:
            targets.append(t_final)
    h = dt if dt is not None else (dt_initial or 1e-6 * (t_final - start.t))
    steps = rejected = remaps = clips = fallbacks = 0
    cache: dict[str, Any] = {"mass": (start.q * np.diff(edges, axis=1)).sum(axis=1)}
    max_order = 1 if method == "be" else 2
    while history[-1].t < t_final * (1 - 1e-14) and steps < max_steps:
        now = history[-1]
        stop = t_final if targets is None else targets[0]
        h_try = min(h, t_final - now.t, stop - now.t)
        if stop - (now.t + h_try) < 1e-9 * h_try:
            h_try = stop - now.t
        if h_try <= 1e-13 * max(abs(now.t), abs(t_final) * 1e-6):
            raise RuntimeError(f"step size underflow at t={now.t:.6g} (dt={h_try:.3g}): the "
                               f"tolerance rtol={rtol:g} is below what the implicit solves "
                               f"resolve; use rtol >= 1e-9")
        order = max_order if len(history) >= 3 else 1
        guess = now.theta if len(history) < 2 else now.theta + (now.theta - history[-2].theta) * (
            h_try / max(now.t - history[-2].t, 1e-300))
        attempt = _attempt(frame, history, edges, now.t + h_try, order, guess, cache)
        fallback = False
        if (attempt is not None and order == 2 and attempt.raw is not None
                and not _clip_allowed(history, attempt, np.diff(edges, axis=1), cache["mass"],
                                      rtol)):
            fallback, order = True, 1  # too negative to limit: redo with backward Euler
            attempt = _attempt(frame, history, edges, now.t + h_try, order, guess, cache)
        if attempt is None:
            rejected += 1
            if dt is not None or h_try < 1e-15 * max(abs(t_final), 1.0):
                raise RuntimeError(f"implicit step failed at t={now.t:.6g} (dt={h_try:.3g})")
            h = h_try / 4
            continue
        new = attempt.level
        candidate = [*history[-(order + 1):], new] if len(history) >= order + 1 else None
        if dt is None and candidate is not None and len(candidate) == order + 2:
            err = _error(candidate, order, rtol, atol, frame.control_theta)
            if err > 1.0:
                rejected += 1
                h = h_try * max(0.2, 0.9 * err ** (-1 / (order + 1)))
                continue
            # BDF2 with variable steps is zero-stable for step ratios below 1 + √2: cap at 2
            growth = 2.0 if max_order == 2 else 3.0
            h = h_try * min(growth, max(0.2, 0.9 * max(err, 1e-10) ** (-1 / (order + 1))))
        elif dt is None:
            h = h_try * 2.0
        steps += 1
        clips += attempt.raw is not None
        fallbacks += fallback
        history = [*history[-3:], new]
        if targets is None or abs(new.t - targets[0]) <= 1e-12 * max(abs(new.t), 1.0):
            saved.append(new)
            saved_edges.append(edges.copy())
            if targets is not None:
                targets.pop(0)
        new_edges = frame.window(new, edges)
        if new_edges is not None:
            remaps += 1
            history = [Level(t=lv.t, theta=lv.theta, centre=lv.centre,
                             q=np.array([remap(edges[p], lv.q[p], new_edges[p])
                                         for p in range(lv.q.shape[0])])) for lv in history]
            edges = np.array(new_edges, dtype=float)
    if history[-1].t < t_final * (1 - 1e-14):
        raise RuntimeError(f"max_steps={max_steps} reached at t={history[-1].t:.6g}")
    return saved, saved_edges, {"steps": steps, "rejected": rejected, "remaps": remaps,
                                "solves": cache.get("solves", 0),
                                "jacobians": cache.get("jacobians", 0), "method": method,
                                "positivity_clips": clips, "positivity_fallbacks": fallbacks}


# ----------------------------------------------------------------------------- fields
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
        import sympy as sp

        from meanfield.expressions import x

        model = nm.model
        symbols = sp.symbols(f"_m0:{nm.J}", real=True)
        hs, dhs = [], []
        for p in range(nm.P):
            phis = [*model.phi[p], *(inp.phi[p] for inp in model.inputs)]
            expr = sum((sp.Float(nm.g[p, j]) * phis[j] * symbols[j] for j in range(nm.J)
                        if nm.g[p, j] != 0), sp.Integer(0))
            hs.append(sp.lambdify((x, *symbols), expr, modules="numpy"))
            dhs.append(sp.lambdify((x, *symbols), sp.diff(expr, x), modules="numpy"))
        return cls(nm=nm, h=tuple(hs), dh=tuple(dhs))

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


# ----------------------------------------------------------------------------- front door
@dataclass(frozen=True, eq=False)
class RescaledSolution:
    """The solution in the zoomed frame ``x = center + eps·y`` and its observables in ``x``.

    ``t`` (nt,); ``center``, ``mean``, ``var``, ``m``, ``mass``, ``balance_residual`` (nt, P);
    ``y_edges`` (nt, P, M+1) the window of each population at each saved time; ``q`` (nt, P, M)
    the rescaled densities (``ρ(x) = q(y)/eps``). ``info`` holds solver diagnostics (steps,
    rejections, remaps, Newton work, and the accepted steps whose densities were limited to stay
    ≥ 0, ``positivity_clips``, or redone with backward Euler, ``positivity_fallbacks``).
    """

    model: Model
    gamma: float
    eps: float
    method: str
    t: np.ndarray
    center: np.ndarray
    y_edges: np.ndarray
    q: np.ndarray
    mass: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        """Cell centres in ``y`` (nt, P, M)."""
        return (self.y_edges[..., 1:] + self.y_edges[..., :-1]) / 2

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    def x_edges(self, index: int = -1) -> np.ndarray:
        """Cell edges in ``x`` (P, M+1) at saved time ``index``."""
        return self.center[index][:, None] + self.eps * self.y_edges[index]

    def density_on(self, edges: np.ndarray, index: int = -1) -> np.ndarray:
        """Cell averages of ``ρ_p`` (P, len(edges)−1) on the x-cells ``edges`` (conservative)."""
        edges = np.asarray(edges, dtype=float)
        out = []
        for p in range(self.model.P):
            xe = self.x_edges(index)[p]
            cumulative = np.concatenate([[0.0], np.cumsum(self.q[index, p] * np.diff(
                self.y_edges[index, p]))])
            values = np.interp(edges, xe, cumulative)
            out.append(np.diff(values) / np.diff(edges))
        return np.array(out)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (t, population, cell) and the model in the attributes."""
        import json

        import xarray as xr

        from meanfield import __version__

        per_t = ("t", "population")
        data = {"q": (("t", "population", "cell"), self.q),
                "y_edges": (("t", "population", "edge"), self.y_edges),
                "center": (per_t, self.center), "mass": (per_t, self.mass),
                "mean": (per_t, self.mean), "var": (per_t, self.var), "m": (per_t, self.m),
                "balance_residual": (per_t, self.balance_residual)}
        attrs = {"gamma": self.gamma, "eps": self.eps, "method": self.method,
                 "model": self.model.to_json(), "meanfield_version": __version__,
                 "info": json.dumps({k: (v if isinstance(v, (int, float, str)) else repr(v))
                                     for k, v in self.info.items()})}
        return xr.Dataset(data, coords={"t": self.t, "population": list(self.names)},
                          attrs=attrs)


@dataclass(frozen=True)
class Gaussian:
    r"""An initial density ``N(mean, std²)``: ``exp(−(x − mean)²/(2 std²)) / (√(2π) std)``.

    Callable (so any solver taking callables of ``x`` accepts it); the zoomed-frame solvers use
    its known moments directly, so it is placed exactly however narrow it is (at γ = 1e12 the
    concentration width ``√(D/(γA))`` is ~1e-6).
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_finite_number("mean", self.mean))
        object.__setattr__(self, "std", check_finite_number("std", self.std, positive=True))

    def __call__(self, x: Any) -> np.ndarray:
        z = (np.asarray(x, dtype=float) - self.mean) / self.std
        return np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * self.std)


@dataclass(frozen=True, eq=False)
class _Start:
    """One population's initial density: a vectorised ``profile`` of ``x`` and, when known
    (``Gaussian``, samples), its ``moments`` (mean, std); else they are found by scanning."""

    profile: Callable[[np.ndarray], np.ndarray]
    moments: tuple[float, float] | None = None


_ENTRY = ("a callable of x, a solvers.Gaussian(mean, std) or an (x, density) pair of 1-D arrays "
          "(samples on your own grid, linearly interpolated, zero outside)")


def _is_samples(entry: Any) -> bool:
    """Whether ``entry`` is an ``(x, density)`` pair of 1-D arrays (not callables)."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 2 or any(callable(e) for e in entry):
        return False
    try:
        return all(np.ndim(np.asarray(e, dtype=float)) == 1 for e in entry)
    except (TypeError, ValueError):
        return False


def _is_entry(entry: Any) -> bool:
    return callable(entry) or _is_samples(entry)


def _check_values(name: str, xs: np.ndarray, values: np.ndarray) -> None:
    """``ValueError`` naming the first non-finite or negative density value and where it is."""
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        k = int(np.argmax(bad))
        bad_value(f"{name}(x={float(xs[k]):.9g})", float(values[k]),
                  "an initial density takes finite, nonnegative values")


def _from_samples(name: str, entry: Any, domain: tuple[float, float]) -> _Start:
    r"""The piecewise-linear density through samples ``(x, density)``; its moments exactly.

    On ``[x_i, x_{i+1}]`` (``h = x_{i+1} − x_i``, ``u = x − x_ref``) the interpolant integrates to
    ``h(ρ_i + ρ_{i+1})/2``, ``h(ρ_i(2u_i + u_{i+1}) + ρ_{i+1}(u_i + 2u_{i+1}))/6`` and
    ``h(ρ_i(3u_i² + 2u_iu_{i+1} + u_{i+1}²) + ρ_{i+1}(u_i² + 2u_iu_{i+1} + 3u_{i+1}²))/12``.
    """
    x, rho = (np.asarray(e, dtype=float) for e in entry)
    if x.size != rho.size or x.size < 2:
        bad_value(name, entry, "an (x, density) pair of 1-D arrays of the same length >= 2")
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        bad_value(name, entry, "samples at finite, strictly increasing x")
    a, b = domain
    if x[0] < a or x[-1] > b:
        bad_value(name, entry, f"samples at x inside the domain [{a}, {b}]")
    _check_values(name, x, rho)
    h = np.diff(x)
    mass = float(h @ (rho[1:] + rho[:-1])) / 2
    if not mass > 0:
        bad_value(name, entry, "an initial density with positive mass (the samples are all 0)")
    peak = int(np.argmax(rho))
    u = x - x[peak]  # moments about the peak: no cancellation for narrow profiles
    ul, ur, rl, rr = u[:-1], u[1:], rho[:-1], rho[1:]
    first = float(h @ (rl * (2 * ul + ur) + rr * (ul + 2 * ur))) / 6 / mass
    second = float(h @ (rl * (3 * ul**2 + 2 * ul * ur + ur**2)
                        + rr * (ul**2 + 2 * ul * ur + 3 * ur**2))) / 12 / mass
    std = np.sqrt(max(second - first**2, 0.0))
    if not std > 0:
        std = float(np.min(h))
    return _Start(lambda xs: np.interp(xs, x, rho, left=0.0, right=0.0),
                  (float(x[peak] + first), float(std)))


def _initial_states(nm: NumericModel, initial: Any, domain: tuple[float, float]
                    ) -> list[_Start]:
    """Parse ``initial`` (see :func:`solve_rescaled`) into one :class:`_Start` per population."""
    P = nm.P
    if initial is None:
        return [_Start(fn) for fn in nm.initial]
    allowed = f"None, or one or a sequence of {P} of: {_ENTRY}"
    if _is_entry(initial):
        entries = [initial] * P
    elif (isinstance(initial, (str, bytes)) or not isinstance(initial, Sequence)
          or len(initial) != P or not all(_is_entry(e) for e in initial)):
        bad_type("initial", initial, allowed)
    else:
        entries = list(initial)

    def wrap(fn: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
        @functools.wraps(fn)  # error messages show the user's function
        def profile(xs: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(fn(xs), dtype=float), np.shape(xs))
        return profile

    starts = []
    for p, entry in enumerate(entries):
        name = f"initial[{p}]"
        if isinstance(entry, Gaussian):
            if not domain[0] < entry.mean < domain[1]:
                bad_value(name, entry, f"a Gaussian with its mean inside the domain {domain}")
            starts.append(_Start(entry, (entry.mean, entry.std)))
        elif callable(entry):
            starts.append(_Start(wrap(entry)))
        else:
            starts.append(_from_samples(name, entry, domain))
    return starts


def _initial_profiles(nm: NumericModel, initial: Any,
                      domain: tuple[float, float] = (-np.inf, np.inf)
                      ) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The initial densities as callables of ``x`` (any form :func:`solve_rescaled` accepts)."""
    return [start.profile for start in _initial_states(nm, initial, domain)]


_SCAN_CELLS = 4000
"""Cells of the first scan of a profile (midpoint samples); finer scans refine by ``_REFINE``."""
_REFINE = 16
_FINEST_CELLS = 4000 * 16**3
"""Finest scan of a region (1.6e7 cells: spacing 6e-7 on a domain of length 10)."""
_CHUNK = 2**20


def _scan(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, name: str
          ) -> tuple[float, float, float]:
    """Mean, std and spacing of the coarsest midpoint scan of ``[lo, hi]`` that sees mass.

    Scans with 4000, 64 000, ... cells (in chunks), stopping at the first that has a positive
    value; raises the named ``ValueError`` for non-finite or negative values, or when even the
    finest scan sees none (a zero density, or one narrower than that spacing).
    """
    cells = _SCAN_CELLS
    while True:
        h = (hi - lo) / cells
        if cells <= _CHUNK:  # one chunk: the plain sums
            xs = np.linspace(lo, hi, cells + 1)
            h = xs[1] - xs[0]
            centres = (xs[1:] + xs[:-1]) / 2
            values = np.asarray(fn(centres), dtype=float)
            _check_values(name, centres, values)
            mass = values.sum()
            if mass > 0:
                mean = float(centres @ values / mass)
                return mean, float(np.sqrt(((centres - mean) ** 2) @ values / mass)), h
        else:  # moments about the first positive sample, accumulated over chunks
            shift, sums = None, np.zeros(3)
            for start in range(0, cells, _CHUNK):
                centres = lo + (np.arange(start, min(cells, start + _CHUNK)) + 0.5) * h
                values = np.asarray(fn(centres), dtype=float)
                _check_values(name, centres, values)
                positive = np.flatnonzero(values > 0)
                if positive.size == 0:
                    continue
                if shift is None:
                    shift = float(centres[positive[0]])
                u = centres[positive] - shift
                w = values[positive]
                sums += [w.sum(), u @ w, (u * u) @ w]
            if shift is not None:
                mean = sums[1] / sums[0]
                return float(shift + mean), float(np.sqrt(max(sums[2] / sums[0] - mean**2, 0.0))), h
        if cells >= _FINEST_CELLS:
            bad_value(name, fn, f"an initial density with positive mass on [{lo:.9g}, {hi:.9g}] "
                      f"(it is 0 at all {cells} points of a scan with spacing {h:.3g}; give a "
                      "narrower profile as solvers.Gaussian(mean, std) or (x, density) samples)")
        cells *= _REFINE


def _moments_of(fn: Callable[[np.ndarray], np.ndarray], domain: tuple[float, float],
                name: str) -> tuple[float, float]:
    """Mean and standard deviation of the profile ``fn``, zooming in on narrow profiles.

    Each round scans the current region (:func:`_scan`, refined until it sees the mass) and
    zooms to ``mean ± 30 std`` until the profile spans more than 40 sample spacings.
    """
    lo, hi = domain
    mean = std = 0.0
    for _ in range(12):
        mean, std, width = _scan(fn, lo, hi, name)
        if std > 40 * width:
            return mean, std
        lo, hi = max(domain[0], mean - 30 * max(std, width)), min(domain[1], mean + 30 * max(
            std, width))
    return mean, max(std, (hi - lo) / 4000)


def _check_options(model: Any, gamma: Any, t_final: Any, cells: Any, method: Any, rtol: Any,
                   atol: Any, window: Any, dt: Any) -> tuple:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, positive=True)
    t_final = check_finite_number("t_final", t_final, positive=True)
    cells = check_int("cells", cells, minimum=8)
    if method not in ("bdf2", "be"):
        bad_value("method", method, "'bdf2' or 'be'")
    rtol = check_finite_number("rtol", rtol, positive=True)
    atol = check_finite_number("atol", atol, positive=True)
    window = check_finite_number("window", window, positive=True)
    if window < 4:
        bad_value("window", window, "a half-width of at least 4 standard deviations")
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    return gamma, t_final, cells, rtol, atol, window, dt


def solve_rescaled(model: Model, *, gamma: float, t_final: float, cells: int = 200,
                   initial: Any = None, method: str = "bdf2", dt: float | None = None,
                   rtol: float = 1e-6, atol: float = 1e-10, window: float = 10.0,
                   save_at: Sequence[float] | None = None,
                   max_steps: int = 100_000) -> RescaledSolution:
    r"""Solve the mean-field PDE of ``model`` in the moving zoomed frame ``x = c_p(t) + γ^{-1/2} y``.

    Parameters
    ----------
    model : a concentrating :class:`meanfield.Model` (every ``h_p`` has a zero with
        ``∂_x h_p > 0``; otherwise ``ValueError``)
    gamma : coupling strength > 0 (works up to 1e12 and beyond on a few hundred cells)
    t_final : final time > 0
    cells : cells per population in ``y``
    initial : ``None`` (the model's initial densities), or one entry (used for every
        population) or P entries, each

        * a callable of ``x`` (any normalisation): its mass is located by midpoint scans of the
          domain, 4000 cells refined ×16 up to 1.6e7 cells (spacing 6e-7 on a domain of length
          10) until one sees a positive value, then zoomed in on until resolved; so profiles
          down to that width (e.g. ``exp(−(x−c)²/2s²)``, visible ~38 s from ``c``: s ≳ 1e-8)
          are found wherever they are;
        * :class:`Gaussian` ``(mean, std)``: placed exactly, however narrow (the natural start a
          few concentration widths ``√(D/(γA))`` wide at γ = 1e8…1e12);
        * an ``(x, density)`` pair of 1-D arrays: samples on your own grid (strictly increasing
          ``x`` inside the domain), linearly interpolated and zero outside; moments exact.

        Non-finite or negative values, or a density with no positive mass, raise ``ValueError``
        naming ``initial[p]`` and the offending value (and where it is)
    method : ``"bdf2"`` (second order, default) or ``"be"`` (first order); both keep ``q ≥ 0``
        and the masses to round-off (BDF2 with limiting or backward-Euler fallback steps,
        counted in ``info["positivity_clips"]``, ``info["positivity_fallbacks"]``)
    dt : ``None`` for adaptive steps with ``rtol``/``atol``, or a fixed step
    window : half-width of the y-window in standard deviations of the profile
    save_at : times to save (default: every accepted step)
    """
    gamma, *_ = _check_options(model, gamma, t_final, cells, method, rtol, atol, window, dt)
    nm = numeric(model)
    fields = Fields.of(nm)
    eps = gamma ** -0.5

    def velocity(p: int, y: np.ndarray, centre: np.ndarray, m: np.ndarray, time: float
                 ) -> np.ndarray:
        xs = centre[p] + eps * y
        return nm.f[p](xs) / eps - gamma * fields.field(p, xs, nm.all_moments(m, time)) / eps

    def balance(m: np.ndarray, time: float, guess: np.ndarray) -> np.ndarray:
        m_all = nm.all_moments(m, time)
        out = np.empty(nm.P)
        for p in range(nm.P):
            try:
                out[p] = fields.stable_zero(p, m_all, guess[p])
            except ValueError:
                candidates = zero_candidates(fields, p, m_all)
                if candidates.size == 0:
                    raise
                out[p] = fields.stable_zero(
                    p, m_all, candidates[np.argmin(np.abs(candidates - guess[p]))])
        return out

    def moment(p: int, y: np.ndarray, weights: np.ndarray, centre: np.ndarray) -> float:
        return float(nm.psi[p](centre[p] + eps * y) @ weights)

    return solve_zoomed(model, gamma=gamma, t_final=t_final, velocity=velocity,
                        balance=balance, moment=moment, cells=cells, initial=initial,
                        method=method, dt=dt, rtol=rtol, atol=atol, window=window,
                        save_at=save_at, max_steps=max_steps)


def solve_zoomed(model: Model, *, gamma: float, t_final: float,
                 velocity: Callable[[int, np.ndarray, np.ndarray, np.ndarray, float], np.ndarray],
                 balance: Callable[[np.ndarray, float, np.ndarray], np.ndarray],
                 moment: Callable[[int, np.ndarray, np.ndarray, np.ndarray], float],
                 cells: int = 200, initial: Any = None, method: str = "bdf2",
                 dt: float | None = None, rtol: float = 1e-6, atol: float = 1e-10,
                 window: float = 10.0, save_at: Sequence[float] | None = None,
                 max_steps: int = 100_000) -> RescaledSolution:
    r"""The zoomed-frame solver with the equation given by callables (exact or truncated).

    Solves ``∂_t q_p = ε⁻² D_p ∂_yy q_p − ∂_y[(b_p(y) − ε⁻¹ c_p'(t)) q_p]`` in the frame
    ``x = c_p(t) + ε y`` with ``ε = γ^{-1/2}``:

    * ``velocity(p, y, c, m, t)`` is ``b_p(y)`` (for the exact equation
      ``ε⁻¹ f(c + εy) − ε⁻³ h(c + εy)``);
    * ``balance(m, t, guess)`` returns the frame centres ``c`` (P,) for moments ``m``;
    * ``moment(p, y, w, c)`` returns ``m_p`` from cell weights ``w = q Δy`` at centres ``y``.

    The moments are implicit (Newton); options as in :func:`solve_rescaled`. Reported ``m`` is
    computed with the model's exact readouts.
    """
    gamma, t_final, cells, rtol, atol, window, dt = _check_options(
        model, gamma, t_final, cells, method, rtol, atol, window, dt)
    nm = numeric(model)
    P, D = nm.P, nm.D
    a, b = model.domain
    eps = gamma ** -0.5
    starts = _initial_states(nm, initial, (a, b))
    profiles = [start.profile for start in starts]

    def gradient(p: int, z: np.ndarray, centre: np.ndarray, theta: np.ndarray, time: float
                 ) -> np.ndarray:
        return -eps * np.asarray(velocity(p, z, centre, theta, time), dtype=float)

    def moments(q: np.ndarray, edges: np.ndarray, centre: np.ndarray) -> np.ndarray:
        return np.array([moment(p, (edges[p, 1:] + edges[p, :-1]) / 2, q[p] * np.diff(edges[p]),
                                centre) for p in range(P)])

    def residual(theta: np.ndarray, q: np.ndarray, edges: np.ndarray, centre: np.ndarray,
                 time: float) -> np.ndarray:
        return moments(q, edges, centre) - theta

    def ideal_window(q: np.ndarray, edges: np.ndarray, centre: np.ndarray, p: int
                     ) -> tuple[float, float]:
        z = (edges[1:] + edges[:-1]) / 2
        w = q * np.diff(edges)
        mean = float(z @ w / w.sum())
        std = float(np.sqrt(((z - mean) ** 2) @ w / w.sum()))
        lo = max(mean - window * std, (a - centre[p]) / eps)
        hi = min(mean + window * std, (b - centre[p]) / eps)
        return lo, hi

    def adapt(level: Level, edges: np.ndarray) -> np.ndarray | None:
        new = edges.copy()
        changed = False
        for p in range(P):
            lo, hi = ideal_window(level.q[p], edges[p], level.centre, p)
            cur_lo, cur_hi = edges[p, 0], edges[p, -1]
            width = cur_hi - cur_lo
            ratio = (hi - lo) / width
            dom_lo, dom_hi = (a - level.centre[p]) / eps, (b - level.centre[p]) / eps
            if (ratio < 0.75 or ratio > 1.33 or abs((hi + lo) - (cur_hi + cur_lo)) / 2 > 0.15 * width
                    or cur_lo < dom_lo - 0.005 * width or cur_hi > dom_hi + 0.005 * width):
                new[p] = np.linspace(lo, hi, cells + 1)
                changed = True
        return new if changed else None

    # initial state: sample each profile on its window, in the frame of its own moments
    edges = np.empty((P, cells + 1))
    stats = [start.moments or _moments_of(start.profile, (a, b), f"initial[{p}]")
             for p, start in enumerate(starts)]
    x_lo = np.array([max(a, mu - window * sd) for mu, sd in stats])
    x_hi = np.array([min(b, mu + window * sd) for mu, sd in stats])
    theta = np.array([float(nm.psi[p](np.array([stats[p][0]]))[0]) for p in range(P)])
    centre = np.array([mu for mu, _ in stats])
    q = np.empty((P, cells))
    for _ in range(6):
        centre = balance(theta, 0.0, centre)
        for p in range(P):
            edges[p] = np.linspace((x_lo[p] - centre[p]) / eps, (x_hi[p] - centre[p]) / eps,
                                   cells + 1)
            z = (edges[p, 1:] + edges[p, :-1]) / 2
            q[p] = profiles[p](centre[p] + eps * z)
            q[p] /= q[p] @ np.diff(edges[p])
        new_theta = moments(q, edges, centre)
        converged = np.max(np.abs(new_theta - theta)) <= 1e-15 * max(1.0, float(np.max(
            np.abs(theta))))
        theta = new_theta
        if converged:
            break
    centre = balance(theta, 0.0, centre)
    start = Level(t=0.0, q=q, theta=theta, centre=centre)
    frame = Frame(D=D, scale=eps, gradient=gradient, centres=balance, residual=residual,
                  window=adapt)
    rate = gamma * float(np.max(np.abs(nm.g))) + 1.0
    levels, level_edges, info = march(
        frame, start, edges, t_final, method=method, dt=dt, rtol=rtol, atol=atol,
        dt_initial=min(1e-4 / rate, 1e-6 * t_final),
        save_at=None if save_at is None else np.asarray(save_at, float), max_steps=max_steps)
    return _assemble(model, nm, gamma, eps, method, levels, level_edges, info)


def _assemble(model: Model, nm: NumericModel, gamma: float, eps: float, method: str,
              levels: list[Level], level_edges: list[np.ndarray], info: dict[str, Any]
              ) -> RescaledSolution:
    P = nm.P
    t = np.array([lv.t for lv in levels])
    q = np.array([lv.q for lv in levels])
    y_edges = np.array(level_edges)
    center = np.array([lv.centre for lv in levels])
    widths = np.diff(y_edges, axis=2)
    z = (y_edges[..., 1:] + y_edges[..., :-1]) / 2
    mass = np.einsum("tpi,tpi->tp", q, widths)
    ybar = np.einsum("tpi,tpi,tpi->tp", q, z, widths) / mass
    var_y = np.einsum("tpi,tpi,tpi->tp", q, (z - ybar[..., None]) ** 2, widths) / mass
    m = np.empty_like(mass)
    residual = np.empty_like(mass)
    for k in range(t.size):
        xs = center[k][:, None] + eps * z[k]
        for p in range(P):
            m[k, p] = (nm.psi[p](xs[p]) * q[k, p]) @ widths[k, p]
        for p in range(P):
            residual[k, p] = (np.abs(nm.field(p, xs[p], m[k], t[k])) * q[k, p]) @ widths[k, p]
    return RescaledSolution(model=model, gamma=gamma, eps=eps, method=method, t=t, center=center,
                            y_edges=y_edges, q=q, mass=mass, mean=center + eps * ybar,
                            var=eps * eps * var_y, m=m, balance_residual=residual, info=info)
