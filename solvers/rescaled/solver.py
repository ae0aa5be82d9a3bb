r"""The front doors of the zoomed solvers: :func:`solve_rescaled` (exact) and :func:`solve_zoomed`.

Both integrate the mean-field PDE on windows that follow each population's profile
(:mod:`solvers.rescaled.frame`), with the stage problems of :mod:`solvers.rescaled.stage` and the
one time loop of the package (:func:`solvers.stepping.march`): the same error norm, meaning of
``rtol``/``atol``, positivity rule, step-size controller and counters as :func:`solvers.solve`
(``docs/mathematics.md §6, §10``).
"""

from __future__ import annotations

import time as clock
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from meanfield.errors import ResolutionWarning, bad_type, bad_value, check_finite_number
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.grid import check_cells
from solvers.implicit import AffineCoupling, StageProblem
from solvers.kernels import stage_kernel
from solvers.rescaled.fields import Fields, zero_candidates
from solvers.rescaled.frame import Frame, ZoomGrid, follow, placement_rates
from solvers.rescaled.initial import initial_states, moments_of
from solvers.rescaled.kernels import frame_kernel
from solvers.rescaled.result import RescaledSolution
from solvers.rescaled.rounding import rounding_floor
from solvers.rescaled.smearing import Smearing
from solvers.rescaled.stage import (
    MOMENT_RTOL,
    Balance,
    Velocity,
    callable_problem,
    exact_problem,
)
from solvers.stepping import StepState, check_step_options, march

GAMMA_MAX = 1e14
"""Largest coupling of the zoomed solvers: beyond it the moments, known to round-off, no longer
fix the drift across a concentration width (``γ ε`` times their rounding exceeds O(1))."""
MIN_CELLS_PER_STD = 1.0
"""Below this many cells per standard deviation a failed run names the resolution as its
cause (measured: the frame no longer follows the profile below about 0.8)."""
FLOOR_MARGIN = 0.25
"""``rtol + atol`` below this fraction of the rounding floor draws a warning (measured on the
three-population benchmark from a concentrated start to t = 5, floor 3.3e-8 at γ = 1e12 and
3.3e-7 at 1e14: 0.3 of it ran in 749 and 515 steps with a tenth rejected, 0.15 ran out of
20 000 steps at both)."""
COARSE_CELLS_PER_STD = 4.0
"""Below this many cells per standard deviation a run that exceeds ``max_steps`` also advises
more cells (measured: a chemical model at γ = 324, window 7.1: 24 cells, 1.7 per std, more
than 20 000 steps; 48 cells 5810; 100 cells 1283)."""
VARIANCE_TOLERANCE = 1e-2
"""Expected relative variance error (:mod:`solvers.rescaled.smearing`) above which the zoomed
solvers emit a :class:`ResolutionWarning` (the default tolerance of :mod:`solvers.resolution`)."""


def _check_options(model: Any, gamma: Any, t_final: Any, cells: Any, scheme: Any,
                   method: Any, rtol: Any, atol: Any, window: Any, dt: Any, max_steps: Any
                   ) -> tuple:
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, positive=True)
    if gamma > GAMMA_MAX:
        bad_value("gamma", gamma, f"a coupling up to {GAMMA_MAX:g} (the range of the zoomed "
                  "solver: beyond it round-off in the moments moves the profile by more than "
                  "its width; for the limit itself use solvers.limits.balance_points)")
    t_final = check_finite_number("t_final", t_final, positive=True)
    cells = check_cells(cells, minimum=8)
    scheme, rtol, atol, dt, max_steps = check_step_options(
        "solve_rescaled", scheme=scheme, method=method, rtol=rtol, atol=atol, dt=dt,
        max_steps=max_steps, stacklevel=3)
    window = check_finite_number("window", window, positive=True)
    if window < 4:
        bad_value("window", window, "a half-width of at least 4 standard deviations")
    return gamma, t_final, cells, scheme, rtol, atol, window, dt, max_steps


def solve_rescaled(model: Model, *, gamma: float, t_final: float, cells: int = 200,
                   initial: Any = None, scheme: str = "bdf2", dt: float | None = None,
                   rtol: float = 1e-6, atol: float = 1e-10, window: float = 10.0,
                   save_at: Sequence[float] | None = None, max_steps: int = 100_000,
                   method: str | None = None) -> RescaledSolution:
    r"""Solve the mean-field PDE of ``model`` on windows that follow the profiles, at any γ.

    The density of every population lives on ``cells`` cells of a window that moves with its
    profile (``x = c + βz``, about ``mean ± window·std``; :mod:`solvers.rescaled.frame`); the PDE
    is solved there exactly (moving-frame Scharfetter–Gummel, moments implicit), so the cells
    needed do not depend on γ and the initial layer (profiles travelling and contracting by
    many widths in a time O(1/γ)) is resolved on the default grid. The steps grow slowly with
    γ from a wide start, which contracts through ½ln γ e-folds first.

    Parameters
    ----------
    model : a concentrating :class:`meanfield.Model` (every ``h_p`` has a zero with
        ``∂_x h_p > 0`` near the initial profile; otherwise ``ValueError``)
    gamma : coupling strength in ``(0, 1e14]`` (``ValueError`` beyond)
    t_final : final time > 0
    cells : cells per population
    initial : ``None`` (the model's initial densities), or one entry (used for every
        population) or P entries, each

        * a callable of ``x`` (any normalisation): its mass is located by midpoint scans of the
          domain, 4000 cells refined ×16 up to 1.6e7 cells, then zoomed in on until resolved;
        * :class:`Gaussian` ``(mean, std)``: placed exactly, however narrow;
        * an ``(x, density)`` pair of 1-D arrays: samples on your own grid (strictly increasing
          ``x`` inside the domain), linearly interpolated and zero outside; moments exact.

        Non-finite or negative values, or a density with no positive mass, raise ``ValueError``
        naming ``initial[p]`` and the offending value (and where it is)
    scheme : ``"bdf2"`` (second order, default) or ``"be"`` (first order): the schemes of
        :mod:`solvers.stepping`, positive and conservative to round-off
    dt : ``None`` for adaptive steps with ``rtol``/``atol`` (meaning as in
        :mod:`solvers.stepping`: L1 local error per step per unit mass), or a fixed step
    window : half-width of each window in standard deviations of its profile (≥ 4): the first
        windows are ``mean ± window·std`` cut to the domain; later ones keep the profile where
        it sits in its window, a cut one growing back to ``window`` std at the diffusive rate
        ``D/σ²``, and an edge recedes only over empty cells
    save_at : times in ``[0, t_final]`` to save, with 0 and ``t_final`` always added (the rules
        of :func:`solvers.solve`; default: 101 equal frames)
    method : deprecated name of ``scheme``

    Notes
    -----
    The expected relative error of each population's variance from the spatial discretisation
    (the smearing of a profile that moves across the cells, and the aliasing of too few cells
    per standard deviation; :mod:`solvers.rescaled.smearing`) is tracked over every step and
    returned at the saved times in ``info["variance_error"]`` (nt, P); a
    :class:`meanfield.errors.ResolutionWarning` names the time, the error and the cells that
    bring it below ``VARIANCE_TOLERANCE`` (1e-2) when it is exceeded.

    The drift is γ times the moments, which are known to a relative ``MOMENT_RTOL`` (1e-14):
    the local error estimates cannot fall below the noise this makes,
    ``√(2/π)·1e-14·γΣ_j|g_pj Φ_pj m_j|/(κ_p D_p)^{1/2}`` (:mod:`solvers.rescaled.rounding`;
    3.3e-8 at γ = 1e12 on a three-population model), and an ``rtol + atol`` below a quarter of
    it draws a :class:`~meanfield.errors.ResolutionWarning` naming the floor (the steps stall).
    """
    gamma, t_final, cells, scheme, rtol, atol, window, dt, max_steps = _check_options(
        model, gamma, t_final, cells, scheme, method, rtol, atol, window, dt, max_steps)
    nm = numeric(model)
    kernel_name, kernel = stage_kernel("auto")
    assemble, carry = frame_kernel(kernel_name).assemble, frame_kernel(kernel_name).carried

    coupling = gamma * nm.g

    scratch: dict[str, Any] = {}  # the kernel's work arrays, for every stage of this run

    def build(frame: Frame, grid: ZoomGrid) -> StageProblem:
        return exact_problem(nm, gamma, frame, grid, kernel, assemble, carry, coupling, scratch)

    def check(m0: np.ndarray, mean0: np.ndarray) -> None:
        fields = Fields.of(nm)
        m_all = nm.all_moments(m0, 0.0)
        zeros = np.empty(nm.P)
        for p in range(nm.P):
            try:
                zeros[p] = fields.stable_zero(p, m_all, float(mean0[p]))
            except ValueError:
                candidates = zero_candidates(fields, p, m_all)
                if candidates.size == 0:
                    raise
                zeros[p] = candidates[np.argmin(np.abs(candidates - mean0[p]))]
        if dt is None:
            _check_floor(model, rounding_floor(nm, gamma, m_all, zeros, MOMENT_RTOL), gamma,
                         rtol, atol)

    return _run(model, nm, gamma, t_final, build, cells=cells, initial=initial, scheme=scheme,
                dt=dt, rtol=rtol, atol=atol, window=window, save_at=save_at,
                max_steps=max_steps, kernel_name=kernel_name, check=check)


def _check_floor(model: Model, floor: np.ndarray, gamma: float, rtol: float,
                 atol: float) -> None:
    """Warn when the tolerance is below the rounding floor of the moments
    (:mod:`solvers.rescaled.rounding`): the error control would stall on round-off."""
    p = int(np.argmax(floor))
    if atol + rtol < FLOOR_MARGIN * floor[p]:
        warnings.warn(f"rtol={rtol:g} (atol={atol:g}) is below the rounding floor of the "
                      f"moments at gamma={gamma:g}: about {floor[p]:.2g} per step for population "
                      f"{model.names[p]!r} (the drift is gamma times the moments, known to a "
                      f"relative {MOMENT_RTOL:g}); the steps will stall on round-off and the "
                      f"result is no more accurate than that: use rtol >= {floor[p]:.2g}",
                      ResolutionWarning, stacklevel=5)


def solve_zoomed(model: Model, *, gamma: float, t_final: float, velocity: Velocity,
                 balance: Balance, cells: int = 200, initial: Any = None, scheme: str = "bdf2",
                 dt: float | None = None, rtol: float = 1e-6, atol: float = 1e-10,
                 window: float = 10.0, save_at: Sequence[float] | None = None,
                 max_steps: int = 100_000, method: str | None = None) -> RescaledSolution:
    r"""The zoomed solver with the drift given in the balance frame by callables (exact or truncated).

    Solves ``∂_t ρ_p = ∂_x(D_p ∂_x ρ_p + ∂_xU_p ρ_p)`` with ``∂_xU_p = −ε b_p(y; c, m, t)`` at
    ``y = (x − c_p)/ε``, ``ε = γ^{-1/2}``: ``velocity(p, y, c, m, t)`` is ``b_p`` (for the exact
    equation ``ε⁻¹ f(c + εy) − ε⁻³ h(c + εy)``) and ``balance(m, t, guess)`` returns the
    balance points ``c`` (P,) for the moments ``m`` (P,), the expansion points of ``b``. The
    windows, stepping and options are those of :func:`solve_rescaled`; the moments are the
    model's exact readouts.
    """
    gamma, t_final, cells, scheme, rtol, atol, window, dt, max_steps = _check_options(
        model, gamma, t_final, cells, scheme, method, rtol, atol, window, dt, max_steps)
    nm = numeric(model)
    kernel_name, kernel = stage_kernel("auto")
    eps = gamma ** -0.5
    guess: dict[str, np.ndarray] = {}

    def build(frame: Frame, grid: ZoomGrid) -> StageProblem:
        return callable_problem(nm, velocity, balance, eps, frame, grid, kernel, guess,
                                frame_kernel(kernel_name).carried)

    def check(m0: np.ndarray, mean0: np.ndarray) -> None:
        guess["c"] = np.asarray(balance(m0, 0.0, mean0), dtype=float)

    return _run(model, nm, gamma, t_final, build, cells=cells, initial=initial, scheme=scheme,
                dt=dt, rtol=rtol, atol=atol, window=window, save_at=save_at,
                max_steps=max_steps, kernel_name=kernel_name, check=check)


def _run(model: Model, nm: NumericModel, gamma: float, t_final: float,
         build: Callable[[Frame, ZoomGrid], StageProblem], *, cells: int, initial: Any,
         scheme: str, dt: float | None, rtol: float, atol: float, window: float,
         save_at: Any, max_steps: int, kernel_name: str,
         check: Callable[[np.ndarray, np.ndarray], None]) -> RescaledSolution:
    """Place the first windows on the initial profiles, march, assemble the result."""
    from solvers.solve import output_times

    domain = model.domain
    times = output_times(save_at, t_final, nm.P * cells, dt)
    starts = initial_states(nm, initial, domain)
    stats = [start.moments or moments_of(start.profile, domain, f"initial[{p}]")
             for p, start in enumerate(starts)]
    mean0 = np.array([mu for mu, _ in stats])
    grid = ZoomGrid.uniform(cells)
    frame = Frame.at_rest(0.0, mean0, np.array([sd for _, sd in stats]), window, domain)
    xs = frame.x(grid.centres)
    q0 = np.array([np.asarray(start.profile(xs[p]), dtype=float)
                   for p, start in enumerate(starts)])
    mass0 = q0 @ grid.widths
    if not np.all(mass0 > 0):
        p = int(np.argmin(mass0))
        bad_value(f"initial[{p}]", starts[p].profile, "an initial density with positive mass "
                  "on its window")
    q0 = q0 / mass0[:, None]
    problem = build(frame, grid)
    m0 = problem.readout(q0)
    check(m0, mean0)
    moments, advance = frame_kernel(kernel_name).moments, frame_kernel(kernel_name).follow
    smeared = frame_kernel(kernel_name).smearing
    for _ in range(3):  # the rates seen on a moving frame: little flow across it, no upwind bias
        move, grow = placement_rates(frame, grid, q0, problem.operator(q0, m0, 0.0), window,
                                     domain, nm.D, moments)
        frame = replace(frame, velocity=move, rate=grow)
        problem = build(frame, grid)
    state = StepState(t=0.0, rho=q0, m=m0, f=problem.operator(q0, m0, 0.0), frame=frame)
    last = {"problem": problem, "smearing": Smearing(t=0.0, error=np.zeros(nm.P),
                                                     per_std=np.full(nm.P, np.inf))}
    record = {}

    def smear(now: StepState) -> None:
        made = last["problem"]  # the last stage built made the level ``now`` (or rebuild it)
        made = made if made.frame is now.frame else build(now.frame, grid)
        coupling = made.coupling
        if isinstance(coupling, AffineCoupling):  # δ = base + slopes·m inside the kernel
            base, slopes = coupling.folded_base(now.t), coupling.unknown_slopes
            m = np.asarray(now.m, dtype=float)[: slopes.shape[1]]
        else:
            base, m = coupling.differences(now.m, now.t), np.empty(0)
            slopes = np.empty((base.shape[0], 0, base.shape[1]))
        last["smearing"] = last["smearing"].advanced(now.t, now.rho, base, slopes, m,
                                                     now.frame.half, nm.D, grid.centres,
                                                     grid.widths, smeared)
        record[now.t] = last["smearing"]

    smear(state)

    def stage_for(now: StepState, h: float) -> StageProblem:
        if now.t > last["smearing"].t:  # a new accepted level
            smear(now)
        last["problem"] = build(follow(now.frame, grid, now.rho, now.f, now.t + h,
                                       window=window, domain=domain, D=nm.D, scheme=scheme,
                                       kernel=advance), grid)
        return last["problem"]

    started = clock.perf_counter()
    try:
        states, counters = march(stage_for, state, times, scheme=scheme, dt=dt, rtol=rtol,
                                 atol=atol, max_steps=max_steps, desc="rescaled")
    except RuntimeError as error:
        per_std = last["smearing"].per_std
        p = int(np.argmin(per_std))
        if per_std[p] >= MIN_CELLS_PER_STD:
            if "max_steps" not in str(error) or per_std[p] >= COARSE_CELLS_PER_STD:
                raise
            raise RuntimeError(
                f"{error}; or use more cells: on {cells} cells the window of population "
                f"{model.names[p]!r} resolves its standard deviation by only {per_std[p]:.2g} "
                f"cells, where the steps stay short (cells >= "
                f"{int(np.ceil(cells * COARSE_CELLS_PER_STD / per_std[p]))} may finish sooner)"
                ) from error
        raise RuntimeError(
            f"{error}; on {cells} cells the window of population {model.names[p]!r} resolves "
            f"its standard deviation by only {per_std[p]:.2g} cells, too few for the frame "
            f"to follow the profile: use cells >= "
            f"{int(np.ceil(cells * MIN_CELLS_PER_STD / per_std[p]))} or a smaller window "
            f"(window={window:g})") from error
    if states[-1].t not in record:
        smear(states[-1])
    error = np.array([record[s.t].total() for s in states])
    info = {"scheme": scheme, "kernel": kernel_name, "dt": dt, "rtol": rtol, "atol": atol,
            **counters, "variance_error": error, "wall_time": clock.perf_counter() - started}
    if error.max() > VARIANCE_TOLERANCE:
        k, p = np.unravel_index(int(np.argmax(error)), error.shape)
        need = int(np.ceil(cells * error[k, p] / VARIANCE_TOLERANCE * 1.25))
        warnings.warn(f"the variance of population {model.names[p]!r} may be off by about "
                      f"{error[k, p]:.2g} (relative) at t={states[k].t:.6g}: on {cells} cells "
                      f"the flux smears a profile that moves across them (expected error above "
                      f"{VARIANCE_TOLERANCE:g}); use about cells={need} or more",
                      ResolutionWarning, stacklevel=3)
    return _assemble(model, nm, gamma, scheme, grid, states, info)


def _assemble(model: Model, nm: NumericModel, gamma: float, scheme: str, grid: ZoomGrid,
              states: list[StepState], info: dict[str, Any]) -> RescaledSolution:
    eps = gamma ** -0.5
    t = np.array([s.t for s in states])
    centre = np.array([s.frame.centre for s in states])
    half = np.array([s.frame.half for s in states])
    q = np.array([s.rho for s in states])
    mass = q @ grid.widths
    zbar = (q @ (grid.centres * grid.widths)) / mass
    var_z = np.einsum("tpi,tpi,i->tp", q, (grid.centres - zbar[..., None]) ** 2,
                      grid.widths) / mass
    m = np.array([s.m for s in states])
    residual = balance_residuals(nm, grid, t, centre, half, m, q)
    return RescaledSolution(model=model, gamma=gamma, eps=eps, scheme=scheme, t=t, center=centre,
                            y_edges=half[..., None] * grid.edges / eps,
                            rho=q / half[..., None], mass=mass, mean=centre + half * zbar,
                            var=half**2 * var_z, m=m, balance_residual=residual, info=info)


def balance_residuals(nm: NumericModel, grid: ZoomGrid, t: np.ndarray, centre: np.ndarray,
                      half: np.ndarray, m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``Σ_i |h_p(x_{p,i}; m)| q_{p,i} h_i`` (nt, P) at every saved level, ``h_p = Σ_j g_pj Φ_pj m_j``
    (:meth:`meanfield.numeric.NumericModel.field`), the model evaluated once on the cell centres
    of every level (:meth:`~meanfield.numeric.NumericModel.table`)."""
    nt, P, M = q.shape
    points = centre[..., None] + half[..., None] * grid.centres  # (nt, P, M)
    phi = nm.table(points.transpose(1, 0, 2).reshape(P, nt * M))[:, 1: nm.J + 1]
    phi = phi.reshape(P, nm.J, nt, M)
    m_all = np.array([nm.all_moments(m[k], t[k]) for k in range(nt)])  # (nt, J)
    field = np.zeros((P, nt, M))
    for j in range(nm.J):
        field += (nm.g[:, j, None] * m_all[None, :, j])[..., None] * phi[:, j]
    return np.einsum("pti,tpi,i->tp", np.abs(field), q, grid.widths)
