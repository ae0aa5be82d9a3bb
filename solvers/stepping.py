r"""Implicit time steppers with error-controlled adaptive steps, generic over the stage problem.

Semi-discrete equation ``ρ' = L(δ(m(ρ), t)) ρ`` with ``m = w·ρ`` (see :mod:`solvers.implicit`).
Every step is one implicit stage ``(I − κL)ρ_{n+1} = r`` solved with the moments implicit:

- ``"be"``, backward Euler (order 1, L-stable): ``κ = h``, ``r = ρ_n``. Positive for every γ
  and h (M-matrix).
- ``"bdf2"``, variable-step BDF2 (order 2, L-stable for constant steps, zero-stable for step
  ratios ``ω = h_n/h_{n−1} < 1 + √2``; the controller keeps ``ω ≤ 2``):
  ``κ = h(h + h₁)/(2h + h₁)``, ``r = κ[(h + h₁)/(h h₁) ρ_n − h/(h₁(h + h₁)) ρ_{n−1}]``.
  The first step is backward Euler. Since ``r`` may be negative where a density drops by more
  than a factor ≈ 4 in one step (tails during transients), a result with negative entries is
  limited: if their mass is at most the step's own local error estimate (below) plus
  ``10⁻³(atol + rtol‖ρ_p‖₁)``, they are set to zero and the population rescaled to its exact
  mass (``info["positivity_clips"]``; the change is then no larger than the local error, so the
  order is kept); otherwise the step is redone with backward Euler
  (``info["positivity_fallbacks"]``, :func:`clip_allowed`). So ``ρ ≥ 0`` always holds and mass
  is kept to round-off.

Local error estimate (Milne's device): the step is compared with the polynomial predictor built
from ``ρ_n``, ``f_n = L ρ_n`` (exact: ``f_{n+1} = (ρ_{n+1} − r)/κ``) and, for BDF2, ``ρ_{n−1}``:
``err = (ρ_{n+1} − ρ_n − h f_n)/2`` (BE) and ``err = (h + h₁)/(3h + 2h₁) (ρ_{n+1} − p(t_{n+1}))``
(BDF2, ``p`` the quadratic through ``ρ_{n−1}``, ``ρ_n`` with slope ``f_n`` at ``t_n``).
Its size is measured per population in L1, ``‖err_p‖₁ / (atol + rtol ‖ρ_p‖₁)``, and the step
accepted when the largest is ≤ 1; the next step is ``h·min(f_max, max(0.2, 0.9 err^{−1/(k+1)}))``.

The meaning of ``rtol``/``atol`` (the same for every solver built on this module: the native
``solve``, the zoomed ``solve_rescaled`` and the γ = ∞ constrained equation): the local error of
one step, measured in L1 over the cells, ``Σ_i h_i |err_{p,i}|``, is at most
``atol + rtol·Σ_i h_i |ρ_{p,i}|`` for every population ``p``, i.e. for unit-mass densities at most
``atol + rtol`` of probability mass moves wrongly per step. The norm is invariant under a change
of the space variable (a zoomed frame ``x = c + λz`` with ``q = λρ`` has the same L1 norms), so
``rtol`` means the same in every frame.

Reuse: :func:`take_step` advances a :class:`StepState` by one step of a given size for any
:class:`~solvers.implicit.StageProblem`; :class:`Controller` proposes step sizes; :func:`march`
combines them over a list of output times (fixed ``dt`` or adaptive) and :func:`integrate` wraps
it for a fixed grid. A moving frame (:mod:`solvers.rescaled`) hands :func:`march` a callable
``stage_for(state, h)`` that builds the stage problem of the step from ``state`` to
``state.t + h`` (its frame in ``problem.frame``, which the new state carries on); a stage
problem with a method ``deviation(state, h, rho, bdf2)`` supplies ``Σ_i h_i |ρ_{n+1} − p|`` per
population itself (the predictor carried onto its moving grid). On a fixed grid with a constant
affine coupling, :func:`integrate` runs by default the compiled twin of :func:`march`
(:mod:`solvers.march_numba`): the same steps, counters and results to round-off, with the
constants of both loops in one :class:`StepRules` (:data:`RULES`).

Cost: the BDF2 right-hand side is one fused pass (``kernel.combine``), the stage one compiled
Newton call when the kernel has one (:mod:`solvers.implicit`), and the tail of the step (``f``,
its readout ``dm/dt`` kept for the next predictor, the error sums, the limiting) one fused pass
(``kernel.finish``, :func:`solvers.kernels.finish_step_numpy`), two when limiting; with the
numba kernel and an affine coupling the three are one compiled call
(:mod:`solvers.kernels_numba_fused`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from meanfield.errors import bad_value
from solvers.implicit import (
    AffineCoupling,
    StageProblem,
    StageResult,
    continue_stage,
    solve_stage,
)
from solvers.kernels import combine_numpy, finish_step_numpy
from solvers.stepping_options import (  # noqa: F401  (re-exported: the front doors import them)
    BAR_FORMAT,
    Tally,
    advance,
    budget_message,
    check_step_options,
    progress_bar,
    stage_failure_message,
    underflow_message,
)

ORDERS = {"be": 1, "bdf2": 2}
"""Declared order of each scheme."""
ENGINES = ("auto", "python", "compiled")
"""Time loops of :func:`integrate`: this module's :func:`march`, or its compiled twin
(:mod:`solvers.march_compiled`, for a fixed grid with a constant affine coupling and the numba
kernel); ``"auto"`` takes the compiled one when it applies."""


@dataclass(frozen=True)
class StepRules:
    """The constants of the step-size and limiting rules, one definition for both time loops
    (:func:`march` and its compiled twin :mod:`solvers.march_numba`).

    ``safety``, ``shrink`` and the growth limits make the proposal
    ``h·min(growth, max(shrink, safety·err^{−1/(k+1)}))`` (growth 1 after a reject);
    ``ladder_steps``: proposals are rounded down to ``2^{j/ladder_steps}`` (:func:`ladder`);
    ``step_floor``: a rejected step below ``step_floor·|t|`` (or 1e-300) stops the run;
    ``clip_slack``: the mass a limited BDF2 stage may lose beyond its error estimate, in units
    of ``atol + rtol‖ρ_p‖₁`` (:func:`clip_allowed`); ``predictor_trust``: the extrapolated moments
    start Newton only if they move every moment by at most this fraction of its size.
    """

    safety: float = 0.9
    shrink: float = 0.2
    growth_bdf2: float = 2.0
    growth_be: float = 5.0
    ladder_steps: int = 8
    step_floor: float = 1e-14
    clip_slack: float = 1e-3
    predictor_trust: float = 0.1

    def growth(self, scheme: str) -> float:
        """The largest step ratio of ``scheme`` (BDF2 is zero-stable for ratios < 1 + √2)."""
        return self.growth_bdf2 if scheme == "bdf2" else self.growth_be

    def as_array(self, scheme: str) -> np.ndarray:
        """``[safety, shrink, growth, ladder_steps, step_floor, clip_slack, predictor_trust]``
        (the ``rules`` of :mod:`solvers.march_numba`)."""
        return np.array([self.safety, self.shrink, self.growth(scheme), self.ladder_steps,
                         self.step_floor, self.clip_slack, self.predictor_trust], dtype=float)


RULES = StepRules()
"""The rules every time loop of the package uses."""


@dataclass(frozen=True, eq=False)
class StepState:
    """The solution at ``t`` with its moments ``m``, derivative ``f = Lρ`` and one past value."""

    t: float
    rho: np.ndarray
    m: np.ndarray
    f: np.ndarray
    t_prev: float | None = None
    rho_prev: np.ndarray | None = None
    m_prev: np.ndarray | None = None
    m_slope: np.ndarray | None = None
    """``dm/dt = w·f`` when already known (else read out from ``f`` when needed)."""
    frame: Any = None
    """The frame of the grid at ``t`` (``problem.frame`` of the stage that produced it)."""


@dataclass(frozen=True, eq=False)
class StepResult:
    """One attempted step: the new state (``None`` if the Newton solve failed), its error norm."""

    state: StepState | None
    error: float
    order: int
    newton: int
    fallback: bool
    clipped: bool = False


def initial_state(problem: StageProblem, rho: np.ndarray, t: float) -> StepState:
    """The state at the start: moments read out, derivative evaluated explicitly."""
    m = problem.readout(rho)
    return StepState(t=float(t), rho=rho, m=m, f=problem.operator(rho, m, float(t)))


def error_norm(problem: StageProblem, err: np.ndarray, rho: np.ndarray, rtol: float,
               atol: float) -> float:
    """``max_p ‖err_p‖₁ / (atol + rtol ‖ρ_p‖₁)`` (L1 with the cell widths)."""
    scale = atol + rtol * (np.abs(rho) @ problem.widths)
    return float(np.max((np.abs(err) @ problem.widths) / scale))


def _guess(problem: StageProblem, state: StepState, h: float) -> tuple[np.ndarray, bool]:
    """The start of Newton: the moments extrapolated to ``t + h`` when they move every moment
    by at most ``RULES.predictor_trust`` of its size (then ``True``), else ``state.m``."""
    slope = state.m_slope if state.m_slope is not None else problem.readout(state.f)
    # on the P floats (numpy's overhead per operation exceeds the work; same IEEE operations)
    m, rates = state.m.tolist(), np.asarray(slope, dtype=float).tolist()
    change = [h * r for r in rates]
    if state.m_prev is not None:  # quadratic through m_{n-1}, m_n with slope dm/dt at t_n
        h1 = state.t - state.t_prev
        bend = (h / h1) ** 2
        change = [c + (a - b + r * h1) * bend
                  for c, a, b, r in zip(change, state.m_prev.tolist(), m, rates, strict=True)]
    trust = RULES.predictor_trust
    small = all(abs(c) <= trust * (abs(v) + 1e-12) for c, v in zip(change, m, strict=True)
                ) and getattr(problem.coupling, "target", None) is None  # (else: no slope)
    if not small:
        return state.m, False
    return np.array([v + c for v, c in zip(m, change, strict=True)]), True


def _stage(problem: StageProblem, state: StepState, rhs: np.ndarray, kappa: float, t_new: float,
           h: float) -> Any:
    guess, small = _guess(problem, state, h)
    return _settle(problem, state, rhs, kappa, t_new, small,
                   solve_stage(problem, rhs, kappa, t_new, guess))


def _settle(problem: StageProblem, state: StepState, rhs: np.ndarray, kappa: float,
            t_new: float, small: bool, result: StageResult) -> Any:
    """``(result, iterations)``, or a second solve from ``state.m`` if the one from the
    extrapolated moments failed."""
    if not result.converged and small:
        retry = solve_stage(problem, rhs, kappa, t_new, state.m)
        return retry, result.iterations + retry.iterations
    return result, result.iterations


def _fused(problem: StageProblem, state: StepState) -> Any:
    """The compiled BDF2 stage of the kernel (:mod:`solvers.kernels_numba_fused`) when it
    applies: an :class:`~solvers.implicit.AffineCoupling` in the P moments."""
    fused = problem.kernel.bdf2_stage
    if fused is None or type(problem.coupling) is not AffineCoupling or (
            problem.coupling.unknown_slopes.shape[1] != state.m.size):
        return None
    return fused


def _bdf2_stage(problem: StageProblem, state: StepState, fused: Any, kappa: float, c_n: float,
                c_prev: float, ratio: float, t_new: float, h: float) -> tuple[Any, ...]:
    """``(rhs, stage, iterations, tail)`` of a BDF2 step by one compiled call; ``tail`` is
    ``None`` when that Newton failed (then continued as in :func:`_stage`)."""
    guess, small = _guess(problem, state, h)
    coupling = problem.coupling
    rhs, rho, m, its, ok, residual, f_new, slope, sums = fused(
        state.rho, c_n, state.rho_prev, c_prev, coupling.folded_base(t_new),
        coupling.unknown_slopes, problem.scale, problem.widths, problem.weights, kappa, guess,
        60, problem.moment_rtol, problem.workspace, state.f, ratio, h, problem.centred)
    first = StageResult(rho, m, its, bool(ok), residual)
    if ok:
        return rhs, first, its, (rho, f_new, slope, sums)
    stage, newton = _settle(problem, state, rhs, kappa, t_new, small,
                            continue_stage(problem, rhs, kappa, t_new, guess, first))
    return rhs, stage, newton, None


_NO_HISTORY = np.empty((0, 0))


def _tail(problem: StageProblem, rho: np.ndarray, rhs: np.ndarray, kappa: float,
          state: StepState, bdf2: bool, ratio: float, h: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(limited ρ, f_new, w·f_new, sums)`` of :func:`solvers.kernels.finish_step_numpy`."""
    finish = problem.kernel.finish or finish_step_numpy
    previous = state.rho_prev if bdf2 else _NO_HISTORY
    return finish(rho, rhs, kappa, state.rho, state.f, previous, ratio, h, problem.weights,
                  problem.widths)


def _deviation(problem: StageProblem, state: StepState, h: float, rho: np.ndarray, bdf2: bool,
               fixed: np.ndarray) -> np.ndarray:
    """``Σ|ρ_{n+1} − p| h`` per population: ``fixed`` (predictor at fixed grid points), or what
    the stage problem's ``deviation(state, h, rho, bdf2)`` returns (a moving grid)."""
    hook = getattr(problem, "deviation", None)
    return fixed if hook is None else hook(state, h, rho, bdf2)


def clip_allowed(sums: np.ndarray, rtol: float, atol: float, factor: float) -> bool:
    """Whether a BDF2 stage with negative entries may keep its limited densities (see above).

    ``sums`` are those of :func:`solvers.kernels.finish_step_numpy` and ``factor`` is
    ``(h + h₁)/(3h + 2h₁)``: the negative mass ``N_p`` (row 4) must be at most the local error
    estimate of the unlimited stage, ``factor·‖ρ_{n+1} − p(t_{n+1})‖₁`` (row 6), plus
    ``10⁻³(atol + rtol ‖ρ_p‖₁)`` (``RULES.clip_slack``), and every limited population must
    keep a positive mass (row 3).
    (Since ``p ≥ 0`` makes ``‖ρ_{n+1} − p‖₁ ≥ |N_p|``, a dip is kept only inside a larger change.)
    """
    limit = factor * sums[6] + RULES.clip_slack * (atol + rtol * sums[7])
    return not (np.any(-sums[4] > limit) or np.any(sums[3] <= 0))


def take_step(problem: StageProblem, state: StepState, h: float, scheme: str, *,
              rtol: float = 5e-7, atol: float = 5e-10) -> StepResult:
    """Advance ``state`` by ``h`` with ``scheme`` ("be" or "bdf2"); estimate the local error."""
    t_new = state.t + h
    use_bdf2 = scheme == "bdf2" and state.rho_prev is not None
    newton = 0
    fallback = clipped = False
    if use_bdf2:
        h1 = state.t - state.t_prev
        ratio = h / h1
        kappa = h * (h + h1) / (2 * h + h1)
        c_n, c_prev = kappa * (h + h1) / (h * h1), -(kappa * h / (h1 * (h + h1)))
        fused, tail = _fused(problem, state), None
        if fused is not None:  # right-hand side, stage and tail in one compiled call
            rhs, stage, newton, tail = _bdf2_stage(problem, state, fused, kappa, c_n, c_prev,
                                                   ratio, t_new, h)
        else:
            combine = problem.kernel.combine or combine_numpy
            rhs = combine(state.rho, c_n, state.rho_prev, c_prev)
            stage, newton = _stage(problem, state, rhs, kappa, t_new, h)
        if not stage.converged:
            return StepResult(None, np.inf, 2, newton, False)
        # predictor p(t_{n+1}): quadratic through ρ_{n−1}, ρ_n with slope f_n at t_n
        rho, f_new, slope, sums = tail or _tail(problem, stage.rho, rhs, kappa, state, True,
                                                ratio, h)
        if any(low < 0 for low in sums[2].tolist()):  # negative entries: keep the limited ρ
            # if allowed (see above)
            if not clip_allowed(sums, rtol, atol, (h + h1) / (3 * h + 2 * h1)):
                use_bdf2, fallback = False, True
            else:
                clipped = True
                moments = stage.m if getattr(problem.coupling, "target", None) else sums[5]
                stage = StageResult(rho, moments, stage.iterations, True, stage.residual)
        if use_bdf2:
            error = _deviation(problem, state, h, rho, True, sums[0]) * (
                (h + h1) / (3 * h + 2 * h1))
    if not use_bdf2:
        kappa, rhs = h, state.rho
        stage, extra = _stage(problem, state, rhs, kappa, t_new, h)
        newton += extra
        if not stage.converged:
            return StepResult(None, np.inf, 1, newton, fallback)
        rho, f_new, slope, sums = _tail(problem, stage.rho, rhs, kappa, state, False, 0.0, h)
        error = _deviation(problem, state, h, rho, False, sums[0]) * 0.5  # (nothing limited)
    new = StepState(t=t_new, rho=rho, m=stage.m, f=f_new, t_prev=state.t,
                    rho_prev=state.rho, m_prev=state.m, m_slope=slope, frame=problem.frame)
    return StepResult(new, _norm(error, sums[1], rtol, atol), 2 if use_bdf2 else 1, newton,
                      fallback, clipped)


def _norm(error: np.ndarray, size: np.ndarray, rtol: float, atol: float) -> float:
    """``max_p error_p / (atol + rtol·size_p)`` on the P floats (NaN if any term is NaN, as
    ``np.max``)."""
    terms = [e / (atol + rtol * v) for e, v in zip(error.tolist(), size.tolist(), strict=True)]
    return math.nan if any(u != u for u in terms) else max(terms)


def ladder(h: float, steps: int = RULES.ladder_steps) -> float:
    """``h`` rounded down to the ladder ``2^{k/8}``: step sizes then do not follow round-off
    noise in the error estimates, so runs that differ only by round-off (two codings of one
    equation, another kernel, the compiled loop) take the same steps and agree to round-off.
    ``k`` from ``log2``, then corrected so that ``2^{k/8} ≤ h < 2^{(k+1)/8}`` holds for the
    computed powers (the result depends only on ``pow``, not on the ``log2`` round-off)."""
    if not (h > 0 and h < math.inf):
        return h
    k = math.floor(steps * math.log2(h))
    if 2.0 ** ((k + 1) / steps) <= h:
        k += 1
    elif 2.0 ** (k / steps) > h:
        k -= 1
    return 2.0 ** (k / steps)


@dataclass
class Controller:
    """Step-size proposals ``h·min(f_max, max(0.2, 0.9·err^{−1/(k+1)}))`` (f_max = 1 after a
    reject), rounded down to :func:`ladder` (constants from ``rules``)."""

    scheme: str
    growth: float = field(init=False)
    rejected_last: bool = False
    rules: StepRules = RULES

    def __post_init__(self) -> None:
        self.growth = self.rules.growth(self.scheme)

    def next_step(self, h: float, error: float, order: int, accepted: bool) -> float:
        limit = 1.0 if (self.rejected_last or not accepted) else self.growth
        if error == 0:
            factor = limit
        else:
            factor = min(limit, max(self.rules.shrink,
                                    self.rules.safety * error ** (-1.0 / (order + 1))))
        self.rejected_last = not accepted
        return ladder(h * factor, self.rules.ladder_steps)


def first_step(problem: StageProblem, state: StepState, span: float) -> float:
    """``0.01·‖ρ‖₁/‖f‖₁`` (the time for a 1 % change), capped by the whole span."""
    speed = float(np.max((np.abs(state.f) @ problem.widths)
                         / np.maximum(np.abs(state.rho) @ problem.widths, 1e-300)))
    return span if speed == 0 else min(span, 0.01 / speed)


def integrate(problem: StageProblem, rho0: np.ndarray, save_at: Sequence[float], *,
              scheme: str = "bdf2", dt: float | None = None, rtol: float = 5e-7,
              atol: float = 5e-10, max_steps: int = 1_000_000,
              progress: bool = False, engine: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """Densities at every time of ``save_at`` (sorted, first = start), starting from ``rho0``.

    ``dt=None``: adaptive steps (error control above); a float: steps of at most ``dt``, equal
    within each interval between output times so that every output time is hit exactly.
    ``engine`` (:data:`ENGINES`): ``"python"`` runs :func:`march`, ``"compiled"`` its compiled
    twin (:func:`solvers.march_compiled.integrate_compiled`: the same steps, counters and
    results to round-off, without the Python cost per step), ``"auto"`` the compiled one when
    it applies (:func:`solvers.march_compiled.compiled_applies`).
    Returns the frames (nt, P, M) and a dictionary of counters, with ``engine`` and
    ``stepping_time`` (seconds in the time loop).
    """
    import time

    from solvers.march_compiled import compiled_applies, integrate_compiled

    if engine not in ENGINES:
        bad_value("engine", engine, f"one of {ENGINES}")
    if scheme not in ORDERS:
        bad_value("scheme", scheme, f"one of {tuple(ORDERS)}")
    applies = compiled_applies(problem)
    if engine == "compiled" and not applies:
        bad_value("engine", engine, "'python' or 'auto' for this problem (the compiled loop needs "
                  "the numba kernel and a constant affine coupling without time-dependent "
                  "inputs)")
    save_at = np.asarray(save_at, dtype=float)
    started = time.perf_counter()
    if engine == "compiled" or (engine == "auto" and applies):
        frames, counters = integrate_compiled(problem, rho0, save_at, scheme=scheme, dt=dt,
                                              rtol=rtol, atol=atol, max_steps=max_steps,
                                              progress=progress)
        name = "compiled"
    else:
        state = initial_state(problem, np.array(rho0, dtype=float), float(save_at[0]))
        states, counters = march(lambda _state, _h: problem, state, save_at, scheme=scheme,
                                 dt=dt, rtol=rtol, atol=atol, max_steps=max_steps,
                                 progress=progress)
        frames, name = np.array([s.rho for s in states]), "python"
    return frames, {**counters, "engine": name, "stepping_time": time.perf_counter() - started}


StageFor = Callable[[StepState, float], StageProblem]
"""``stage_for(state, h)``: the stage problem of the step from ``state`` to ``state.t + h``."""


def march(stage_for: StageFor, state: StepState, save_at: Sequence[float], *,
          scheme: str = "bdf2", dt: float | None = None, rtol: float = 5e-7,
          atol: float = 5e-10, max_steps: int = 1_000_000, progress: bool = False,
          desc: str = "sg") -> tuple[list[StepState], dict[str, Any]]:
    """The states at every time of ``save_at`` (sorted, ``save_at[0] = state.t``), and counters.

    The one time loop of the package: every step is :func:`take_step` on the stage problem
    ``stage_for(state, h)``; adaptive steps follow :class:`Controller`, fixed ``dt`` as in
    :func:`integrate`.
    """
    if scheme not in ORDERS:
        bad_value("scheme", scheme, f"one of {tuple(ORDERS)}")
    save_at = np.asarray(save_at, dtype=float)
    saved = [state]
    tally = Tally()
    span = float(save_at[-1] - save_at[0])
    bar = progress_bar(progress, span, desc)
    controller = Controller(scheme)
    h = first_step(stage_for(state, span), state, span) if dt is None else float(dt)
    for k in range(1, save_at.size):
        target = float(save_at[k])
        if dt is not None:
            count = max(1, int(np.ceil((target - state.t) / dt * (1 - 1e-12))))
            times = state.t + (target - state.t) * np.arange(1, count + 1) / count
            times[-1] = target
            for t_next in times:
                h_step = float(t_next - state.t)
                result = take_step(stage_for(state, h_step), state, h_step, scheme, rtol=rtol,
                                   atol=atol)
                tally.newton_iterations += result.newton
                if result.state is None:
                    raise RuntimeError(stage_failure_message(state.t, h_step))
                state = result.state
                if t_next == target:
                    state = replace(state, t=target)
                tally.accept(h_step, result)
                advance(bar, h_step)
                _check_budget(tally, max_steps)
        else:
            while state.t < target:
                remaining = target - state.t  # within one rung of the ladder below: land
                h_step = remaining if h >= remaining * LANDING * (1 - 1e-12) else (
                    remaining / 2 if h > remaining / 2 else h)
                result = take_step(stage_for(state, h_step), state, h_step, scheme, rtol=rtol,
                                   atol=atol)
                tally.newton_iterations += result.newton
                accepted = result.state is not None and result.error <= 1.0
                h = controller.next_step(h_step, result.error if result.state is not None
                                         else 1e6, result.order, accepted)
                if not accepted:
                    tally.rejected += 1
                    if h < RULES.step_floor * abs(state.t) or h < 1e-300:  # round-off of t
                        raise RuntimeError(underflow_message(state.t, h))
                    continue
                new = result.state
                if h_step == remaining:
                    new = replace(new, t=target)
                state = new
                tally.accept(h_step, result)
                advance(bar, h_step)
                _check_budget(tally, max_steps)
        saved.append(state)
    if bar is not None:
        bar.close()
    return saved, tally.as_dict()


LANDING = 2.0 ** (-1.0 / RULES.ladder_steps)
"""A proposal a ladder rung short of the next saved time lands on it (the ladder rounds down:
else two steps per saved time for ever, 160 where 80 do on the 3-population benchmark)."""


def _check_budget(tally: Tally, max_steps: int) -> None:
    if tally.steps > max_steps:
        raise RuntimeError(budget_message(max_steps))
