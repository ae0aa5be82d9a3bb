"""Benchmark of the n-agent network: agent-steps per second against a plain numpy EM loop.

Run: ``.venv/bin/python benchmarks/bench_network.py [--n 1000000] [--steps 20] [--memory]``.

The baseline is the obvious numpy Euler–Maruyama loop on the same model (the default E/I
chemical model: cubic drift, reversal-potential coupling, sigmoid readouts), whole arrays, one
``Generator.standard_normal`` per population and step. It is measured in the same run, and the
ratios are printed (target: fast path ≥ 5×), per wall-clock second and per CPU second (the
process's CPU time over the stepping loop, all threads counted: a threaded path is not credited
with the cores it occupies). Every rate is the best of ``--repeat`` runs (on a shared machine the
load changes during the run). The package's noise comes from numpy's
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


def baseline(model, gamma: float, n: int, steps: int, dt: float,
             seed: int) -> tuple[float, float]:
    """Plain numpy EM loop; returns agent-steps per wall second and per CPU second."""
    from meanfield.numeric import numeric

    nm = numeric(model)
    rng = np.random.default_rng(seed)
    P = nm.P
    states = [rng.normal(0.0, 0.5, n) for _ in range(P)]
    sigma = np.sqrt(2 * nm.D)
    started, cpu = time.perf_counter(), time.process_time()
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
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return steps * n * P / elapsed, steps * n * P / cpu


def package(model, gamma: float, n: int, steps: int, dt: float, seed: int,
            **options) -> tuple[float, float]:
    """``simulate_network``; agent-steps per wall second and per CPU second of its stepping loop."""
    from solvers import simulate_network

    # warm-up: compile and cache the kernels outside the timing
    # (at the population size that selects the threaded kernel when n does)
    from solvers.network import PARALLEL_MIN

    simulate_network(model, gamma=gamma, n=min(n, PARALLEL_MIN), t_final=2 * dt, dt=dt, seed=seed,
                     save_at=[2 * dt], **options)
    net = simulate_network(model, gamma=gamma, n=n, t_final=steps * dt, dt=dt, seed=seed,
                           save_at=[steps * dt], **options)
    # the time of the stepping loop (moments included), as for the baseline: no set-up, no output
    return (net.info["agent_steps"] / net.info["stepping_time"],
            net.info["agent_steps"] / net.info["stepping_cpu_time"])


def normals_only(model, gamma: float, n: int, steps: int, dt: float,
                 seed: int) -> tuple[float, float]:
    """Only the package's normals (numpy ``PCG64DXSM``, one stream per chunk, into a buffer):
    the floor of any path that draws them, so ``baseline / this`` bounds the attainable ratio."""
    from solvers.network_kernels import CHUNK, noise_streams

    P = model.P
    streams = [noise_streams(child, n) for child in np.random.SeedSequence(seed).spawn(P)]
    buffer = np.empty(min(CHUNK, n))
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        for p in range(P):
            for k, start in enumerate(range(0, n, CHUNK)):
                streams[p][k].standard_normal(out=buffer[: min(CHUNK, n - start)])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return steps * n * P / elapsed, steps * n * P / cpu


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

    paths = [("plain numpy EM loop (baseline)", baseline, {}),
             ("simulate_network numpy path, em", package, {"fast": False}),
             ("simulate_network numpy path, ou", package, {"fast": False, "scheme": "ou"}),
             ("simulate_network numba, em, 1 thread", package, {"fast": True, "threads": 1}),
             ("simulate_network numba, ou, 1 thread", package,
              {"fast": True, "threads": 1, "scheme": "ou"}),
             ("simulate_network numba, em, 2 threads", package, {"fast": True, "threads": 2}),
             ("simulate_network numba, ou, 2 threads", package,
              {"fast": True, "threads": 2, "scheme": "ou"}),
             ("the normals alone (ceiling of any path)", normals_only, {})]
    # interleaved: every repeat runs every path once (the machine's load drifts during the run);
    # each rate is the best over the repeats
    rates: list[list[tuple[float, float]]] = [[] for _ in paths]
    for _ in range(args.repeat):
        for k, (_, run, options) in enumerate(paths):
            rates[k].append(run(model, gamma, n, steps, dt, seed, **options))
    rows = [(name, (max(r[0] for r in rates[k]), max(r[1] for r in rates[k])))
            for k, (name, _, _) in enumerate(paths)]
    base = rows[0][1]
    print(f"{'path':<42}{'agent-steps/s':>15}{'ratio':>8}{'per CPU s':>12}{'ratio':>8}")
    for name, (wall, cpu) in rows:
        print(f"{name:<42}{wall:>15.3e}{wall / base[0]:>8.2f}{cpu:>12.3e}{cpu / base[1]:>8.2f}")
    fastest = max(rows[3:7], key=lambda row: row[1][1])
    print(f"verdict: fastest numba path per CPU second ({fastest[0]}) is "
          f"{fastest[1][1] / base[1]:.1f}x the plain numpy EM loop (target >= 5x); "
          f"drawing the normals alone is {rows[7][1][1] / base[1]:.1f}x")
    if args.memory:
        for path in ("numpy", "numba"):
            out = subprocess.run([sys.executable, __file__, "--memory-child", path],
                                 capture_output=True, text=True, check=True)
            print(f"n = 1e7 per population, 2 populations, {path} path:", out.stdout.strip())


if __name__ == "__main__":
    main()
