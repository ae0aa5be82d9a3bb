r"""The front door of the time-dependent mean-field PDE: :func:`solve` (docs/mathematics.md §2).

.. math:: \partial_t\rho_p = \partial_x\big(D_p\,\partial_x\rho_p + \partial_x U_p\,\rho_p\big),
   \qquad U_p = -F_p + \gamma \sum_j g_{pj}\, m_j(t)\, G_{pj}, \qquad m_q = \int \Psi_q\rho_q,

on the model's interval with zero-flux ends. ``method="sg"`` is the native solver: cell-centred
Scharfetter–Gummel finite volumes written with potential differences (:mod:`solvers.fv`; exact
Gibbs equilibria, M-matrix, mass conserved), implicit steps with the moments solved to 1e-12 at
every stage (:mod:`solvers.implicit`, :mod:`solvers.kernels`) and error-controlled adaptive or
fixed steps (:mod:`solvers.stepping`). Second order in space on smooth solutions; first (``"be"``)
or second (``"bdf2"``, default) order in time. ``method="fipy"`` calls the FiPy back end.
"""

from __future__ import annotations

import math
import time as clock
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.fv import potential_differences
from solvers.grid import Grid, make_grid
from solvers.implicit import AffineCoupling, StageProblem
from solvers.kernels import KERNELS, stage_kernel
from solvers.observables import readouts
from solvers.resolution import DEFAULT_TOLERANCE, assess_frames
from solvers.solution import Solution
from solvers.stepping import ENGINES, ORDERS, integrate

METHODS = ("sg", "fipy")
SG_OPTIONS = {"scheme": "bdf2", "kernel": "auto", "max_steps": 1_000_000, "engine": "auto"}
"""Options of ``method="sg"`` and their defaults: ``scheme`` ("bdf2" | "be"), ``kernel``
("auto" | "numba" | "numpy"), ``max_steps`` (a safety limit on accepted steps) and ``engine``
("auto" | "python" | "compiled": the time loop, :func:`solvers.stepping.integrate`)."""
DEFAULT_RTOL = 5e-7
DEFAULT_ATOL = 5e-10
FRAME_BUDGET_BYTES = 200e6
"""Default output memory: at most 101 frames and at most this many bytes of densities."""


GAMMA_MAX = 1e11
"""Largest coupling :func:`solve` accepts: its fastest relaxation rate ``γA`` must leave time steps
above the step floor ``1e-14·max(1, t)`` of :mod:`solvers.stepping`. Beyond it use
``solvers.solve_rescaled`` (the desingularized equation, docs/mathematics.md §6)."""
AUTO_MAX_CELLS = 20_000
"""Largest grid ``cells="auto"`` chooses (beyond it the result carries a ResolutionWarning: an
initial layer far from the balance point needs the rescaled solver rather than more cells)."""


def solve(model: Model, *, gamma: float, t_final: float, cells: int | str | None = None,
          grid: Grid | None = None, initial: Any = None, method: str = "sg",
          dt: float | None = None, rtol: float | None = None, atol: float | None = None,
          save_at: Sequence[float] | np.ndarray | None = None, progress: bool = False,
          tolerance: float = DEFAULT_TOLERANCE, **options: Any) -> Solution:
    """Solve the mean-field PDE of ``model`` at coupling ``gamma`` from t = 0 to ``t_final``.

    Parameters
    ----------
    gamma : the coupling, ``0 <= gamma <= GAMMA_MAX = 1e11`` (beyond it the relaxation time
        ``1/(γA)`` falls below the step floor: use ``solvers.solve_rescaled``).
    cells, grid : the discretisation (a uniform grid of ``cells`` cells, default 1000, or a
        :class:`~solvers.Grid` inside the model's domain). ``cells="auto"`` picks the uniform grid
        that resolves the initial density (its concentration width and the cell Péclet number
        of its transport) and the stationary states of the model to ``tolerance`` (at least
        1000 cells, at most ``AUTO_MAX_CELLS``; see :mod:`solvers.resolution`); the choice is in
        ``info["cells_auto"]``.
    initial : ``None`` (the model's ``initial`` expressions), an array (P, M) of densities at the
        cell centres, or callables of ``x`` (one, used for every population, or P of them).
        Values must be finite and ``>= 0`` with positive mass; each density is then normalised
        to unit mass (``Σ ρ h = 1``, scaled by its maximum first: no overflow or underflow).
    dt : ``None`` for adaptive steps controlled by ``rtol``/``atol`` (local L1 error per
        population ``≤ atol + rtol‖ρ‖₁``; ``None`` means the method's default: 5e-7/5e-10 for
        ``"sg"``, ``FIPY_RTOL``/``FIPY_ATOL`` of :mod:`solvers.fipy_backend` for ``"fipy"``),
        or a fixed step (each interval between two times of
        ``save_at`` is cut into equal steps ``≤ dt``).
    save_at : output times in ``[0, t_final]`` (0 and ``t_final`` are always included); default
        up to 101 equally spaced times, fewer if P·M is so large that they would exceed 200 MB
        (with a fixed ``dt``: times on the grid of ``ceil(t_final/dt)`` equal steps).
    progress : show a tqdm progress bar.
    tolerance : the relative variance error the resolution check accepts.
    options : for ``method="sg"``: ``scheme`` ("bdf2" default, or "be"), ``kernel`` ("auto",
        "numba", "numpy"), ``max_steps`` and ``engine`` ("auto": the compiled time loop when
        the model has no time-dependent inputs and numba is installed, "python", "compiled";
        both loops take the same steps, see :mod:`solvers.march_numba`); for ``method="fipy"`` see
        ``solvers.fipy_backend.solve_fipy``.

    Notes
    -----
    The resolution of every saved frame (the initial density included, whose transport onto the
    balance point is the initial layer) is checked by :func:`solvers.resolution.assess_frames`;
    the worst report is ``info["resolution"]`` (``Solution.resolution``) and, when the expected
    relative variance error exceeds ``tolerance``, one ``ResolutionWarning`` names the cause and
    the cells that would fix it.
    """
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    if gamma > GAMMA_MAX:
        bad_value("gamma", gamma, f"a coupling <= {GAMMA_MAX:g} for solve (its relaxation time "
                  "1/(gamma*A) would fall below the smallest time step); use "
                  "solvers.solve_rescaled for larger gamma")
    t_final = check_finite_number("t_final", t_final, positive=True)
    if not isinstance(method, str) or method not in METHODS:
        bad_value("method", method, f"one of {METHODS}")
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    user_rtol, user_atol = rtol, atol  # None: the method's own default (FiPy has its own)
    rtol = DEFAULT_RTOL if rtol is None else check_finite_number("rtol", rtol, positive=True)
    if rtol >= 1:
        bad_value("rtol", rtol, "a relative tolerance in (0, 1)")
    atol = DEFAULT_ATOL if atol is None else check_finite_number("atol", atol, nonnegative=True)
    tolerance = check_tolerance(tolerance)
    if not isinstance(progress, bool):
        bad_type("progress", progress, "True or False")
    check_diffusion(model)
    nm = numeric(model)
    auto = None
    if isinstance(cells, str):
        if cells != "auto":
            bad_value("cells", cells, "an integer >= 3, 'auto' or None")
        if grid is not None:
            bad_value("cells", cells, "either cells= or grid=, not both")
        auto = auto_cells(nm, gamma, initial, tolerance)
        cells = auto["cells"]
    grid_ = make_grid(model.domain, cells, grid)
    rho0 = initial_densities(nm, grid_, initial)
    times = output_times(save_at, t_final, model.P * grid_.cells, dt)
    differences = potential_differences(nm, grid_)
    start = assess_frames(nm, grid_, gamma, rho0[None], [0.0], tolerance=tolerance,
                          differences=differences)
    if method == "fipy":
        from solvers.fipy_backend import solve_fipy

        out = solve_fipy(model, gamma=gamma, t_final=t_final, grid=grid_, rho0=rho0, dt=dt,
                         rtol=user_rtol, atol=user_atol, save_at=times, progress=progress,
                         **options)
        report = start
        if isinstance(out, Solution):
            report = start.combine(assess_frames(nm, grid_, gamma, out.rho, out.t,
                                                 tolerance=tolerance, differences=differences))
            out.info.update(resolution=report.as_dict(), **({"cells_auto": auto} if auto else {}))
        report.warn(stacklevel=2)
        return out
    settings = sg_options(options)
    started = clock.perf_counter()
    kernel_name, problem = sg_problem(nm, grid_, gamma, settings["kernel"], differences)
    try:
        frames, counters = integrate(problem, rho0, times, scheme=settings["scheme"], dt=dt,
                                     rtol=rtol, atol=atol, max_steps=settings["max_steps"],
                                     progress=progress, engine=settings["engine"])
    except RuntimeError as err:
        if "step size underflow" not in str(err):
            raise
        raise RuntimeError(f"{err}: the relaxation time 1/(gamma*A) at gamma={gamma:g} is below "
                           "the smallest time step; use solvers.solve_rescaled for this "
                           "gamma") from err
    report = start.combine(assess_frames(nm, grid_, gamma, frames, times, tolerance=tolerance,
                                         differences=differences))
    info = {"scheme": settings["scheme"], "order": ORDERS[settings["scheme"]],
            "kernel": kernel_name, "dt": dt, "rtol": rtol, "atol": atol, **counters,
            "wall_time": clock.perf_counter() - started, "resolution": report.as_dict(),
            **({"cells_auto": auto} if auto else {})}
    report.warn(stacklevel=2)
    return Solution.from_densities(model, gamma, "sg", grid_, times, frames, info, nm)


def check_tolerance(tolerance: Any) -> float:
    """The resolution ``tolerance``: a relative error in (0, 1)."""
    tolerance = check_finite_number("tolerance", tolerance, positive=True)
    if tolerance >= 1:
        bad_value("tolerance", tolerance, "a relative error in (0, 1)")
    return tolerance


def check_diffusion(model: Model) -> None:
    """Reject noise amplitudes whose ``D = σ²/2`` is not a positive normal float (underflow)."""
    D = np.array(model.diffusion, dtype=float)
    bad = [p for p in range(model.P) if not (np.isfinite(D[p]) and D[p] >= np.finfo(float).tiny)]
    if bad:
        shown = {model.names[p]: float(D[p]) for p in bad}
        bad_value("model", f"diffusion D = sigma^2/2 = {shown}",
                  f"sigma whose D is a positive normal float (D >= {np.finfo(float).tiny:.3g}, "
                  "sigma >= about 2.2e-154): smaller noise underflows")


def auto_cells(nm: NumericModel, gamma: float, initial: Any, tolerance: float,
               probe: int = 1000) -> dict[str, Any]:
    """The ``cells="auto"`` rule of :func:`solve`.

    On a probe grid of ``probe`` cells, the initial density and every stationary state are
    assessed (:func:`solvers.resolution.assess_frames`); the grid is refined until the
    expected relative variance error is ``<= tolerance`` (cells per width ≥
    :func:`~solvers.resolution.width_target`, transport Péclet number ≤
    :func:`~solvers.resolution.peclet_target`), with at least ``probe`` and at most
    ``AUTO_MAX_CELLS`` cells.
    """
    from solvers.stationary import GibbsMap, find_roots

    cells = probe
    for _ in range(4):
        grid = make_grid(nm.model.domain, cells)
        rho0 = initial_densities(nm, grid, initial)
        report = assess_frames(nm, grid, gamma, rho0[None], [0.0], tolerance=tolerance)
        gmap = GibbsMap(nm, grid, gamma)
        states = [gmap.densities(m) for m in find_roots(gmap)]
        if states:
            report = report.combine(assess_frames(nm, grid, gamma, np.array(states),
                                                  [0.0] * len(states), tolerance=tolerance))
        if report.ok or report.cells_needed <= cells or cells >= AUTO_MAX_CELLS:
            break
        cells = min(AUTO_MAX_CELLS, math.ceil(1.1 * report.cells_needed))
    return {"cells": cells, "tolerance": tolerance, "capped": cells >= AUTO_MAX_CELLS,
            "rule": "smallest uniform grid (>= 1000 cells) resolving the initial density and "
                    "the stationary states to the tolerance (solvers.resolution)"}


def sg_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``method="sg"`` options with defaults; unknown names raise ``TypeError``."""
    unknown = sorted(set(options) - set(SG_OPTIONS))
    if unknown:
        raise TypeError(f"solve() got unexpected option(s) {unknown} for method='sg'; allowed: "
                        f"{sorted(SG_OPTIONS)}")
    settings = {**SG_OPTIONS, **options}
    if settings["scheme"] not in ORDERS:
        bad_value("scheme", settings["scheme"], f"one of {tuple(ORDERS)}")
    if settings["kernel"] not in KERNELS:
        bad_value("kernel", settings["kernel"], f"one of {KERNELS}")
    if settings["engine"] not in ENGINES:
        bad_value("engine", settings["engine"], f"one of {ENGINES}")
    settings["max_steps"] = check_int("max_steps", settings["max_steps"], minimum=1)
    return settings


def sg_problem(nm: NumericModel, grid: Grid, gamma: float, kernel: str = "auto",
               differences: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[str, StageProblem]:
    """The stage problem of the mean-field PDE: ``δ_p = (−ΔF_p + γ Σ_j g_pj m_j ΔG_pj)/D_p``."""
    dF, dG = potential_differences(nm, grid) if differences is None else differences
    D = nm.D
    base = -dF / D[:, None]
    slopes = gamma * nm.g[:, :, None] * dG / D[:, None, None]
    coupling = AffineCoupling(base=base, slopes=slopes, external=nm.external_m, unknowns=nm.P)
    name, fn = stage_kernel(kernel)
    problem = StageProblem(scale=D[:, None] / grid.dx[None, :], widths=np.asarray(grid.h),
                           weights=readouts(nm, grid.x) * grid.h, coupling=coupling, kernel=fn)
    return name, problem


def initial_densities(nm: NumericModel, grid: Grid, initial: Any) -> np.ndarray:
    """Unit-mass densities (P, M) from ``initial`` (see :func:`solve`)."""
    P, M = nm.P, grid.cells
    if initial is None:
        values = np.array([fn(grid.x) for fn in nm.initial])
    elif callable(initial):
        values = np.array([_call(initial, grid.x, M) for _ in range(P)])
    elif (isinstance(initial, Sequence) and not isinstance(initial, (str, bytes))
          and len(initial) == P and all(callable(fn) for fn in initial)):
        values = np.array([_call(fn, grid.x, M) for fn in initial])
    else:
        try:
            values = np.array(initial, dtype=float)
        except (TypeError, ValueError):
            bad_type("initial", initial, "None, an array (P, M) or callables of x")
        if values.shape != (P, M):
            bad_value("initial", f"array of shape {values.shape}",
                      f"shape {(P, M)} (populations, cells)")
    if not np.all(np.isfinite(values)):
        bad_value("initial", "densities with non-finite values", "finite values")
    if np.any(values < 0):
        bad_value("initial", f"densities with minimum {values.min():g}", "values >= 0")
    peak = values.max(axis=1)
    if np.any(peak <= 0):
        bad_value("initial", f"densities of mass {(values @ grid.h).tolist()}", "a positive mass "
                  "for every population")
    values = values / peak[:, None]  # scaled first: no overflow (1e308) or subnormal round-off
    return values / (values @ grid.h)[:, None]


def _call(fn: Callable[[np.ndarray], Any], x: np.ndarray, M: int) -> np.ndarray:
    out = np.asarray(fn(x.copy()), dtype=float)
    try:
        return np.broadcast_to(out, (M,)).copy()
    except ValueError:
        bad_value("initial", f"a callable returning shape {out.shape}", f"values of shape ({M},)")


def output_times(save_at: Any, t_final: float, size: int, dt: float | None = None) -> np.ndarray:
    """Sorted, unique output times in [0, t_final], always containing 0 and t_final.

    The default is up to 101 equally spaced frames; with a fixed ``dt`` the frames are taken on
    the grid of ``ceil(t_final/dt)`` equal steps, so saving never shortens the steps.
    """
    if save_at is None:
        frames = int(min(101, max(2, FRAME_BUDGET_BYTES // (8 * size))))
        if dt is None:
            return np.linspace(0.0, t_final, frames)
        steps = max(1, int(np.ceil(t_final / dt * (1 - 1e-12))))
        stride = max(1, int(np.ceil(steps / (frames - 1))))
        marks = np.unique(np.append(np.arange(0, steps + 1, stride), steps))
        return t_final * marks / steps
    try:
        values = np.array(save_at, dtype=float).ravel()
    except (TypeError, ValueError):
        bad_type("save_at", save_at, "a sequence of times")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > t_final):
        bad_value("save_at", save_at, f"finite times in [0, t_final={t_final:g}]")
    return np.unique(np.concatenate([[0.0], values, [t_final]]))
