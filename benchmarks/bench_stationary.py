"""Stationary states on fine grids (#14): ``stationary_states`` at 1e6 cells against 1e4 cells.

Targets: at 1e6 cells ≤ 3 s and ≤ 20× the time at 1e4 cells (the search runs on a coarsening
of the grid, each state is polished by Newton on the requested grid; compiled Gibbs kernels).
Run: ``python benchmarks/bench_stationary.py [--model chemical] [--gamma 10]``.
"""

from __future__ import annotations

import argparse
import time

import meanfield as mf
import solvers


def timed(model: mf.Model, gamma: float, cells: int, repeat: int) -> tuple[float, float, int]:
    """Best wall and CPU time of ``repeat`` calls, and the number of states."""
    best, cpu, count = float("inf"), float("inf"), 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        states = solvers.stationary_states(model, gamma=gamma, cells=cells)
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
        count = len(states)
    return best, cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chemical", choices=sorted(mf.models.CATALOGUE))
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    model = mf.models.CATALOGUE[args.model]()
    timed(model, args.gamma, 1000, 1)  # compile the kernels
    small, small_cpu, n_small = timed(model, args.gamma, 10_000, args.repeat)
    large, large_cpu, n_large = timed(model, args.gamma, 1_000_000, args.repeat)
    print(f"{args.model}, gamma={args.gamma:g}: 1e4 cells {small:.3f} s wall / {small_cpu:.3f} s "
          f"CPU ({n_small} states), 1e6 cells {large:.3f} s wall / {large_cpu:.3f} s CPU "
          f"({n_large} states)")
    print(f"ratio 1e6/1e4 = {large / small:.1f} (target <= 20); absolute {large:.2f} s "
          f"(target <= 3 s)")


if __name__ == "__main__":
    main()
