r"""γ = ∞ for a balanced, non-concentrating model: the constrained Fokker–Planck equation.

See ``docs/mathematics.md §4``.

``∂_t ρ_p = −∂_x((f_p − λ_p(t)) ρ_p) + D_p ∂_xx ρ_p`` with the multipliers ``λ_p`` fixed by the
constraints ``h_p(m(t), t) = 0`` (a DAE), solved with the Scharfetter–Gummel finite volumes and
the time steps of every solver (:func:`solvers.stepping.march`; λ found by Newton in each stage,
:class:`MultiplierCoupling`). Inconsistent initial data are first moved along the early-behaviour
flow, which for constant ``Φ`` translates each population rigidly until the constraints hold.
Re-exported by :mod:`solvers.limits`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize as so
from scipy.integrate import solve_ivp

from meanfield.balance import balanced_moments as engine_moments
from meanfield.balance import is_concentrating
from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.grid import check_cells
from solvers.implicit import StageProblem
from solvers.kernels import stage_kernel
from solvers.limits_io import LimitResult
from solvers.rescaled import Fields, initial_profiles
from solvers.stepping import StepState, check_step_options, march

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def quadrature(domain: tuple[float, float], panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite 4-point Gauss–Legendre nodes and weights on ``domain``."""
    edges = np.linspace(domain[0], domain[1], panels + 1)
    half = np.diff(edges) / 2
    mid = (edges[1:] + edges[:-1]) / 2
    return ((mid[:, None] + half[:, None] * _GL_NODES).ravel(),
            (half[:, None] * _GL_WEIGHTS).ravel())


# ----------------------------------------------------------------------------- (c) constrained FP
@dataclass(frozen=True, eq=False)
class ConstrainedSolution(LimitResult):
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
    """The moments ``m*`` with ``h_p(m*, t) = 0``: :func:`meanfield.balance.balanced_moments`."""
    return engine_moments(nm.model, time)


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
    nodes, qw = quadrature(model.domain, panels)
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
    nm = numeric(model)
    fields = Fields.of(nm)
    P = nm.P
    xc = (edges[1:] + edges[:-1]) / 2
    widths = np.diff(edges)
    d1 = [nm.psi_derivative(q, 1) for q in range(P)]
    d2 = [nm.psi_derivative(q, 2) for q in range(P)]
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
    cells = check_cells(cells, minimum=8)
    scheme, rtol, atol, dt, max_steps = check_step_options(
        "constrained_fokker_planck", scheme=scheme, method=method, rtol=rtol, atol=atol, dt=dt,
        max_steps=max_steps, stacklevel=2)
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
