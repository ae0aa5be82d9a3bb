"""FiPy back end against the native Scharfetter–Gummel solver: the README case, then fixed dt.

First the README example with the FiPy path's own defaults (``solve_fipy`` with ``rtol``,
``atol``, ``dt`` left to ``None``: adaptive backward Euler at ``FIPY_RTOL``; ``models.chemical``,
γ = 100, 1000 cells, t_final = 1, 101 output times as ``solve`` saves by default): its wall time
(target ≤ 60 s; also its CPU time, the wall time of an idle machine, since the process is
single-threaded), steps and sweeps, and the L1 distance of its final density to the native
``solve`` at its defaults (target ≤ 1e-3). ``--readme-only`` stops there.

Then, same model, grid, fixed dt and t_final for both: prints both wall times and their ratio
(target: native ≥ 100× faster) and the L1 error of each final density against the exact
stationary state on the same grid (``solvers.stationary_states``).
Both use backward Euler with the same fixed ``dt`` (``scheme="be"`` for the native solver); the
native solver is warmed up first (numba compilation excluded) and timed as the best of 3 runs.

    .venv/bin/python benchmarks/bench_fipy_vs_native.py [--model chemical] [--gamma 100]
        [--cells 500] [--dt 0.2] [--t-final 20] [--readme-only]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import meanfield as mf
import solvers


def readme_case(progress: bool = False) -> None:
    """The README example through ``solve_fipy`` with its defaults, against native ``solve``."""
    from meanfield.numeric import numeric
    from solvers.fipy_backend import solve_fipy
    from solvers.solve import initial_densities

    model, gamma, cells, t_final = mf.models.chemical(), 100.0, 1000, 1.0
    grid = solvers.Grid.uniform(*model.domain, cells)
    times = np.linspace(0.0, t_final, 101)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        start = time.perf_counter()
        native = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells)
        native_time = time.perf_counter() - start
    rho0 = initial_densities(numeric(model), grid, None)
    cpu, start = time.process_time(), time.perf_counter()
    fipy = solve_fipy(model, gamma=gamma, t_final=t_final, grid=grid, rho0=rho0, save_at=times,
                      progress=progress)
    fipy_time, fipy_cpu = time.perf_counter() - start, time.process_time() - cpu
    errors = np.abs(fipy.rho - native.rho) @ grid.h  # (t, P)
    info = fipy.info
    print(f"README case: chemical gamma={gamma:g} cells={cells} t_final={t_final:g}, "
          f"FiPy defaults rtol={info['rtol']:g} atol={info['atol']:g} "
          f"sweep_tol={info['sweep_tol']:g}")
    print(f"  native sg (defaults): {native_time:8.2f} s, {native.info['steps']} steps")
    print(f"  fipy (defaults):      {fipy_time:8.2f} s (target <= 60 s; CPU time {fipy_cpu:.2f} s, "
          f"the wall time of an idle machine), {info['steps']} steps, {info['rejected']} "
          f"rejected, {info['sweeps_per_step']:.2f} sweeps/step; "
          f"{fipy_time / native_time:.1f}x the native solve")
    print(f"  L1 fipy - sg at t_final: {np.max(errors[-1]):.2e} (target <= 1e-3); "
          f"largest over the 101 output times: {np.max(errors):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chemical", choices=sorted(mf.models.CATALOGUE))
    parser.add_argument("--gamma", type=float, default=100.0)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--dt", type=float, default=0.2)
    parser.add_argument("--t-final", type=float, default=20.0)
    parser.add_argument("--readme-only", action="store_true")
    parser.add_argument("--progress", action="store_true", help="FiPy's progress bar")
    args = parser.parse_args()
    readme_case(args.progress)
    if args.readme_only:
        return

    model = mf.models.CATALOGUE[args.model]()
    grid = solvers.Grid.uniform(*model.domain, args.cells)
    common = {"gamma": args.gamma, "t_final": args.t_final, "grid": grid, "dt": args.dt,
              "save_at": []}
    states = solvers.stationary_states(model, gamma=args.gamma, grid=grid, stability=False)

    def error(sol: solvers.Solution) -> float:
        """L1 distance (max over populations) to the nearest exact stationary state."""
        return min(float(np.max(np.abs(sol.rho[-1] - s.rho) @ grid.h)) for s in states)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        solvers.solve(model, method="sg", scheme="be", **{**common, "t_final": args.dt})
        native_times = []
        for _ in range(3):
            start = time.perf_counter()
            native = solvers.solve(model, method="sg", scheme="be", **common)
            native_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        fipy = solvers.solve(model, method="fipy", **common)
        fipy_time = time.perf_counter() - start

    native_time = min(native_times)
    steps = fipy.info["steps"]
    print(f"model={args.model} gamma={args.gamma:g} cells={args.cells} dt={args.dt:g} "
          f"t_final={args.t_final:g} steps={steps} (gamma*dt={args.gamma * args.dt:g})")
    print(f"native sg (be, kernel={native.info['kernel']}): {native_time:9.4f} s   "
          f"L1 error vs exact stationary state {error(native):.3e}")
    print(f"fipy ({fipy.info['linear_solver']}, {fipy.info['sweeps_per_step']:.1f} sweeps/step): "
          f"{fipy_time:9.4f} s   L1 error vs exact stationary state {error(fipy):.3e}")
    print(f"ratio fipy/native wall time: {fipy_time / native_time:.1f}x (target >= 100x)")
    print(f"mass drift: native {np.max(np.abs(native.mass - 1)):.1e}, "
          f"fipy {np.max(np.abs(fipy.mass - 1)):.1e}")


if __name__ == "__main__":
    main()
