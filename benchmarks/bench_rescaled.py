"""Cost to reach 1e-6 relative accuracy in mean and variance: rescaled solver vs native solver in x.

Task, at each γ in 1e2, 1e4, 1e6, 1e8 (default E/I ``chemical`` model): start from Gaussians of
twice the concentration width ``w = √(D/(γA))`` placed 3 widths above the stable balance point
and compute the mean and variance reached at the fast time ``τ = γt = 60`` (the stationary
state, to well below 1e-6). The reference is the rescaled solver on 400 cells with
``rtol=1e-8``. For each solver the number of cells is doubled (rescaled from 12, native from
``dx = w``) until both relative errors are ≤ 1e-6 (time tolerance ``rtol=1e-4``: transient
errors decay); the wall time of that cheapest run is the cost. The native solver is skipped once
it would need more than ``NATIVE_MAX_CELLS`` cells (its need grows like √γ).

Transients themselves are second order in space for both solvers (Scharfetter–Gummel), so
1e-6 on a transient needs ~10⁴ cells per population even in the zoomed frame; and from a wide
initial state the concentration phase lasts ``τ ~ log(γ)/(2A)``, so the rescaled cost then grows
like ``log γ`` (not measured here).

Run: ``python benchmarks/bench_rescaled.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import meanfield as mf
import solvers
from solvers.limits import balance_points
from solvers.rescaled import solve_rescaled

TARGET = 1e-6
TAU = 60.0
NATIVE_MAX_CELLS = 2**20


def initial_for(model: mf.Model, gamma: float) -> tuple[list, np.ndarray]:
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    return ([lambda x, c=point.v[p] + 3 * width[p], s=2 * width[p]:
             np.exp(-((x - c) ** 2) / (2 * s * s)) for p in range(model.P)], width)


def error(sol, ref) -> float:
    return float(max(np.max(np.abs(sol.mean[-1] / ref.mean[-1] - 1)),
                     np.max(np.abs(sol.var[-1] / ref.var[-1] - 1))))


def cheapest(run, cells0: int, max_cells: int) -> tuple[int, float, float] | tuple[int, None, float]:
    cells = cells0
    while cells <= max_cells:
        start = time.perf_counter()
        err = run(cells)
        elapsed = time.perf_counter() - start
        if err <= TARGET:
            return cells, elapsed, err
        cells *= 2
    return cells, None, float("nan")


def main() -> None:
    model = mf.models.chemical()
    a, b = model.domain
    # warm up both solvers (numba compilation, lambdify caches) outside the timings
    solvers.solve(model, gamma=10.0, t_final=0.01, cells=256)
    solve_rescaled(model, gamma=10.0, t_final=0.01, cells=16, rtol=1e-3)
    rows = []
    for gamma in (1e2, 1e4, 1e6, 1e8):
        initial, width = initial_for(model, gamma)
        t_end = TAU / gamma
        ref = solve_rescaled(model, gamma=gamma, t_final=t_end, cells=400, rtol=1e-8,
                             initial=initial, save_at=[t_end])

        def rescaled_error(cells: int, gamma=gamma, initial=initial, t_end=t_end, ref=ref) -> float:
            return error(solve_rescaled(model, gamma=gamma, t_final=t_end, cells=cells, rtol=1e-4,
                                        initial=initial, save_at=[t_end]), ref)

        def native_error(cells: int, gamma=gamma, initial=initial, t_end=t_end, ref=ref) -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sol = solvers.solve(model, gamma=gamma, t_final=t_end, cells=cells, rtol=1e-4,
                                    atol=1e-12, initial=initial, save_at=[t_end])
            return error(sol, ref)

        r_cells, r_time, r_err = cheapest(rescaled_error, 12, 3200)
        n0 = int(2 ** np.ceil(np.log2((b - a) / width.min())))
        n_cells, n_time, n_err = cheapest(native_error, n0, NATIVE_MAX_CELLS)
        rows.append((gamma, r_cells, r_time, r_err, n_cells, n_time, n_err))
        native = (f"{n_time:10.3f} s ({n_cells:>8d} cells)" if n_time is not None
                  else f"  > budget  (needs > {NATIVE_MAX_CELLS} cells)")
        ratio = f"{n_time / r_time:8.1f}" if n_time is not None else "     n/a"
        print(f"γ = {gamma:8.0e}   rescaled {r_time:8.3f} s ({r_cells:>5d} cells, err "
              f"{r_err:.1e})   native {native}   native/rescaled {ratio}", flush=True)
    times = [r[2] for r in rows]
    print(f"rescaled cost, max/min over γ: {max(times) / min(times):.2f} (target ≤ 2)")
    native = [(r[0], r[5]) for r in rows if r[5] is not None]
    if len(native) >= 2:
        slope = np.polyfit(np.log([g for g, _ in native]), np.log([t for _, t in native]), 1)[0]
        print(f"native cost ~ γ^{slope:.2f} (√γ: 0.5)")


if __name__ == "__main__":
    main()
