r"""One implicit stage with the coupling moments solved to 1e-12: Newton on the P unknowns ``m``.

The stage problem (every implicit time stepper in :mod:`solvers.stepping` is a sequence of them):
find densities ``ρ`` (P, M) and moments ``m`` (P,) with

.. math:: \big(I - \kappa L(\delta(m, t))\big)\rho = r, \qquad m_p = \sum_i w_{p,i}\,\rho_{p,i},

where ``L`` is the zero-flux Scharfetter–Gummel operator of :mod:`solvers.kernels` built from the
scaled potential differences ``δ_p(m, t)`` (P, M−1). For each trial ``m`` the P tridiagonal
systems give ``ρ(m)`` exactly; Newton drives ``R(m) = w·ρ(m) − m`` to zero with the exact
Jacobian (one adjoint solve per population, see :mod:`solvers.kernels`), globalised by a trust
region and, if that fails, by continuation in ``κ``. Nothing is lagged, so the stage is stable
and accurate at any ``γ·κ``.
When the kernel has a compiled ``newton`` and the coupling is an :class:`AffineCoupling`, the
whole iteration runs compiled (the constant or time-dependent inputs folded into the base once
per time, :meth:`AffineCoupling.folded_base`), with the same decisions and numbers to round-off.

Interface for other solvers (e.g. a zoomed, moving frame): build a :class:`StageProblem` from

- ``scale`` (P, M−1): the diffusion over the distance between centres, ``D_p/Δ_i``;
- ``widths`` (M,): the cell widths ``h_i`` (mass is ``Σ h ρ``);
- ``weights`` (P, M): the readout, ``w_{p,i} = Ψ_p(x_i) h_i``;
- ``coupling``: any object with ``differences(m, t) -> δ`` (P, M−1) and
  ``derivative(m, t) -> ∂δ/∂m`` (P, P, M−1) (e.g. :class:`AffineCoupling`; δ may depend on
  ``m`` nonlinearly). Optionally ``target(u, t) -> (g, ∂g/∂u)``: the unknowns ``u`` are then
  not the moments but parameters of ``δ`` fixed by ``w·ρ(u) = g(u, t)`` (e.g. the multipliers of
  the γ = ∞ constrained equation, :mod:`solvers.limits`), and the stage returns ``u``;
- ``kernel``: a :class:`~solvers.kernels.StageKernel` (``solvers.kernels.stage_kernel("auto")``),

then call :func:`solve_stage` (one stage) or hand the problem to
:func:`solvers.stepping.integrate` / :func:`solvers.stepping.take_step` (time steps). Mass is
``Σ_i h_i ρ_{p,i}``, conserved by every stage to round-off; ``ρ ≥ 0`` whenever ``r ≥ 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from solvers.kernels import StageKernel, centred_weights_numpy

MOMENT_RTOL = 1e-12
"""Relative tolerance of the implicit moments (relative to ``Σ|w|ρ``)."""


class Coupling(Protocol):
    """Scaled potential differences ``δ(m, t)`` and their derivative in the unknown moments."""

    def differences(self, m: np.ndarray, time: float) -> np.ndarray: ...

    def derivative(self, m: np.ndarray, time: float) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class AffineCoupling:
    r"""``δ_p = base_p + Σ_j m_j slopes_pj`` over the J sources: the P unknowns, then K inputs.

    For the mean-field PDE: ``base_p = −ΔF_p/D_p`` and ``slopes_pj = γ g_pj ΔG_pj / D_p``, so
    ``δ_p = ΔU_p/D_p`` with ``U_p = −F_p + γ Σ_j g_pj m_j G_pj``; ``external(t)`` gives the K
    moments of the external inputs. ``unknowns`` is P (0: every source is unknown).
    """

    base: np.ndarray
    slopes: np.ndarray
    external: Any
    unknowns: int = 0

    def __post_init__(self) -> None:
        count = self.unknowns or self.slopes.shape[1]
        object.__setattr__(self, "_derivative", np.ascontiguousarray(self.slopes[:, :count],
                                                                     dtype=float))
        object.__setattr__(self, "_folded", {})

    def moments(self, m: np.ndarray, time: float) -> np.ndarray:
        return np.concatenate([np.asarray(m, dtype=float), self.external(time)])

    def folded_base(self, time: float) -> np.ndarray:
        """``base_p + Σ_k e_k(t) slopes_p,P+k`` (the inputs folded in), cached while the
        external moments ``e(t)`` keep their values (constant inputs: computed once)."""
        count = self._derivative.shape[1]
        cache = self._folded
        if count == self.slopes.shape[1]:  # no inputs
            if "base" not in cache:
                cache["base"] = np.array(self.base, dtype=float, order="C")
            return cache["base"]
        inputs = np.asarray(self.external(time), dtype=float)
        if "inputs" in cache and np.array_equal(cache["inputs"], inputs):
            return cache["base"]
        folded = np.array(self.base, dtype=float, order="C")
        for k, value in enumerate(inputs):
            folded += value * self.slopes[:, count + k]
        cache.update(inputs=inputs.copy(), base=folded)
        return folded

    def differences(self, m: np.ndarray, time: float) -> np.ndarray:
        out = self.folded_base(time).copy()
        for q, value in enumerate(np.asarray(m, dtype=float)[: self._derivative.shape[1]]):
            out += value * self._derivative[:, q]
        return out

    @property
    def unknown_slopes(self) -> np.ndarray:
        """``slopes[:, :Q]`` for the Q unknown moments, C-contiguous (P, Q, M−1)."""
        return self._derivative

    def derivative(self, m: np.ndarray, time: float) -> np.ndarray:
        if np.asarray(m).size == self._derivative.shape[1]:
            return self._derivative
        return self.slopes[:, : np.asarray(m).size]


@dataclass(frozen=True, eq=False)
class StageProblem:
    """The fixed data of the stage systems (see the module docstring)."""

    scale: np.ndarray
    widths: np.ndarray
    weights: np.ndarray
    coupling: Coupling
    kernel: StageKernel
    workspace: dict[str, Any] = field(default_factory=dict, repr=False)
    """Scratch arrays of the kernel, reused between stage solves (not thread-safe)."""
    frame: Any = None
    """For a moving grid: the frame of the stage's new time level (carried by the new state)."""
    moment_rtol: float = MOMENT_RTOL
    """Newton tolerance of the moments (:func:`solve_stage`'s default)."""
    centred: bool = False
    """Newton's Jacobian from the centred readout weights
    (:func:`solvers.kernels.centred_weights_numpy`: the same Jacobian, without the cancellation
    that costs it its digits when ``Ψ`` hardly varies over the grid, as on a zoomed window)."""

    def __post_init__(self) -> None:
        for name in ("scale", "widths", "weights"):  # compiled kernels want C-ordered floats
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=float))

    @property
    def P(self) -> int:
        return self.weights.shape[0]

    def operator(self, rho: np.ndarray, m: np.ndarray, time: float) -> np.ndarray:
        """``L(δ(m, t)) ρ``: the right-hand side of the semi-discrete equation."""
        from solvers.fv import bernoulli

        delta = self.coupling.differences(m, time)
        flux = self.scale * (bernoulli(delta) * rho[:, :-1] - bernoulli(-delta) * rho[:, 1:])
        out = np.zeros_like(rho)
        out[:, :-1] -= flux
        out[:, 1:] += flux
        return out / self.widths

    def readout(self, rho: np.ndarray) -> np.ndarray:
        return np.einsum("pi,pi->p", self.weights, rho)


@dataclass(frozen=True, eq=False)
class StageResult:
    """Solution of one stage: densities, moments (``= w·ρ`` to 1e-12) and Newton iterations."""

    rho: np.ndarray
    m: np.ndarray
    iterations: int
    converged: bool
    residual: float = np.inf
    """``max_p |w·ρ − m_k|_p / Σ|w_p ρ_p|`` at the last Newton iterate ``m_k`` (ρ = ρ(m_k))."""


def solve_stage(problem: StageProblem, rhs: np.ndarray, kappa: float, time: float,
                m_guess: np.ndarray, *, max_iter: int = 60, rtol: float | None = None,
                max_depth: int = 40) -> StageResult:
    """Solve one stage (see :func:`newton_stage`), by continuation in ``κ`` if Newton fails.

    When Newton from ``m_guess`` does not converge, the stage with ``κ/2`` is solved first (the
    same way, recursively) and its moments start Newton for ``κ``. The stage equation solved is
    always the requested one; only the starting point changes. Iterations of every level count.
    ``rtol`` defaults to ``problem.moment_rtol``.
    """
    rtol = problem.moment_rtol if rtol is None else rtol
    result = newton_stage(problem, rhs, kappa, time, m_guess, max_iter=max_iter, rtol=rtol)
    return continue_stage(problem, rhs, kappa, time, m_guess, result, max_iter=max_iter,
                          rtol=rtol, max_depth=max_depth)


def continue_stage(problem: StageProblem, rhs: np.ndarray, kappa: float, time: float,
                   m_guess: np.ndarray, result: StageResult, *, max_iter: int = 60,
                   rtol: float | None = None, max_depth: int = 40) -> StageResult:
    """:func:`solve_stage` after its first Newton iteration from ``m_guess`` gave ``result``
    (returned when converged, else continued in ``κ``)."""
    rtol = problem.moment_rtol if rtol is None else rtol
    if result.converged or max_depth == 0:
        return result
    half = solve_stage(problem, rhs, kappa / 2, time, m_guess, max_iter=max_iter, rtol=rtol,
                       max_depth=max_depth - 1)
    if not half.converged:
        return StageResult(half.rho, half.m, result.iterations + half.iterations, False)
    final = newton_stage(problem, rhs, kappa, time, half.m, max_iter=max_iter, rtol=rtol)
    return StageResult(final.rho, final.m, result.iterations + half.iterations
                       + final.iterations, final.converged, final.residual)


def newton_stage(problem: StageProblem, rhs: np.ndarray, kappa: float, time: float,
                 m_guess: np.ndarray, *, max_iter: int = 60,
                 rtol: float = MOMENT_RTOL) -> StageResult:
    """Solve ``(I − κL(δ(m, t)))ρ = rhs``, ``m = w·ρ`` by Newton on ``m`` (P unknowns).

    Converged when ``|w·ρ(m) − m|_p ≤ rtol · Σ_i |w_{p,i} ρ_{p,i}|`` for every ``p``; the
    returned ``m`` is the readout ``w·ρ`` of the returned densities. Globalised by a trust region
    on the scaled residual ``max_p |R_p|/Σ|w_p ρ_p|``: a Newton step longer than the radius is
    shortened to it; a step that does not lower the residual is refused and the radius cut to a
    quarter of it, an accepted one doubles the radius. (When ``γκ`` is large, ``w·ρ(m)`` is a
    steep sigmoid-like function of ``m`` and plain Newton would cycle between its flat sides.)
    ``max_iter`` counts kernel evaluations.
    """
    compiled = problem.kernel.newton_centred if problem.centred else problem.kernel.newton
    if compiled is not None and type(problem.coupling) is AffineCoupling \
            and np.size(m_guess) == problem.coupling.unknown_slopes.shape[1]:
        rho, m, iterations, converged, norm = compiled(
            problem.coupling.folded_base(time), problem.coupling.unknown_slopes, problem.scale,
            problem.widths, problem.weights, kappa, np.ascontiguousarray(rhs, dtype=float),
            m_guess, max_iter, rtol, problem.workspace)
        return StageResult(rho, m, iterations, converged, norm)
    P = problem.P
    m = np.array(m_guess, dtype=float)
    target = getattr(problem.coupling, "target", None)
    identity = np.eye(P)
    adjoint_weights = problem.weights
    if problem.centred and target is None:
        adjoint_weights = centred_weights_numpy(problem.weights, problem.widths, rhs, m)

    def goal(trial: np.ndarray) -> np.ndarray:
        return trial if target is None else target(trial, time)[0]

    def evaluate(trial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        delta = problem.coupling.differences(trial, time)
        rho, readout, magnitude, factors = problem.kernel.solve(
            delta, problem.scale, problem.widths, problem.weights, kappa, rhs, problem.workspace)
        return rho, readout - goal(trial), np.maximum(magnitude, 1e-300), factors

    def jacobian(trial: np.ndarray, rho: np.ndarray, factors: Any) -> np.ndarray:
        jac = problem.kernel.jacobian(factors, problem.coupling.derivative(trial, time),
                                      problem.scale, problem.widths, adjoint_weights, kappa,
                                      rho)
        return jac if target is None else jac - target(trial, time)[1] + identity

    rho, residual, magnitude, factors = evaluate(m)
    norm = float(np.max(np.abs(residual) / magnitude))
    radius = np.inf
    iterations = 1
    newton_step = None
    while True:
        if np.all(np.abs(residual) <= rtol * magnitude):
            return StageResult(rho, m + residual if target is None else m, iterations, True, norm)
        if iterations >= max_iter or not np.isfinite(norm):
            return StageResult(rho, m + residual, iterations, False)
        if newton_step is None:  # one Jacobian per accepted point
            try:
                newton_step = np.linalg.solve(jacobian(m, rho, factors) - identity, -residual)
            except np.linalg.LinAlgError:
                return StageResult(rho, m + residual, iterations, False)
        step = newton_step.copy()
        length = float(np.max(np.abs(step)))
        if not np.isfinite(length):
            return StageResult(rho, m + residual, iterations, False)
        if length > radius:
            step *= radius / length
            length = radius
        trial = m + step
        new = evaluate(trial)
        iterations += 1
        new_norm = float(np.max(np.abs(new[1]) / new[2]))
        if new_norm < norm:
            m, norm = trial, new_norm
            rho, residual, magnitude, factors = new
            newton_step = None
            radius = 2 * length if np.isfinite(radius) else radius
        else:
            radius = length / 4
            if radius <= 1e-15 * max(1.0, float(np.max(np.abs(m)))):
                return StageResult(rho, m + residual, iterations, False)
