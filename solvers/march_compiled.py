"""The Python front of the compiled time loop (:mod:`solvers.march_numba`).

:func:`integrate_compiled` does what :func:`solvers.stepping.integrate` does with the Python loop
(:func:`solvers.stepping.march`): the same start (:func:`~solvers.stepping.initial_state`,
:func:`~solvers.stepping.first_step`), the same steps, counters and errors, with the rules of
:data:`solvers.stepping.RULES`; only the per-step bookkeeping runs compiled. With a progress bar
the loop returns to Python once per output interval to move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from solvers.implicit import AffineCoupling, StageProblem


def compiled_applies(problem: StageProblem) -> bool:
    """Whether the compiled loop can run ``problem``: the numba kernel with its compiled Newton,
    a plain :class:`~solvers.implicit.AffineCoupling` whose sources are all unknowns (no
    time-dependent inputs: the base is constant), and no moving frame."""
    coupling = problem.coupling
    if problem.kernel.newton is None or problem.kernel.name != "numba" or problem.frame is not None:
        return False
    if type(coupling) is not AffineCoupling:
        return False
    return coupling.unknown_slopes.shape[1] == coupling.slopes.shape[1] == problem.P


def integrate_compiled(problem: StageProblem, rho0: np.ndarray, save_at: Sequence[float], *,
                       scheme: str = "bdf2", dt: float | None = None, rtol: float = 5e-7,
                       atol: float = 5e-10, max_steps: int = 1_000_000, progress: bool = False
                       ) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames (nt, P, M) at ``save_at`` and the counters of :class:`solvers.stepping.Tally`,
    from the compiled twin of :func:`solvers.stepping.march` (see the module docstring)."""
    from solvers import march_numba as kernel
    from solvers.kernels_numba import workspace_arrays
    from solvers.stepping import (
        RULES,
        Tally,
        budget_message,
        first_step,
        initial_state,
        progress_bar,
        stage_failure_message,
        underflow_message,
    )

    save_at = np.asarray(save_at, dtype=float)
    state = initial_state(problem, np.array(rho0, dtype=float), float(save_at[0]))
    span = float(save_at[-1] - save_at[0])
    h0 = first_step(problem, state, span) if dt is None else float(dt)
    P, M = state.rho.shape
    frames = np.empty((save_at.size, P, M))
    frames[0] = state.rho
    coupling = problem.coupling
    base = coupling.folded_base(float(save_at[0]))
    slopes = coupling.unknown_slopes
    rules = RULES.as_array(scheme)
    clock = np.array([state.t, state.t, h0, 0.0, np.inf, 0.0, 0.0])
    counters = np.zeros(5, dtype=np.int64)
    work = workspace_arrays(problem.workspace, P, M)
    pool = np.empty((7, P, M))  # the loop's densities, derivatives, right-hand sides (reused)
    arrays = (state.rho, np.asarray(state.m, dtype=float), state.f,
              np.asarray(problem.readout(state.f), dtype=float), np.zeros((P, M)), np.zeros(P))
    bar = progress_bar(progress, span)
    stops = range(2, save_at.size + 1) if bar is not None else [save_at.size]
    status, k_start = kernel.OK, 1
    try:
        for k_stop in stops:
            before = clock[0]
            status, *state_arrays = kernel.run(
                base, slopes, problem.scale, problem.widths, problem.weights, save_at, k_start, k_stop,
                scheme == "bdf2", -1.0 if dt is None else float(dt), float(rtol), float(atol),
                int(max_steps), 60, float(problem.moment_rtol), rules, work, pool, *arrays, clock,
                counters, frames)
            arrays = tuple(state_arrays)
            if bar is not None:
                bar.update(clock[0] - before)
            if status != kernel.OK:
                break
            k_start = k_stop
    finally:
        if bar is not None:
            bar.close()
    if status == kernel.STAGE_FAILED:
        raise RuntimeError(stage_failure_message(clock[0], clock[2]))
    if status == kernel.UNDERFLOW:
        raise RuntimeError(underflow_message(clock[0], clock[2]))
    if status == kernel.BUDGET:
        raise RuntimeError(budget_message(max_steps))
    tally = Tally(steps=int(counters[0]), rejected=int(counters[1]),
                  newton_iterations=int(counters[2]), positivity_fallbacks=int(counters[3]),
                  positivity_clips=int(counters[4]), dt_min=float(clock[4]),
                  dt_max=float(clock[5]))
    return frames, tally.as_dict()
