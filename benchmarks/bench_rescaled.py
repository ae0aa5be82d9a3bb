"""Cost of the zoomed solver against the native one, and its flatness in γ.

Task (issue #14): a 3-population chemical model, 200 cells per population, to t = 5.
``solve_rescaled`` at γ = 1e8 against the native ``solve`` of the same model at γ = 100 on the
same cells (target ≤ 3×); the zoomed cost over γ = 1e2 … 1e12 (target max/min ≤ 1.5); and at
γ = 1e8 the mean and variance against the first-order stationary expansion (targets 1e-9 and
1e-3 relative). All ratios are measured in the same run.

Run: ``python benchmarks/bench_rescaled.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import asymptotics as asy
import meanfield as mf
import solvers
from solvers.rescaled import solve_rescaled

T_FINAL = 5.0
CELLS = 200


def three_populations() -> mf.Model:
    return mf.models.chemical(names=("E", "I", "S"), reversal=(2.0, -1.5, 1.0),
                              g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 0.5, 1.0)),
                              sigma=(0.8, 0.6, 0.7))


def timed(run) -> tuple[float, object]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run()
    return time.perf_counter() - start, out


def main() -> None:
    model = three_populations()
    timed(lambda: solvers.solve(model, gamma=10.0, t_final=0.01, cells=CELLS))  # compile
    timed(lambda: solve_rescaled(model, gamma=10.0, t_final=0.01, cells=CELLS))
    native, nsol = timed(lambda: solvers.solve(model, gamma=100.0, t_final=T_FINAL, cells=CELLS))
    print(f"native solve, γ = 100: {native:.3f} s ({nsol.info['steps']} steps)", flush=True)
    costs = {}
    for gamma in (1e2, 1e4, 1e6, 1e8, 1e10, 1e12):
        cost, sol = timed(lambda gamma=gamma: solve_rescaled(model, gamma=gamma, t_final=T_FINAL,
                                                             cells=CELLS))
        costs[gamma] = cost
        line = (f"solve_rescaled γ = {gamma:7.0e}: {cost:7.3f} s ({sol.info['steps']} steps, "
                f"{sol.info['rejected_steps']} rejected), {cost / native:6.1f}× native")
        if gamma == 1e8:
            expansion = asy.stationary_expansion(model, order=1)
            mean_err = np.max(np.abs(sol.mean[-1] - (expansion.v + expansion.mu / gamma)))
            var_err = np.max(np.abs(sol.var[-1] / (expansion.D / (gamma * expansion.A)) - 1))
            line += f"; mean error {mean_err:.1e} (≤ 1e-9), var error {var_err:.1e} (≤ 1e-3)"
        print(line, flush=True)
    print(f"rescaled γ = 1e8 / native γ = 100: {costs[1e8] / native:.1f} (target ≤ 3)")
    print(f"rescaled cost max/min over γ: {max(costs.values()) / min(costs.values()):.2f} "
          "(target ≤ 1.5)")


if __name__ == "__main__":
    main()
