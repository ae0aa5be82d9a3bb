"""Benchmark of the FitzHugh–Nagumo solvers (not a test: prints timings and ratios).

1. Time per step of the 2-D FiPy mean-field PDE (``solvers.solve_fhn_pde``) against the grid
   size, with the ratio to the smallest grid and the fitted growth exponent ``time ∝ cells^k``.
2. Agent-steps per second of the 2-D network (``solvers.simulate_fhn_network``) against ``n``,
   with the ratio to a baseline measured in the same run: a bare numpy Euler–Maruyama update of
   the same arrays (no moments, no observables), for the numpy path and the numba twin.

3. Native 2-D solver (``solvers.solve_fhn_native``) against FiPy, per step on the same grid and
   step (the errors of both at t = 1 against a finer native reference are printed on the two
   smallest grids: on the same grid they agree within about a factor 2 either way), interleaved
   runs, up to 320×320 ≈ 1e5 cells; and the fitted exponent of the native time per step against
   cells (target ≤ 1.05).

Run: ``.venv/bin/python benchmarks/bench_fhn.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from meanfield.errors import ResolutionWarning
from meanfield.fhn import GaussianStart, fhn_chemical, fhn_electrical
from solvers import simulate_fhn_network, solve_fhn_native, solve_fhn_pde
from solvers.fhn.network_kernels import numba_available


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


def _native_per_step(model, start, size: int, steps: int, dt: float) -> float:
    from solvers.fhn.fipy2d import gaussian_density
    from solvers.fhn.native import build_plan, integrate

    plan = build_plan(model, 1.0, size, size, (-3.0, 3.0), (-1.8, 0.8), "auto")
    rho0 = gaussian_density(start, model.P, plan.v, plan.w, plan.area)
    started = time.perf_counter()
    integrate(plan, rho0, np.array([0.0, steps * dt]), dt=dt, rtol=1e-4, atol=1e-7,
              max_steps=10 * steps)
    return (time.perf_counter() - started) / steps


def bench_native(sizes: list[int], fipy_steps: int, dt: float = 0.008) -> None:
    # the grids here are chosen for timing: their resolution warnings are not the subject
    warnings.filterwarnings("ignore", category=ResolutionWarning)
    model = fhn_electrical(regime="excitable", sigma=0.5)
    start = GaussianStart(v=0.0, w=-0.6, v_std=0.4, w_std=0.25)
    small = sizes[0]
    common = dict(gamma=1.0, t_final=1.0, w_range=(-1.8, 0.8), initial=start)
    ref = solve_fhn_native(model, nv=4 * small, nw=4 * small, dt=dt / 4, save_at=[0.0, 1.0],
                           error_estimate=False, **common)
    print(f"\nnative vs FiPy 2-D (electrical, γ = 1), same grid and dt = {dt}")
    print(f"accuracy at t = 1 (error against native {4 * small}², dt/4; a factor 2 in error is "
          "a factor √2 in cells per axis for the second-order native scheme):")
    for size in (small, 2 * small):
        nat = solve_fhn_native(model, nv=size, nw=size, dt=dt, save_at=[0.0, 1.0],
                               error_estimate=False, **common)
        fip = solve_fhn_pde(model, nv=size, nw=size, dt=dt, save_every=10_000, **common)
        for name in ("mean_v", "var_v", "mean_w", "var_w"):
            e_nat = abs(getattr(nat, name)[-1, 0] - getattr(ref, name)[-1, 0])
            e_fip = abs(getattr(fip, name)[-1, 0] - getattr(ref, name)[-1, 0])
            print(f"  {size}² {name:>7}: native {e_nat:.2e}  FiPy {e_fip:.2e}  "
                  f"(FiPy/native {e_fip / e_nat:.1f})")
    _native_per_step(model, start, 16, 2, dt)  # compile the kernels
    print(f"{'grid':>9} {'cells':>7} {'native s/step':>14} {'FiPy s/step':>12} {'FiPy/native':>12}")
    cells, native = [], []
    for size in sizes:
        t_native = _native_per_step(model, start, size, max(4, fipy_steps), dt)
        run = solve_fhn_pde(model, nv=size, nw=size, dt=dt, gamma=1.0, t_final=fipy_steps * dt,
                            w_range=(-1.8, 0.8), initial=start, save_every=fipy_steps)
        t_fipy = run.info["time_per_step"]
        t_native = min(t_native, _native_per_step(model, start, size, max(4, fipy_steps), dt))
        cells.append(size * size)
        native.append(t_native)
        print(f"{size:>4}×{size:<4} {size * size:>7} {t_native:>14.4f} {t_fipy:>12.4f} "
              f"{t_fipy / t_native:>12.1f}")
    growth = np.polyfit(np.log(cells), np.log(native), 1)[0]
    large = np.polyfit(np.log(cells[-3:]), np.log(native[-3:]), 1)[0]
    print(f"native growth: time per step ∝ cells^{growth:.2f} over all sizes, cells^{large:.2f} "
          f"over the three largest (target ≤ 1.05); FiPy/native at {cells[-1]} cells: see the "
          "last row (target ≥ 50)")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    bench_native([40, 80] if quick else [40, 80, 160, 226, 320], fipy_steps=2 if quick else 3)
    bench_pde([10, 20, 40] if quick else [10, 20, 40, 80, 160], steps=5 if quick else 10)
    bench_network([1_000, 10_000] if quick else [1_000, 10_000, 100_000],
                  steps=50 if quick else 200)


if __name__ == "__main__":
    main(sys.argv[1:])
