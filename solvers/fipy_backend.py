r"""The FiPy back end of :func:`solvers.solve` (``method="fipy"``): the same mean-field PDE in FiPy.

For every population ``p`` (docs/mathematics.md §2) the equation is written as FiPy users know it,

.. math:: \partial_t\rho_p = \nabla\!\cdot(D_p\nabla\rho_p) - \nabla\!\cdot(u_p\,\rho_p),
   \qquad u_p = f_p - \gamma h_p,\quad h_p(x) = \sum_j g_{pj}\,\Phi_{pj}(x)\,m_j,

i.e. ``TransientTerm() == DiffusionTerm(D_p) - ExponentialConvectionTerm(u_p)`` on a ``Grid1D``
with the cells of the :class:`~solvers.grid.Grid` (non-uniform widths allowed), the velocity a
rank-1 ``FaceVariable`` zero on the boundary faces (zero flux), one backward-Euler step a sweep.

The nonlocal moments ``m_q = ∫Ψ_q ρ_q`` are updated by *sweeps* (Picard iteration) inside every
step: solve all P populations with the current ``m``, recompute ``m``, repeat until the relative
residual ``|Lρ − b|/|b|`` of every population (FiPy's sweep residual) and the change of ``m``
(relative to ``Σ|Ψ_q|ρ_q h``) are both below ``sweep_tol``. The counts are in ``Solution.info``.

Where this path differs from the native Scharfetter–Gummel solver (``method="sg"``):

* **Equilibria.** FiPy's exponential scheme is Scharfetter–Gummel with the *face* velocity times
  the distance between centres in place of the exact potential difference ``ΔU``. With the
  default ``velocity="faces"`` (``u`` evaluated at the faces) its discrete equilibrium is not
  the Gibbs state ``exp(−U/D)``: the stationary densities differ from the exact ones of
  :func:`solvers.stationary_states` by O(h²) (second order, measured in the tests). With
  ``velocity="averaged"`` the face value is the mean drift between the two centres,
  ``u = −ΔU/Δx``; the fluxes are then those of the native scheme and the Gibbs states are fixed
  points to the sweep tolerance.
* **Lagged moments.** Sweeps are a fixed-point iteration on ``m``; they converge iff the
  linearised sweep map ``m ↦ w·(I − dt L(m))^{-1}ρ_n`` has spectral radius below 1
  (:func:`sweep_contraction` computes it). It grows with ``γ·dt`` from 0 to the spectral radius
  of the self-consistency (Gibbs) map. Measured on the named models (tests): with current-based
  coupling (``models.current_balanced``, Φ independent of x, γ ≥ 100) it is ``≈ 0.24 γ·dt``, so
  the sweeps converge up to ``γ·dt ≈ 4.2`` and diverge beyond; for ``models.chemical`` at γ = 1
  it is 0.47 at ``γ·dt = 16`` and 1.16 at 64 (limit in between; 1.59 as dt → ∞); for
  ``chemical`` at γ = 1000, ``chemical_single`` and ``linear_ou`` it stays ≤ 0.25 at every
  γ·dt on grids resolving the concentration width (no limit). On unresolved grids the radius
  can be much larger (``chemical``, γ = 1000, 100 uniform cells on [−5, 5]: 3.7 as dt → ∞).
  The native solver solves ``m`` by Newton and has no such limit. With a fixed ``dt`` a step
  whose sweeps fail raises :class:`SweepDivergenceError`, whose message gives the radius at
  that step and the ``γ·dt`` (and ``dt``) that brings it to 0.5; adaptive steps (``dt=None``)
  shrink the step instead, so they never exceed the limit.
* **Time stepping.** Backward Euler only (FiPy's ``TransientTerm``; first order). Fixed ``dt``
  cuts each interval between output times into equal steps ``≤ dt`` (as ``method="sg"``).
  Adaptive steps (the default) estimate the local error from the linear extrapolation of the
  last two accepted states (one solve per step, :func:`_adaptive_run`), accept when
  ``max_p err_p / (atol + rtol Σ|ρ_p| h) ≤ 1``, and do not stop at output times: frames
  between two steps are linearly interpolated (positive, unit mass). The global error scales
  like ``rtol^{1/2}``. **Defaults of this path** (``rtol``/``atol`` ``None``):
  ``rtol = FIPY_RTOL = 1e-3``, ``atol = FIPY_ATOL = 1e-6``, ``sweep_tol = rtol/1000``
  (the native ``5e-7`` needs millions of first-order steps). README example (``chemical``,
  γ = 100, 1000 cells, t = 1): about 200 steps of 3 sweeps, 34 s of CPU time (target ≤ 60 s),
  final density within L1 2e-6 of the native ``sg`` run (``benchmarks/bench_fipy_vs_native.py``);
  initial-layer error O(1e-2).
  No BDF2: its right-hand side ``4/3 ρ_n − 1/3 ρ_{n−1}`` is negative in moving tails and this
  path has no positivity limiter like the native one.
* **Positivity** holds in exact arithmetic (the exponential scheme gives an M-matrix); FiPy's LU
  solve with iterative refinement leaves round-off negatives of relative size ``< 1e-13``
  (e.g. ``−6e-198``) in far tails. Mass is conserved to round-off (``< 1e-12``).
* **Cost.** Every sweep rebuilds and solves FiPy's sparse system: see
  ``benchmarks/bench_fipy_vs_native.py``.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.fv import potential_differences
from solvers.grid import Grid
from solvers.observables import readouts
from solvers.solution import Solution
from solvers.stepping import advance, progress_bar

LINEAR_SOLVERS = {"lu": "LinearLUSolver", "gmres": "LinearGMRESSolver",
                  "bicgstab": "LinearBicgstabSolver", "cgs": "LinearCGSSolver"}
"""FiPy linear solvers of the SciPy suite usable for the (non-symmetric) convection matrices."""

VELOCITIES = ("faces", "averaged")
"""Face velocity: the drift at the faces, or its mean between the two centres (``−ΔU/Δx``)."""


FIPY_RTOL = 1e-3
"""Default ``rtol`` of the adaptive (first-order) FiPy steps; see the module docstring."""
FIPY_ATOL = 1e-6
"""Default ``atol`` of the adaptive FiPy steps (L1, the densities having unit mass)."""


def adaptive_sweep_tol(rtol: float) -> float:
    """Default ``sweep_tol`` with adaptive steps: ``rtol/1000`` in ``[1e-13, 1e-6]``."""
    return float(min(1e-6, max(1e-13, rtol * 1e-3)))


class SweepDivergenceError(RuntimeError):
    """The sweeps on the nonlocal moments did not converge within one fixed time step."""


@dataclass(frozen=True)
class FipyOptions:
    """Options of the FiPy back end (the ``**options`` of ``solve(..., method="fipy")``).

    ``solver``: FiPy linear solver (one of :data:`LINEAR_SOLVERS`); ``max_sweeps``: sweeps per
    step before giving up; ``sweep_tol``: tolerance on the relative sweep residual and on the
    relative change of ``m``; ``linear_tol``: tolerance of the linear solver relative to the
    right-hand side (default ``sweep_tol/100``); ``velocity``: one of :data:`VELOCITIES`;
    ``max_steps``: bound on accepted plus rejected steps.
    """

    solver: str = "lu"
    max_sweeps: int = 60
    sweep_tol: float = 1e-10
    linear_tol: float | None = None
    velocity: str = "faces"
    max_steps: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.solver, str):
            bad_type("solver", self.solver, f"one of {sorted(LINEAR_SOLVERS)}")
        if self.solver not in LINEAR_SOLVERS:
            bad_value("solver", self.solver, f"one of {sorted(LINEAR_SOLVERS)}")
        check_int("max_sweeps", self.max_sweeps, minimum=2)
        check_int("max_steps", self.max_steps, minimum=1)
        tol = check_finite_number("sweep_tol", self.sweep_tol, positive=True)
        if not 1e-13 <= tol < 1:
            bad_value("sweep_tol", self.sweep_tol, "a tolerance in [1e-13, 1) (round-off of the "
                      "sweep residual is about 1e-15)")
        if self.linear_tol is not None:
            lin = check_finite_number("linear_tol", self.linear_tol, positive=True)
            if lin >= 1:
                bad_value("linear_tol", self.linear_tol, "a tolerance in (0, 1) or None")
        if not isinstance(self.velocity, str) or self.velocity not in VELOCITIES:
            bad_value("velocity", self.velocity, f"one of {list(VELOCITIES)}")

    @property
    def linear_tolerance(self) -> float:
        return self.sweep_tol / 100 if self.linear_tol is None else float(self.linear_tol)


def fipy_options(**options: Any) -> FipyOptions:
    """Validated :class:`FipyOptions`; unknown names raise ``TypeError`` naming them."""
    known = set(FipyOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown FiPy option(s) {unknown}: allowed are {sorted(known)}")
    return FipyOptions(**options)


class _FipyProblem:
    """The P FiPy equations on one mesh, their face velocities and the moment readout."""

    def __init__(self, nm: NumericModel, grid: Grid, gamma: float, rho0: np.ndarray,
                 opts: FipyOptions) -> None:
        import fipy
        import fipy.solvers.scipy as fipy_scipy

        self.nm, self.grid, self.gamma, self.opts = nm, grid, float(gamma), opts
        P, M = nm.P, grid.cells
        mesh = fipy.Grid1D(dx=np.asarray(grid.h, dtype=float)) + (float(grid.edges[0]),)  # noqa: RUF005
        self.base, self.slopes = self._velocity_pieces(nm, grid, opts.velocity)
        self.weights = readouts(nm, grid.x) * grid.h[None, :]
        self.rho = [fipy.CellVariable(mesh=mesh, value=np.array(rho0[p], dtype=float),
                                      hasOld=True) for p in range(P)]
        self.velocity = [fipy.FaceVariable(mesh=mesh, rank=1, value=0.0) for _ in range(P)]
        self.equations = [
            fipy.TransientTerm(var=self.rho[p])
            == fipy.DiffusionTerm(coeff=float(nm.D[p]), var=self.rho[p])
            - fipy.ExponentialConvectionTerm(coeff=self.velocity[p], var=self.rho[p])
            for p in range(P)]
        solver_class = getattr(fipy_scipy, LINEAR_SOLVERS[opts.solver])
        self.solver = solver_class(tolerance=opts.linear_tolerance, criterion="RHS")
        self.face_values = np.zeros((P, M + 1))

    @staticmethod
    def _velocity_pieces(nm: NumericModel, grid: Grid, velocity: str
                         ) -> tuple[np.ndarray, np.ndarray]:
        """``u_p = base_p + Σ_j slopes_pj m_j`` on the interior faces (γ not yet applied)."""
        if velocity == "faces":
            faces = grid.edges[1:-1]
            base = np.array([nm.f[p](faces) for p in range(nm.P)])
            slopes = np.array([[-nm.g[p, j] * nm.phi[p][j](faces) * np.ones_like(faces)
                                for j in range(nm.J)] for p in range(nm.P)])
        else:
            dF, dG = potential_differences(nm, grid)
            base = dF / grid.dx[None, :]
            slopes = -nm.g[:, :, None] * dG / grid.dx[None, None, :]
        return base, slopes

    def set_velocity(self, m: np.ndarray, time: float) -> None:
        mj = self.nm.all_moments(m, time)
        self.face_values[:, 1:-1] = self.base + self.gamma * np.einsum("pji,j->pi",
                                                                       self.slopes, mj)
        for p in range(self.nm.P):
            self.velocity[p].setValue(self.face_values[p][None, :])

    def values(self) -> np.ndarray:
        return np.array([np.asarray(v.value, dtype=float) for v in self.rho])

    def set_values(self, rho: np.ndarray) -> None:
        for p, var in enumerate(self.rho):
            var.setValue(rho[p])

    def moments(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``m_q`` and the scale ``Σ|Ψ_q| ρ_q h`` of its relative tolerance."""
        return np.einsum("pi,pi->p", self.weights, rho), np.einsum(
            "pi,pi->p", np.abs(self.weights), np.abs(rho))

    def contraction(self, rho: np.ndarray, dt: float, time: float) -> float:
        """Spectral radius of ``∂S/∂m`` of the sweep map from ``rho`` (:func:`sweep_contraction`)."""
        m0, _ = self.moments(rho)

        def one_sweep(m: np.ndarray) -> np.ndarray:
            self.set_values(rho)
            for var in self.rho:
                var.updateOld()
            self.set_velocity(m, time)
            for eq in self.equations:
                eq.sweep(dt=dt, solver=self.solver)
            return self.moments(self.values())[0]

        jac = np.zeros((self.nm.P, self.nm.P))
        for j in range(self.nm.P):
            step = 1e-6 * max(1.0, abs(float(m0[j])))
            up, down = m0.copy(), m0.copy()
            up[j] += step
            down[j] -= step
            jac[:, j] = (one_sweep(up) - one_sweep(down)) / (2 * step)
        return float(np.max(np.abs(np.linalg.eigvals(jac))))

    def step(self, rho_old: np.ndarray, dt: float, time_new: float,
             guess: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:
        """One backward-Euler step with sweeps on ``m``: ``(ρ_new, sweeps)`` or ``None`` (failed).

        The sweeps start from ``guess`` (e.g. ``m`` extrapolated from the previous steps) or
        from the moments of ``rho_old``.
        """
        opts = self.opts
        self.set_values(rho_old)
        for var in self.rho:
            var.updateOld()
        m = self.moments(rho_old)[0] if guess is None else np.array(guess, dtype=float)
        growth = 0
        previous_change = np.inf
        for sweep in range(1, opts.max_sweeps + 1):
            self.set_velocity(m, time_new)
            residual = max(float(eq.sweep(dt=dt, solver=self.solver, residualFn=_relative_residual))
                           for eq in self.equations)
            rho = self.values()
            m_new, scale = self.moments(rho)
            if not np.all(np.isfinite(rho)):
                return None
            change = np.abs(m_new - m)
            m = m_new
            if sweep > 1 and residual <= opts.sweep_tol and np.all(
                    change <= opts.sweep_tol * scale):
                return rho, sweep
            largest = float(np.max(change / np.maximum(scale, 1e-300)))
            growth = growth + 1 if largest > previous_change else 0
            previous_change = largest
            if growth >= 5 or largest > 1e3:  # five growing changes in a row: diverging
                return None
        return None


def sweep_contraction(model: Model, *, gamma: float, dt: float, grid: Grid, rho: np.ndarray,
                      time: float = 0.0, velocity: str = "faces") -> float:
    r"""Spectral radius of the linearised sweep map of one FiPy step from ``rho`` (P, M).

    One sweep maps moments to moments, ``S(m) = w·(I − dt L(m))^{-1} ρ``; the sweeps of a step
    converge (locally) iff the spectral radius of ``∂S/∂m`` at ``m = w·ρ`` is below 1. Central
    differences of step ``1e-6·max(1, |m|)`` through FiPy sweeps. For ``models.current_balanced``
    with its defaults and γ ≥ 100 it is ``≈ 0.24 γ·dt`` (limit ``γ·dt ≈ 4.2``).
    """
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    if not isinstance(grid, Grid):
        bad_type("grid", grid, "a solvers.Grid")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    dt = check_finite_number("dt", dt, positive=True)
    rho = np.asarray(rho, dtype=float)
    if rho.shape != (model.P, grid.cells):
        bad_value("rho", rho.shape, f"shape {(model.P, grid.cells)} (P, M)")
    problem = _FipyProblem(numeric(model), grid, gamma, rho, fipy_options(velocity=velocity))
    return problem.contraction(rho, dt, time)


def _relative_residual(var: Any, matrix: Any, rhs: np.ndarray) -> float:
    """FiPy ``residualFn``: ``|L x − b| / |b|`` before the solve of a sweep."""
    current = np.asarray(var.value, dtype=float).ravel()
    norm_b = float(np.linalg.norm(rhs))
    return float(np.linalg.norm(matrix * current - rhs)) / (norm_b if norm_b > 0 else 1.0)


def _fixed_steps(length: float, dt: float) -> list[float]:
    """Equal steps ``≤ dt`` covering ``length`` (as ``method="sg"`` does between output times)."""
    count = max(1, int(np.ceil(length / dt - 1e-9)))
    return [length / count] * count


def solve_fipy(model: Model, *, gamma: float, t_final: float, grid: Grid, rho0: np.ndarray,
               dt: float | None = None, rtol: float | None = None, atol: float | None = None,
               save_at: np.ndarray | None = None, progress: bool = False,
               **options: Any) -> Solution:
    """Solve the mean-field PDE with FiPy (see the module docstring for the scheme and limits).

    Called by :func:`solvers.solve` with validated arguments: ``rho0`` (P, M) unit-mass
    densities at the centres of ``grid``, ``save_at`` sorted times containing 0 and ``t_final``
    (default ``[0, t_final]``), ``dt`` a fixed step or ``None`` (adaptive, ``rtol``/``atol``;
    ``None`` for either means this path's default, :data:`FIPY_RTOL`, :data:`FIPY_ATOL`).
    ``options`` are those of :class:`FipyOptions` (with adaptive steps ``sweep_tol`` defaults to
    :func:`adaptive_sweep_tol`). Progress bar: ``progress=True``. Raises
    :class:`SweepDivergenceError` when the sweeps of a fixed step fail (naming a ``γ·dt`` that
    converges) or ``max_steps`` is reached.
    """
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    rtol = FIPY_RTOL if rtol is None else check_finite_number("rtol", rtol, positive=True)
    atol = FIPY_ATOL if atol is None else check_finite_number("atol", atol, nonnegative=True)
    if dt is None and "sweep_tol" not in options:
        options = {**options, "sweep_tol": adaptive_sweep_tol(rtol)}
    opts = fipy_options(**options)
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    if not isinstance(grid, Grid):
        bad_type("grid", grid, "a solvers.Grid")
    rho0 = np.asarray(rho0, dtype=float)
    if rho0.shape != (model.P, grid.cells):
        bad_value("rho0", rho0.shape, f"shape {(model.P, grid.cells)} (P, M)")
    t_final = check_finite_number("t_final", t_final, positive=True)
    save_at = np.array([0.0, t_final]) if save_at is None else np.asarray(save_at, dtype=float)
    if save_at.ndim != 1 or save_at.size < 1 or np.any(np.diff(save_at) <= 0) or save_at[0] != 0:
        bad_value("save_at", save_at, "sorted increasing times starting at 0")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    nm = numeric(model)
    problem = _FipyProblem(nm, grid, gamma, rho0, opts)
    bar = progress_bar(progress, float(save_at[-1]), desc="fipy")
    started = _time.perf_counter()
    stats = {"steps": 0, "rejected": 0, "sweeps": 0, "max_sweeps_in_step": 0,
             "dt_min": np.inf, "dt_max": 0.0}
    frames = [rho0.copy()]
    history = _MomentHistory(now=0.0, m=problem.moments(rho0)[0])
    rho, now = rho0.copy(), 0.0
    try:
        if dt is None:
            frames = _adaptive_run(problem, rho0, save_at, rtol, atol, history, stats, bar)
        for target in save_at[1:] if dt is not None else ():
            rho = _fixed_interval(problem, rho, now, float(target), dt, history, stats, bar)
            now = float(target)
            frames.append(rho.copy())
    finally:
        if bar is not None:
            bar.close()
    info = {"method": "fipy", "linear_solver": opts.solver,
            "linear_solver_class": LINEAR_SOLVERS[opts.solver], "velocity": opts.velocity,
            "scheme": "be", "order": 1,
            "stepper": "backward_euler" + ("" if dt is not None else "+extrapolation_estimate"),
            "adaptive": dt is None, "dt": dt, "rtol": rtol, "atol": atol,
            "steps": stats["steps"], "rejected": stats["rejected"],
            "sweeps": stats["sweeps"],
            "sweeps_per_step": stats["sweeps"] / max(stats["steps"], 1),
            "max_sweeps_in_step": stats["max_sweeps_in_step"], "sweep_tol": opts.sweep_tol,
            "dt_min": float(stats["dt_min"]) if stats["steps"] else None,
            "dt_max": float(stats["dt_max"]) if stats["steps"] else None,
            "max_gamma_dt": gamma * float(stats["dt_max"]) if stats["steps"] else 0.0,
            "wall_time": _time.perf_counter() - started}
    return Solution.from_densities(model, gamma, "fipy", grid, save_at, np.array(frames),
                                   info=info, nm=nm)


def _fixed_interval(problem: _FipyProblem, rho: np.ndarray, now: float, target: float,
                    dt: float, history: _MomentHistory, stats: dict[str, Any], bar: Any
                    ) -> np.ndarray:
    """Backward-Euler steps of equal size ``≤ dt`` from ``now`` to ``target``."""
    for step in _fixed_steps(target - now, dt):
        guess = history.extrapolate(rho, now + step, problem)
        result = problem.step(rho, step, now + step, guess)
        if result is None:
            raise SweepDivergenceError(_divergence_message(problem, rho, now, step))
        rho, sweeps = result
        now = now + step
        history.record(now, problem.moments(rho)[0])
        _count(stats, step, sweeps)
        advance(bar, step)
    return rho


SAFE_CONTRACTION = 0.5
"""Sweep contraction aimed at by the step suggested when fixed-step sweeps fail."""


def _divergence_message(problem: _FipyProblem, rho: np.ndarray, now: float, step: float) -> str:
    """Why the sweeps of a fixed step failed and which ``γ·dt`` to use instead.

    The contraction ``r`` of the lagged-moment map grows about linearly with ``γ·dt`` (module
    docstring), so ``γ·dt·0.5/r`` aims at ``r = 0.5``.
    """
    gamma_dt = problem.gamma * step
    radius = problem.contraction(rho, step, now + step)
    if radius < SAFE_CONTRACTION:
        advice = (f"the sweep map contracts (radius {radius:.3g}) but too slowly: raise "
                  f"max_sweeps (now {problem.opts.max_sweeps}) or sweep_tol")
    else:
        safe = gamma_dt * SAFE_CONTRACTION / radius
        advice = (f"the lagged-moment sweep map has spectral radius {radius:.3g} there (it "
                  f"grows about linearly with gamma*dt): use gamma*dt <= {safe:.3g} "
                  f"(dt <= {safe / max(problem.gamma, 1e-300):.3g}), dt=None (adaptive steps) "
                  "or method='sg' (moments by Newton, no such limit)")
    return (f"the sweeps on the moments m did not converge in {problem.opts.max_sweeps} sweeps "
            f"at t={now:g}, dt={step:g}, gamma*dt={gamma_dt:g}: {advice}")


@dataclass
class _MomentHistory:
    """The last two accepted ``(t, m)``: linear extrapolation gives the sweeps' first ``m``."""

    now: float
    m: np.ndarray
    before: tuple[float, np.ndarray] | None = None

    def record(self, now: float, m: np.ndarray) -> None:
        self.before = (self.now, self.m)
        self.now, self.m = now, m

    def extrapolate(self, rho: np.ndarray, target: float, problem: _FipyProblem) -> np.ndarray:
        if self.before is None or self.now <= self.before[0]:
            return problem.moments(rho)[0]
        slope = (self.m - self.before[1]) / (self.now - self.before[0])
        return self.m + slope * (target - self.now)


def _initial_step(t_final: float, gamma: float) -> float:
    return min(t_final, 1e-3 * t_final, 0.1 / (1.0 + gamma))


def _count(stats: dict[str, Any], step: float, sweeps: int) -> None:
    stats["steps"] += 1
    stats["sweeps"] += sweeps
    stats["max_sweeps_in_step"] = max(stats["max_sweeps_in_step"], sweeps)
    stats["dt_min"] = min(stats["dt_min"], step)
    stats["dt_max"] = max(stats["dt_max"], step)


def _adaptive_run(problem: _FipyProblem, rho: np.ndarray, save_at: np.ndarray, rtol: float,
                  atol: float, history: _MomentHistory, stats: dict[str, Any], bar: Any
                  ) -> list[np.ndarray]:
    r"""Adaptive backward Euler from 0 to ``save_at[-1]``; the frames at ``save_at``.

    Local error of a step ``Δt`` (previous step ``Δt'``, predictor ``ρ̂`` the linear
    extrapolation of the last two accepted states): backward Euler is off by ``Δt²ρ''/2``,
    the predictor by ``−Δt(Δt + Δt')ρ''/2``, so ``e = |ρ − ρ̂|·Δt/(2Δt + Δt')`` (L1 per
    population; on the first step ``ρ̂ = ρ_0`` and ``e = |ρ − ρ_0|``, an over-estimate). Accept
    when ``max_p e_p/(atol + rtol‖ρ_p‖₁) ≤ 1``; next step ``Δt·min(4, max(0.2, 0.9/√err))``.
    Output times are not step ends: frames are the linear interpolation between the two
    accepted states around them (positive and of unit mass; error ``≤ Δt²|ρ''|/8``).
    """
    widths, t_final = problem.grid.h, float(save_at[-1])
    frames, index = [rho.copy()], 1
    now, trial = 0.0, _initial_step(t_final, problem.gamma)
    previous: tuple[float, np.ndarray] | None = None
    while now < t_final:
        if stats["steps"] + stats["rejected"] >= problem.opts.max_steps:
            raise SweepDivergenceError(
                f"max_steps={problem.opts.max_steps} reached at t={now:g} before "
                f"t={t_final:g}: raise max_steps or rtol (now {rtol:g})")
        remaining = t_final - now
        step = remaining if trial >= remaining * (1 - 1e-9) else trial
        result = problem.step(rho, step, now + step, history.extrapolate(rho, now + step, problem))
        if result is None:  # sweeps failed: a smaller gamma*dt converges (module docstring)
            stats["rejected"] += 1
            trial = step / 4
            continue
        new, sweeps = result
        estimate = np.abs(new - rho) @ widths
        if previous is not None:
            last_step, last_rho = previous
            predicted = rho + (rho - last_rho) * (step / last_step)
            estimate = (np.abs(new - predicted) @ widths) * step / (2 * step + last_step)
        err = float(np.max(estimate / (atol + rtol * (np.abs(new) @ widths))))
        factor = 0.9 / np.sqrt(max(err, 1e-12))
        if err > 1.0:
            stats["rejected"] += 1
            trial = step * max(0.2, factor)
            continue
        end = t_final if step == remaining else now + step
        while index < save_at.size and save_at[index] <= end * (1 + 1e-12):
            weight = (float(save_at[index]) - now) / (end - now)
            frames.append(new.copy() if index == save_at.size - 1 else
                          (1 - weight) * rho + weight * new)
            index += 1
        previous = (end - now, rho)
        rho, now = new, end
        history.record(now, problem.moments(rho)[0])
        _count(stats, step, sweeps)
        advance(bar, step)
        trial = step * min(4.0, factor)
    return frames
