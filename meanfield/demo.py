r"""The demo (``meanfield demo``, run by ``make demo``): the balanced state appears as γ grows.

On the default excitatory/inhibitory model (:func:`meanfield.models.chemical`), for γ from 1 to
1e4:

1. **symbolic predictions**: the balance voltages ``v`` and the expansion
   ``mean ≈ v + μ/γ``, ``var ≈ D/(γA)``, ``m ≈ Ψ(v) + m_1/γ`` from
   :func:`asymptotics.stationary_expansion`;
2. **solve**: the exact stationary state of the native finite-volume scheme at every γ (its
   fixed point, reached by ``solvers.solve`` to round-off), and time-dependent solves
   (``solvers.solve``) from the model's initial density at a few γ, whose final densities are
   compared with the stationary ones;
3. **compare**: a table of the errors against the predictions with fitted log–log slopes next to
   the predicted ones (:func:`meanfield.studies.gamma_convergence`);
4. **write** ``gamma-convergence.nc`` and ``transient-gamma<γ>.nc`` (NetCDF) and the figures
   ``densities.png`` (densities concentrating on the balance voltages), ``errors.png`` (errors
   against γ, log–log, with the predicted slopes), ``collapse.png`` (the densities in
   ``√γ (x − v)`` against the predicted Gaussian) and ``transient.png`` (the γ = 1000 solve at
   log-spaced times from ``0.1/γ``: snapshots through the initial layer ``t ~ 1/γ``, the image of
   ``log ρ`` over ``(log t, x)``, mean ± sd) to the output folder (and PDF copies on request).

Pieces this installation lacks are skipped with a printed note (never replaced by made-up
numbers): without ``asymptotics.stationary_expansion`` only the distance to the balance
manifold is tabulated; without ``solvers.solve`` the transients are skipped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

FULL_GAMMAS = tuple(float(g) for g in np.logspace(0, 4, 9))
QUICK_GAMMAS = (1.0, 10.0, 100.0)


MODEL_NAME = "chemical"
"""The demo's model, ``meanfield.models.chemical()`` (its name in the catalogue and the titles)."""

SHORT = {"mean": "mean", "balance_point": "to_v", "var": "var", "m": "m",
         "balance_residual": "to_B"}


def _errors_table(ds: Any) -> str:
    errors = ds["errors"]
    cols = [(str(q), str(p)) for q in errors["quantity"].values for p in errors["population"].values]
    head = f"{'gamma':>9}" + "".join(f"{SHORT.get(q, q) + ' ' + p:>11}" for q, p in cols)
    lines = [head, "-" * len(head)]
    for k, gamma in enumerate(ds["gamma"].values):
        vals = [float(errors.sel(quantity=q, population=p).values[k]) for q, p in cols]
        lines.append(f"{gamma:9.4g}" + "".join(f"{v:11.2e}" for v in vals))
    return "\n".join(lines)


def transient_times(gamma: float, t_final: float) -> np.ndarray:
    """Save times of a demo transient: ``0`` and 4 a decade from ``0.1/γ`` to ``t_final``."""
    from meanfield.studies.plotting_transient import log_times

    return log_times(gamma, t_final, per_decade=4, start=0.1)


def transient_figure(sol: Any, balance: np.ndarray | None) -> Any:
    """The demo's transient figure of a solution (snapshots, ``log ρ`` image, mean ± sd)."""
    from meanfield.studies.plotting_transient import transient_figure as draw

    return draw(sol.to_xarray(), name=MODEL_NAME, balance=balance, max_frames=18,
                title=f"{MODEL_NAME}: transient at γ = {sol.gamma:g} — the density collapses onto "
                "the balance voltage in t ~ 1/γ (dash-dot line)")


def _transients(model: Any, gammas: tuple[float, ...], cells: int, t_final: float, out: Path,
                stationary: Any, progress: bool) -> list[tuple[float, Any]]:
    """Time-dependent solves; returns (γ, solution) pairs and prints their distance to the state."""
    import warnings

    import solvers

    results = []
    iterator: Any = gammas
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(gammas, desc="transients", unit="solve")
    for gamma in iterator:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # coarse start: the grid warning
            sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells,
                                save_at=transient_times(gamma, t_final))
        sol.save(out / f"transient-gamma{gamma:g}.nc")
        results.append((gamma, sol))
    print(f"\nTime-dependent solves (solvers.solve, {cells} cells, from the model's initial "
          f"density to t = {t_final:g}, saved at 0 and 4 log-spaced times a decade from 0.1/γ) "
          "against the exact stationary state:")
    print(f"{'gamma':>9} {'steps':>7} " + " ".join(f"{'|mean-mean*| ' + n:>18}" for n in
                                                    model.names) + f" {'L1 to state':>12}")
    for gamma, sol in results:
        (state,) = [s for s in stationary if s.gamma == gamma] or [None]
        if state is None:
            continue
        rho_star = np.interp(sol.x, state.x, state.rho[0]), np.interp(sol.x, state.x, state.rho[1])
        l1 = float(sum(np.abs(sol.rho[-1, p] - rho_star[p]) @ np.diff(sol.edges)
                       for p in range(model.P)))
        diffs = " ".join(f"{abs(sol.mean[-1, p] - state.mean[p]):18.3e}" for p in range(model.P))
        print(f"{gamma:9.4g} {sol.info.get('steps', -1):7d} {diffs} {l1:12.3e}")
    return results


def run(out_dir: str | Path = "meanfield-out", *, quick: bool = False,
        progress: bool = True, formats: tuple[str, ...] = ("png",)) -> Path:
    """Run the demo, print its tables and write results and figures to ``out_dir``.

    Figures are written once per format of ``formats`` (``"png"``, and ``"pdf"`` for print).
    """
    import solvers
    from meanfield import models
    from meanfield.studies import gamma_convergence, plotting
    from meanfield.studies.convergence import select_state
    from meanfield.studies.plotting_states import collapse_figure

    started = time.perf_counter()
    model = models.chemical()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gammas = QUICK_GAMMAS if quick else FULL_GAMMAS
    cells = 800 if quick else 4000
    print("meanfield demo: the default excitatory/inhibitory model (meanfield.models.chemical)")
    print(f"  gamma from {gammas[0]:g} to {gammas[-1]:g}, {cells} cells on {model.domain}\n")

    def write(figure: Any, stem: str) -> None:
        plotting.save(figure, out / stem, formats=formats, dpi=130)
        plotting.close(figure)

    ds = gamma_convergence(model, gammas, cells=cells, fit_from=10.0, progress=progress)
    ds.to_netcdf(out / "gamma-convergence.nc")
    if "balance_voltage" in ds:
        v, mu = ds["balance_voltage"].values, ds["mu"].values
        print("Symbolic predictions (asymptotics.stationary_expansion, order 1):")
        for p, name in enumerate(model.names):
            print(f"  {name}: balance voltage v = {v[p]: .6f}, mean ≈ v + ({mu[p]: .6f})/γ, "
                  f"var ≈ {model.diffusion[p]:g}/(γ·{float(ds['A'].values[p]):.6f})")
    else:
        print(f"Symbolic predictions: {ds.attrs['predictions']}")
    print("\nErrors of the exact stationary states of the finite-volume scheme against the "
          "predictions\n(mean: |mean − (v+μ/γ)|, to_v: |mean − v| the distance to the balance "
          "voltage,\n var: |var/var_pred − 1|, m: |m − m_pred|, to_B: ∫|h_p|ρ_p the distance to "
          "the balance manifold):")
    print(_errors_table(ds))
    print(f"\nFitted log–log slopes (γ ≥ {_fit_from(ds):g}) against the predicted ones:")
    print(plotting.slopes_table(ds))

    stationary = []
    balance = ds["balance_voltage"].values if "balance_voltage" in ds else None
    shown = {}
    for gamma in gammas[::2] if not quick else gammas:
        states = solvers.stationary_states(model, gamma=gamma, cells=cells, stability=False)
        state = select_state(states, balance)
        stationary.append(state)
        shown[gamma] = (state.x, state.rho)
    write(plotting.concentration_figure(shown, model.names, balance=balance,
                                        title=f"{MODEL_NAME}: stationary densities concentrate "
                                        "on the balance voltages as γ grows"), "densities")
    write(plotting.convergence_figure(ds, title=f"{MODEL_NAME}: errors of the stationary states "
                                      "against γ (dashed: predicted slopes)"), "errors")
    if balance is not None:
        write(collapse_figure({g: pair for g, pair in shown.items() if g >= 10}, v=balance,
                              A=ds["A"].values, D=model.diffusion, names=model.names,
                              name=MODEL_NAME), "collapse")

    if hasattr(solvers, "solve"):
        t_gammas = (100.0, 1000.0) if quick else (10.0, 100.0, 1000.0)
        t_cells = 300 if quick else 1000
        t_final = 0.3 if quick else 1.0
        t_states = [solvers.stationary_states(model, gamma=g, cells=t_cells, stability=False)
                    for g in t_gammas]
        t_states = [select_state(s, balance) for s in t_states]
        results = _transients(model, t_gammas, t_cells, t_final, out, t_states, progress)
        write(transient_figure(results[-1][1], balance), "transient")
    else:
        print("\nTime-dependent solves skipped: this installation has no solvers.solve")
    written = sorted(p.name for p in out.iterdir() if p.suffix in {".nc", ".png", ".pdf"})
    print(f"\nWritten to {out}/: {', '.join(written)}")
    print(f"Done in {time.perf_counter() - started:.1f} s")
    return out


def _fit_from(ds: Any) -> float:
    """The ``fit_from`` parameter of a gamma study."""
    import json

    return float(json.loads(ds.attrs["parameters"])["fit_from"])
