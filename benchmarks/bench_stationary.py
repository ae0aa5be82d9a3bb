"""Stationary states on fine grids (#14): ``stationary_states`` at 1e4, 1e5 and 1e6 cells.

Targets: at 1e6 cells ≤ 3 s and ≤ 20× the time at 1e4 cells. The search runs on a coarsening of
the grid and each state is polished by Newton on the requested grid (compiled Gibbs kernels).
The previous algorithm (the whole search on the requested grid) is timed in the same run at 1e4
and 1e5 cells (at 1e6 it takes minutes), interleaved with the new one: the verdicts are ratios.
Run: ``python benchmarks/bench_stationary.py [--model chemical_single] [--gamma 2.5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import meanfield as mf
import solvers
from solvers.grid import make_grid
from solvers.stationary import make_state
from solvers.stationary_search import GibbsMap, find_roots


def new(model: mf.Model, gamma: float, cells: int) -> int:
    return len(solvers.stationary_states(model, gamma=gamma, cells=cells))


def previous(model: mf.Model, gamma: float, cells: int) -> int:
    """The whole root search on the requested grid, then the same states."""
    gmap = GibbsMap(mf.numeric(model), make_grid(model.domain, cells), gamma)
    return len([make_state(model, gmap, r, True) for r in find_roots(gmap)])


def timed(fn: Callable[[mf.Model, float, int], int], model: mf.Model, gamma: float,
          cells: int) -> tuple[float, float, int]:
    """Wall and CPU time of one call and the number of states."""
    start, start_cpu = time.perf_counter(), time.process_time()
    count = fn(model, gamma, cells)
    return time.perf_counter() - start, time.process_time() - start_cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chemical", choices=sorted(mf.models.CATALOGUE))
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-previous", action="store_true", help="skip the previous algorithm")
    args = parser.parse_args()
    model = mf.models.CATALOGUE[args.model]()
    new(model, args.gamma, 1000)  # compile the kernels
    sizes = (10_000, 100_000, 1_000_000)
    best: dict[tuple[str, int], tuple[float, float, int]] = {}
    for _ in range(args.repeat):  # interleaved: the machine load hits both alike
        for cells in sizes:
            runs = [("new", new)]
            if not args.no_previous and cells <= 100_000:
                runs.append(("previous", previous))
            for name, fn in runs:
                result = timed(fn, model, args.gamma, cells)
                key = (name, cells)
                if key not in best or result[1] < best[key][1]:
                    best[key] = result
    print(f"{args.model}, gamma={args.gamma:g} (best of {args.repeat}; wall / CPU seconds)")
    for (name, cells), (wall, cpu, count) in sorted(best.items(), key=lambda kv: kv[0][1]):
        print(f"  {name:8s} {cells:>9d} cells: {wall:7.3f} s / {cpu:7.3f} s CPU, {count} states")
    cpu = {key: value[1] for key, value in best.items()}
    print(f"ratio 1e6/1e4 cells (CPU) = {cpu['new', 1_000_000] / cpu['new', 10_000]:.1f} "
          "(target <= 20)")
    print(f"ratio 1e5/1e4 cells (CPU) = {cpu['new', 100_000] / cpu['new', 10_000]:.1f}")
    for cells in (10_000, 100_000):
        if ("previous", cells) in cpu:
            print(f"speed-up over the previous algorithm at {cells} cells (CPU) = "
                  f"{cpu['previous', cells] / cpu['new', cells]:.1f}")
    print(f"1e6 cells: {cpu['new', 1_000_000]:.2f} s CPU (target <= 3 s; wall time on a loaded "
          "machine is larger)")


if __name__ == "__main__":
    main()
