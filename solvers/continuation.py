"""Branches of stationary states followed in γ (docs/mathematics.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np

from meanfield.errors import bad_value, check_finite_number
from meanfield.model import Model
from meanfield.numeric import numeric
from solvers.grid import Grid, make_grid
from solvers.resolution import DEFAULT_TOLERANCE, ResolutionReport
from solvers.stationary_search import GibbsMap, newton


@dataclass(frozen=True, eq=False)
class Branch:
    """A branch of stationary states followed in γ (``gammas`` and ``states`` aligned)."""

    gammas: np.ndarray
    states: tuple[Any, ...]

    @property
    def m(self) -> np.ndarray:
        return np.array([s.m for s in self.states])

    @property
    def mean(self) -> np.ndarray:
        return np.array([s.mean for s in self.states])

    @property
    def var(self) -> np.ndarray:
        return np.array([s.var for s in self.states])

    @property
    def stable(self) -> np.ndarray:
        return np.array([s.stable for s in self.states])

    @property
    def resolved(self) -> np.ndarray:
        """Whether each state is resolved to its tolerance (:mod:`solvers.resolution`)."""
        return np.array([s.resolution is None or s.resolution.ok for s in self.states])

    @property
    def resolution(self) -> ResolutionReport | None:
        """The worst resolution report along the branch."""
        reports = [s.resolution for s in self.states if s.resolution is not None]
        if not reports:
            return None
        out = reports[0]
        for other in reports[1:]:
            out = out.combine(other)
        return out

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (gamma, population, x): the states stacked along γ."""
        from solvers.state_io import states_dataset

        return states_dataset(self.states, branch=True)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> Branch:
        """The branch of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.state_io import states_from_dataset

        states = states_from_dataset(ds, path, branch=True)
        return cls(gammas=np.array([s.gamma for s in states]), states=tuple(states))

    def plot(self, *, quantity: str = "mean", others: Sequence[Branch] = (), **options: Any) -> Any:
        """The bifurcation diagram of this branch (and ``others``): ``quantity`` against γ,
        stable solid, unstable dashed, folds marked (:func:`meanfield.studies.plotting_states.
        bifurcation_figure`, which takes ``name``, ``title``, ``xscale``). Returns the figure."""
        from meanfield.studies.plotting_states import bifurcation_figure

        return bifurcation_figure([self, *others], quantity=quantity, **options)


def continuation(model: Model, gammas: Sequence[float], *, cells: int | str | None = None,
                 grid: Grid | None = None, starts: int = 32, stability: bool = True,
                 tolerance: float = DEFAULT_TOLERANCE, kernel: str = "auto") -> tuple[Branch, ...]:
    """Follow every branch of stationary states along increasing ``gammas``.

    At every γ the roots are the union of a global search and Newton corrections of each branch's
    secant prediction; each branch takes the nearest free root (closest pairs first), branches left
    without one end at a fold, and roots left free start new branches. Every state found by
    :func:`~solvers.stationary.stationary_states` thus lies on a branch. Each state carries its
    resolution report; one ``ResolutionWarning`` covers the worst state of all branches.
    ``cells="auto"`` adapts a grid to the states at every γ as
    :func:`~solvers.stationary.stationary_states` does and follows the branches on the union of
    these grids (one grid for all states, so branches stack into one dataset).
    """
    from solvers.stationary import (
        auto_grid,
        check_options,
        make_state,
        merged_grid,
        search,
        warn_states,
    )

    check_options(model, starts=starts, stability=stability, tolerance=tolerance)
    values = np.asarray([check_finite_number("gammas", g) for g in gammas], dtype=float)
    if values.size < 1 or np.any(values < 0) or np.any(np.diff(values) <= 0):
        bad_value("gammas", list(gammas), "a non-empty, strictly increasing list of values >= 0")
    nm = numeric(model)
    if isinstance(cells, str):
        if cells != "auto" or grid is not None:
            bad_value("cells", cells, "an integer >= 3, 'auto' (without grid=) or None")
        # one grid for the whole branch: the union of the grids adapted at every γ
        grid_ = merged_grid([auto_grid(nm, float(g), 0.0, starts, tolerance, kernel)[0].grid
                             for g in values])
    else:
        grid_ = make_grid(model.domain, cells, grid)
    open_branches: list[tuple[list[float], list[np.ndarray]]] = []
    closed: list[tuple[list[float], list[np.ndarray]]] = []
    maps: dict[float, GibbsMap] = {}
    for gamma in values:
        gmap, found = search(nm, grid_, float(gamma), 0.0, starts, tolerance, kernel)
        maps[float(gamma)] = gmap
        span = max(1.0, float(np.max(gmap.upper - gmap.lower)))
        predictions = []
        for gs, ms in open_branches:
            predictions.append(ms[-1] if len(ms) < 2 else ms[-1] + (ms[-1] - ms[-2]) * (
                (gamma - gs[-1]) / (gs[-1] - gs[-2])))
        roots: list[np.ndarray] = []
        for root in [*(newton(gmap, guess) for guess in predictions), *found]:
            if root is not None and not any(np.max(np.abs(root - r)) < 1e-7 * span for r in roots):
                roots.append(root)
        # each open branch takes the nearest free root (closest pairs first); the rest end at a fold
        pairs = sorted((float(np.max(np.abs(pred - r))), b, k) for b, pred in enumerate(predictions)
                       for k, r in enumerate(roots))
        taken_branch: set[int] = set()
        taken_root: set[int] = set()
        for _, b, k in pairs:
            if b in taken_branch or k in taken_root:
                continue
            taken_branch.add(b)
            taken_root.add(k)
            open_branches[b][0].append(float(gamma))
            open_branches[b][1].append(roots[k])
        closed.extend(br for b, br in enumerate(open_branches) if b not in taken_branch)
        open_branches = [br for b, br in enumerate(open_branches) if b in taken_branch]
        open_branches.extend(([float(gamma)], [r]) for k, r in enumerate(roots)
                             if k not in taken_root)
    closed.extend(open_branches)
    branches = []
    for gs, ms in closed:
        states = tuple(make_state(model, maps[g], m, bool(stability), tolerance=tolerance,
                                  kernel=kernel) for g, m in zip(gs, ms, strict=True))
        branches.append(Branch(gammas=np.array(gs), states=states))
    branches.sort(key=lambda b: (b.gammas[0], b.states[0].mean[0]))
    warn_states([s for b in branches for s in b.states])
    return tuple(branches)
