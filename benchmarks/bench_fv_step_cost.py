"""Cost of one native (SG) time step: small grids against the 15 µs target, large grids against
a bare LAPACK tridiagonal solve (``scipy.linalg.lapack.dgtsv``) of the same size.

Model ``models.chemical`` (P = 2), γ = 100, default ``solve`` settings (BDF2, rtol 5e-7).

1. M = 100 (target ≤ 15 µs per step): ``solve(..., t_final=T)`` with the compiled time loop
   (``engine="compiled"``, the default) and the Python loop (``engine="python"``), interleaved
   round after round. Printed per step: the time loop alone (``info["stepping_time"]``), the
   whole ``solve`` call (model compilation, resolution checks, observables included; also in CPU
   time), with the dgtsv(M) time of the same rounds and the ratios. The verdict is the ratio of
   the two loops: bare microseconds mean little on a shared machine.
2. M = 1e4, 1e5, 1e6 (target ≤ 5× a bare tridiagonal solve): fixed-dt BDF2 steps of the
   compiled loop, their cost per step being the difference of two runs of ``n`` and ``3n``
   steps over ``2n``; each round also times dgtsv on one system of size M and one of size P·M
   (the whole stage system), interleaved. Ratios of medians (and of minima) are the verdict,
   bare seconds only context: the machine may be shared.

Measured 2026-12-02 (shared 2-core machine with other jobs, medians of 5 runs): step/dgtsv(M) =
2.2, 2.8, 4.0 at M = 1e4, 1e5, 1e6 (2 Newton evaluations per step; at 1e6 the step is bound by
memory bandwidth, which the other jobs share); at M = 100 the compiled loop 7.6 µs per step,
5.5× faster than the Python loop.

Run: ``python benchmarks/bench_fv_step_cost.py [--sizes 1e4,1e5,1e6] [--dt 1e-4]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.linalg import lapack

import solvers
from meanfield import models
from meanfield.numeric import numeric
from solvers.solve import initial_densities, sg_problem
from solvers.stepping import integrate


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tridiagonal(N: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return (-rng.random(N - 1), 2.5 + rng.random(N), -rng.random(N - 1), rng.random((N, 1)))


def small(rounds: int, t_final: float) -> None:
    """Part 1: per-step cost of ``solve`` at M = 100 with both time loops."""
    model = models.chemical()
    rng = np.random.default_rng(0)
    system = tridiagonal(100, rng)
    kwargs = {"gamma": 100.0, "cells": 100}
    rows: dict[str, list[tuple[float, float, float]]] = {"compiled": [], "python": []}
    lapack_times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for engine in rows:  # warm-up (numba compilation or cache load)
            solvers.solve(model, t_final=t_final, engine=engine, **kwargs)
        for _ in range(rounds):
            for engine, out in rows.items():
                cpu, start = time.process_time(), time.perf_counter()
                sol = solvers.solve(model, t_final=t_final, engine=engine, **kwargs)
                whole, cpu = time.perf_counter() - start, time.process_time() - cpu
                steps = sol.info["steps"]
                out.append((sol.info["stepping_time"] / steps, whole / steps, cpu / steps))
            lapack_times.append(min(timed(lambda: lapack.dgtsv(*system)) for _ in range(20)))
    dgtsv = float(np.median(lapack_times))
    print(f"M = 100, chemical, gamma = 100, t_final = {t_final:g} ({steps} steps), "
          f"medians of {rounds} interleaved rounds; dgtsv(100) = {dgtsv * 1e6:.2f} us")
    print(f"{'engine':>9} {'loop [us/step]':>15} {'solve [us/step]':>16} {'(CPU time)':>11} "
          f"{'loop/dgtsv':>11} {'solve/dgtsv':>12}")
    medians = {}
    for engine, out in rows.items():
        loop, whole, cpu = (float(np.median(col)) for col in zip(*out, strict=True))
        medians[engine] = loop
        print(f"{engine:>9} {loop * 1e6:15.2f} {whole * 1e6:16.2f} {cpu * 1e6:11.2f} "
              f"{loop / dgtsv:11.1f} {whole / dgtsv:12.1f}")
    print(f"  python/compiled time loop: {medians['python'] / medians['compiled']:.1f}x. Target: "
          "<= 15 us per step on an idle machine, i.e. at least 4x faster than the Python loop "
          "(60 us per step there)")


def large(sizes: list[int], dt: float, rounds: int) -> None:
    """Part 2: compiled step cost against dgtsv at large M."""
    model = models.chemical()
    nm = numeric(model)
    rng = np.random.default_rng(1)
    print(f"\n{'M':>9} {'step [s]':>11} {'newton/step':>12} {'step/dgtsv(M)':>14} {'(minima)':>9} "
          f"{'step/dgtsv(PM)':>15}   target: step/dgtsv(M) <= 5")
    for M in sizes:
        grid = solvers.Grid.uniform(*model.domain, M)
        _, problem = sg_problem(nm, grid, 100.0, "auto")
        rho0 = initial_densities(nm, grid, None)
        single, whole = tridiagonal(M, rng), tridiagonal(model.P * M, rng)
        n = 2 if M >= 500_000 else 5
        integrate(problem, rho0, [0.0, n * dt], dt=dt)  # warm-up
        steps, singles, wholes, newton = [], [], [], []
        for _ in range(rounds):
            singles.append(timed(lambda single=single: lapack.dgtsv(*single)))
            start = time.perf_counter()
            _, few = integrate(problem, rho0, [0.0, n * dt], dt=dt)
            middle = time.perf_counter()
            _, many = integrate(problem, rho0, [0.0, 3 * n * dt], dt=dt)
            end = time.perf_counter()
            steps.append(((end - middle) - (middle - start)) / (2 * n))
            newton.append((many["newton_iterations"] - few["newton_iterations"]) / (2 * n))
            wholes.append(timed(lambda whole=whole: lapack.dgtsv(*whole)))
        step, one, both = (float(np.median(v)) for v in (steps, singles, wholes))
        positive = [s for s in steps if s > 0]
        low = min(positive) / min(singles) if positive else float("nan")
        print(f"{M:9d} {step:11.3e} {np.mean(newton):12.2f} {step / one:14.2f} {low:9.2f} "
              f"{step / both:15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6")
    parser.add_argument("--dt", type=float, default=1e-4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--t-final", type=float, default=1.0)
    args = parser.parse_args()
    small(args.rounds, args.t_final)
    large([int(float(v)) for v in args.sizes.split(",")], args.dt, args.rounds)


if __name__ == "__main__":
    main()
