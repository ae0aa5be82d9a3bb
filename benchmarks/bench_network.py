"""Benchmark of the n-agent network: agent-steps per second against a plain numpy EM loop.

Run: ``.venv/bin/python benchmarks/bench_network.py [--n 1000000] [--steps 20] [--memory]``.

The baseline is the obvious numpy Euler–Maruyama loop on the same model (the default E/I
chemical model: cubic drift, reversal-potential coupling, sigmoid readouts), whole arrays, one
``Generator.standard_normal`` per population and step. It is measured in the same run, and the
ratios are printed (target: fast path ≥ 5×). Every rate is the best of ``--repeat`` runs (on a
shared machine the load changes during the run). The package's noise comes from numpy's
``PCG64DXSM`` generators, one stream per chunk of agents, drawn inside the numba kernels.
``--memory`` runs n = 10⁷ per population in a child process per path and prints its peak
resident memory (target < 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def baseline(model, gamma: float, n: int, steps: int, dt: float, seed: int) -> float:
    """Plain numpy EM loop; returns agent-steps per second."""
    from meanfield.numeric import numeric

    nm = numeric(model)
    rng = np.random.default_rng(seed)
    P = nm.P
    states = [rng.normal(0.0, 0.5, n) for _ in range(P)]
    sigma = np.sqrt(2 * nm.D)
    started = time.perf_counter()
    m = np.array([nm.psi[q](states[q]).mean() for q in range(P)])
    for _ in range(steps):
        mj = nm.all_moments(m)
        for p in range(P):
            x = states[p]
            drift = nm.f[p](x)
            for j in range(nm.J):
                drift -= gamma * nm.g[p, j] * mj[j] * nm.phi[p][j](x)
            x += dt * drift + sigma[p] * np.sqrt(dt) * rng.standard_normal(n)
        m = np.array([nm.psi[q](states[q]).mean() for q in range(P)])
    elapsed = time.perf_counter() - started
    return steps * n * P / elapsed


def package(model, gamma: float, n: int, steps: int, dt: float, seed: int, **options) -> float:
    """``simulate_network``; returns agent-steps per second of its stepping loop."""
    from solvers import simulate_network

    # warm-up: compile and cache the kernels outside the timing
    # (at the population size that selects the threaded kernel when n does)
    from solvers.network import PARALLEL_MIN

    simulate_network(model, gamma=gamma, n=min(n, PARALLEL_MIN), t_final=2 * dt, dt=dt, seed=seed,
                     save_at=[2 * dt], **options)
    net = simulate_network(model, gamma=gamma, n=n, t_final=steps * dt, dt=dt, seed=seed,
                           save_at=[steps * dt], **options)
    # the time of the stepping loop (moments included), as for the baseline: no set-up, no output
    return net.info["agent_steps"] / net.info["stepping_time"]


def memory_child(fast: bool) -> None:
    from meanfield import models
    from solvers import simulate_network

    model = models.chemical()
    started = time.perf_counter()
    net = simulate_network(model, gamma=100.0, n=10_000_000, t_final=3e-3, dt=1e-3, seed=0,
                           scheme="ou", save_at=[3e-3], fast=fast)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB
    print(json.dumps({"fast": fast, "peak_rss_gib": peak, "wall": time.perf_counter() - started,
                      "mean": net.mean[-1].tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-child", choices=["numpy", "numba"])
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child == "numba")
        return

    import numba

    from meanfield import models

    model = models.chemical()
    gamma, dt, seed = 100.0, 1e-4, 0
    n, steps = args.n, args.steps
    print(f"model: chemical E/I, gamma={gamma:g}, n={n} per population, {steps} steps, "
          f"numba threads available: {numba.get_num_threads()}")
    def best(run, *options, **kwargs) -> float:
        return max(run(model, gamma, n, steps, dt, seed, *options, **kwargs)
                   for _ in range(args.repeat))

    rows = [("plain numpy EM loop (baseline)", best(baseline))]
    rows.append(("simulate_network numpy path, em", best(package, fast=False)))
    rows.append(("simulate_network numpy path, ou", best(package, fast=False, scheme="ou")))
    rows.append(("simulate_network numba, em, 1 thread", best(package, fast=True, threads=1)))
    rows.append(("simulate_network numba, ou, 1 thread",
                 best(package, fast=True, threads=1, scheme="ou")))
    rows.append(("simulate_network numba, em, 2 threads", best(package, fast=True, threads=2)))
    rows.append(("simulate_network numba, ou, 2 threads",
                 best(package, fast=True, threads=2, scheme="ou")))
    # the baseline again, to expose drift in the machine's load during the run
    rows.append(("plain numpy EM loop (again)", best(baseline)))
    base = (rows[0][1] + rows[-1][1]) / 2
    print(f"{'path':<42}{'agent-steps/s':>16}{'ratio':>9}")
    for name, rate in rows:
        print(f"{name:<42}{rate:>16.3e}{rate / base:>9.2f}")
    if args.memory:
        for path in ("numpy", "numba"):
            out = subprocess.run([sys.executable, __file__, "--memory-child", path],
                                 capture_output=True, text=True, check=True)
            print(f"n = 1e7 per population, 2 populations, {path} path:", out.stdout.strip())


if __name__ == "__main__":
    main()
