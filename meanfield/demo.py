"""The demo: stationary states of the default E/I model as γ grows (the balanced state appears)."""

from __future__ import annotations

from pathlib import Path


def run(out_dir: str | Path = "meanfield-out", gammas: tuple[float, ...] = (1, 10, 100, 1e3, 1e4),
        cells: int = 4000) -> Path:
    """Print a table of stationary means and variances and save a figure of the densities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import solvers
    from meanfield import models

    model = models.chemical()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, model.P, figsize=(5 * model.P, 3.6), squeeze=False)
    header = f"{'gamma':>8} {'branch':>6} " + " ".join(
        f"{'mean_' + n:>12} {'var_' + n:>12}" for n in model.names) + f" {'stable':>7}"
    print("Stationary states of the default excitatory/inhibitory model (meanfield.models.chemical)")
    print(header)
    print("-" * len(header))
    for gamma in gammas:
        states = solvers.stationary_states(model, gamma=gamma, cells=cells)
        for k, state in enumerate(states):
            cols = " ".join(f"{state.mean[p]:12.6f} {state.var[p]:12.4e}" for p in range(model.P))
            print(f"{gamma:8g} {k:6d} {cols} {str(state.stable):>7}")
            for p in range(model.P):
                keep = state.rho[p] > 1e-8 * state.rho[p].max()
                axes[0, p].plot(state.x[keep], state.rho[p][keep], label=f"γ = {gamma:g}")
    for p, name in enumerate(model.names):
        axes[0, p].set_xlabel("x (membrane potential)")
        axes[0, p].set_ylabel(f"stationary density ρ_{name}")
        axes[0, p].set_title(f"population {name}")
        axes[0, p].set_yscale("log")
        axes[0, p].set_ylim(1e-3, None)
        axes[0, p].legend(fontsize=8)
    fig.suptitle("Densities concentrate on the balance voltages as γ grows")
    fig.tight_layout()
    path = out / "stationary-densities.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure written to {path}")
    return path
