"""Benchmark of the FitzHugh–Nagumo solvers (not a test: prints timings and ratios).

1. Time per step of the 2-D FiPy mean-field PDE (``solvers.solve_fhn_pde``) against the grid
   size, with the ratio to the smallest grid and the fitted growth exponent ``time ∝ cells^k``.
2. Agent-steps per second of the 2-D network (``solvers.simulate_fhn_network``) against ``n``,
   with the ratio to a baseline measured in the same run: a bare numpy Euler–Maruyama update of
   the same arrays (no moments, no observables), for the numpy path and the numba twin.

Run: ``.venv/bin/python benchmarks/bench_fhn.py [--quick]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from meanfield.fhn import GaussianStart, fhn_chemical, fhn_electrical
from solvers import simulate_fhn_network, solve_fhn_pde
from solvers.network2d_kernels import numba_available


def bench_pde(sizes: list[int], steps: int) -> None:
    model = fhn_electrical(regime="excitable", sigma=0.5)
    start = GaussianStart(v=0.0, w=-0.6, v_std=0.4, w_std=0.25)
    print("2-D FiPy PDE (electrical, γ = 1): time per step against grid size")
    print(f"{'grid':>9} {'cells':>7} {'s/step':>9} {'sweeps/step':>12} {'ratio':>7}")
    cells, per_step = [], []
    for size in sizes:
        result = solve_fhn_pde(model, gamma=1.0, t_final=steps * 0.01, dt=0.01, nv=size, nw=size,
                               w_range=(-1.8, 0.8), initial=start, save_every=steps)
        cells.append(size * size)
        per_step.append(result.info["time_per_step"])
        print(f"{size:>4}×{size:<4} {size * size:>7} {per_step[-1]:>9.4f} "
              f"{result.info['sweeps'] / steps:>12.2f} {per_step[-1] / per_step[0]:>7.2f}")
    growth = np.polyfit(np.log(cells), np.log(per_step), 1)[0]
    local = np.log(per_step[-1] / per_step[-2]) / np.log(cells[-1] / cells[-2])
    print(f"growth: time per step ∝ cells^{growth:.2f} over all sizes, cells^{local:.2f} between "
          "the two largest (small grids are dominated by FiPy's per-sweep overhead)")


def bare_numpy_rate(n: int, steps: int, dt: float = 0.01) -> float:
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal(n), rng.standard_normal(n)
    started = time.perf_counter()
    for _ in range(steps):
        v_new = v + (v - v**3 / 3 - w - (v - v.mean())) * dt + 0.3 * np.sqrt(dt) * \
            rng.standard_normal(n)
        w = w + 0.08 * (v + 0.7 - 0.8 * w) * dt
        v = v_new
    return n * steps / (time.perf_counter() - started)


def bench_network(sizes: list[int], steps: int) -> None:
    print("\n2-D network: agent-steps per second (exponential scheme), numpy path and numba twin")
    print(f"{'coupling':>10} {'n':>8} {'path':>6} {'agent-steps/s':>14} {'bare numpy':>12} "
          f"{'ratio':>7}")
    paths = [False, True] if numba_available() else [False]
    for name, model in (("electrical", fhn_electrical()), ("chemical", fhn_chemical())):
        simulate_fhn_network(model, gamma=1.0, n=10, t_final=0.02, dt=0.01, seed=0)  # compile
        for n in sizes:
            base = bare_numpy_rate(n * model.P, steps)
            for fast in paths:
                run = simulate_fhn_network(model, gamma=100.0, n=n, t_final=steps * 0.01,
                                           dt=0.01, seed=0, save_at=[steps * 0.01], fast=fast)
                rate = run.info["agent_steps_per_second"]
                print(f"{name:>10} {n:>8} {'numba' if fast else 'numpy':>6} {rate:>14.3e} "
                      f"{base:>12.3e} {rate / base:>7.2f}")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    bench_pde([10, 20, 40] if quick else [10, 20, 40, 80, 160], steps=5 if quick else 10)
    bench_network([1_000, 10_000] if quick else [1_000, 10_000, 100_000],
                  steps=50 if quick else 200)


if __name__ == "__main__":
    main(sys.argv[1:])
