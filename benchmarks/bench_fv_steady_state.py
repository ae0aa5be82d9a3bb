"""Time for the native solver to reach steady state on the default E/I model at γ = 1e4.

Runs ``solvers.solve(meanfield.models.chemical(), gamma=1e4, ...)`` (adaptive BDF2, default
tolerances) from the model's default initial state in chunks of one time unit, restarting from
the last density, until the relative L1 change over a chunk is below 1e-10. Prints the wall
time, the steps taken, the distance to the exact stationary state of
``solvers.stationary_states`` on the same grid, and the ratio of the two wall times (the
exact fixed-point solve is the baseline measured in the same run).
Run: ``python benchmarks/bench_fv_steady_state.py [--cells 8000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import solvers
from meanfield import models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=8000)
    parser.add_argument("--gamma", type=float, default=1e4)
    parser.add_argument("--chunk", type=float, default=1.0)
    parser.add_argument("--max-time", type=float, default=200.0)
    args = parser.parse_args()
    model = models.chemical()
    grid = solvers.Grid.uniform(*model.domain, args.cells)
    solvers.solve(model, gamma=1.0, t_final=1e-3, cells=60, save_at=[])  # JIT warm-up

    start = time.perf_counter()
    rho, t, steps, change = None, 0.0, 0, np.inf
    while change >= 1e-10 and t < args.max_time:
        sol = solvers.solve(model, gamma=args.gamma, t_final=args.chunk, grid=grid, initial=rho,
                            save_at=[])
        change = float(np.max(np.abs(sol.rho[-1] - sol.rho[0]) @ grid.h))
        rho, t, steps = sol.rho[-1], t + args.chunk, steps + sol.info["steps"]
        print(f"  t = {t:6.1f}  steps = {steps:6d}  L1 change over the chunk = {change:.3e}")
    native = time.perf_counter() - start

    start = time.perf_counter()
    states = solvers.stationary_states(model, gamma=args.gamma, grid=grid, stability=False)
    exact = time.perf_counter() - start
    distance = min(float(np.max(np.abs(rho - s.rho) @ grid.h)) for s in states)
    print(f"gamma = {args.gamma:g}, cells = {args.cells}: steady state (change < 1e-10) at "
          f"t = {t:g} after {steps} steps")
    print(f"native solver wall time     {native:9.2f} s")
    print(f"exact stationary states     {exact:9.2f} s   (baseline)")
    print(f"ratio native / exact        {native / exact:9.1f}")
    print(f"L1 distance to the exact stationary state: {distance:.2e}")


if __name__ == "__main__":
    main()
