"""Cost of one native (SG) time step against one bare LAPACK tridiagonal solve of the same size.

For M = 1e3 … 1e6 cells (default E/I model, P = 2, γ = 100) it times BDF2 steps of the native
solver (moments solved implicitly by Newton: each evaluation is one stage kernel = P tridiagonal
solves, the first also giving the Jacobian by P adjoint sweeps) and ``scipy.linalg.lapack.dgtsv``
on one system of size M (and of size P·M, the whole system). The machine may be shared, so the
two are timed *interleaved*: round after round, one dgtsv call then one step, and the ratio of
the medians (and of the minima) is printed, with the ratio per Newton evaluation (eval) and
the growth of the step cost per decade of M (1.0 = linear).
Run: ``python benchmarks/bench_fv_step_cost.py [--kernel numpy] [--dt 1e-4] [--sizes 1e3,1e4]``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy.linalg import lapack

import solvers
from meanfield import models
from meanfield.numeric import numeric
from solvers.solve import sg_problem
from solvers.stepping import initial_state, take_step


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel", default="auto", choices=["auto", "numba", "numpy"])
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--dt", type=float, default=1e-4,
                        help="step size (1e-4: the size adaptive steps take at the default "
                             "tolerances during this transient)")
    args = parser.parse_args()
    model = models.chemical()
    nm = numeric(model)
    rows = []
    print(f"{'M':>9} {'dgtsv(M) [s]':>13} {'step [s]':>11} {'newton/step':>12} "
          f"{'step/dgtsv(M)':>14} {'(minima)':>9} {'step/dgtsv(PM)':>15} {'eval/dgtsv(M)':>14}")
    for M in (int(float(v)) for v in args.sizes.split(",")):
        grid = solvers.Grid.uniform(*model.domain, M)
        name, problem = sg_problem(nm, grid, 100.0, args.kernel)
        rho0 = np.exp(-((grid.x[None, :] - np.array([[0.5], [-0.5]])) ** 2))
        rho0 /= (rho0 @ grid.h)[:, None]
        dt = args.dt
        state = initial_state(problem, rho0, 0.0)
        state = take_step(problem, state, dt, "be").state  # history for BDF2 (and JIT warm-up)
        state = take_step(problem, state, dt, "bdf2").state
        rng = np.random.default_rng(0)
        single = (-rng.random(M - 1), 2.5 + rng.random(M), -rng.random(M - 1),
                  rng.random((M, 1)))
        N = model.P * M
        whole = (-rng.random(N - 1), 2.5 + rng.random(N), -rng.random(N - 1), rng.random((N, 1)))
        rounds = max(30, int(3e6 // M))
        lapack_times, system_times, step_times, newton = [], [], [], []
        for _ in range(rounds):
            lapack_times.append(timed(lambda single=single: lapack.dgtsv(*single)))
            start = time.perf_counter()
            result = take_step(problem, state, dt, "bdf2")
            step_times.append(time.perf_counter() - start)
            system_times.append(timed(lambda whole=whole: lapack.dgtsv(*whole)))
            newton.append(result.newton)
            state = result.state
        lapack_time, step_time = np.median(lapack_times), np.median(step_times)
        system_time = np.median(system_times)
        per_step = float(np.mean(newton))
        rows.append((M, lapack_time, step_time))
        print(f"{M:9d} {lapack_time:13.3e} {step_time:11.3e} {per_step:12.2f} "
              f"{step_time / lapack_time:14.2f} {min(step_times) / min(lapack_times):9.2f} "
              f"{step_time / system_time:15.2f} {step_time / per_step / lapack_time:14.2f}"
              f"   (kernel={name})")
    print("growth of the step cost per decade of M (1.0 = linear):")
    for (m0, _, s0), (m1, _, s1) in itertools.pairwise(rows):
        print(f"  {m0:>8d} -> {m1:<8d} {np.log(s1 / s0) / np.log(m1 / m0):.2f}")
    fit = np.polyfit(np.log([r[0] for r in rows]), np.log([r[2] for r in rows]), 1)[0]
    print(f"  fitted exponent over all sizes: {fit:.2f}")


if __name__ == "__main__":
    main()
