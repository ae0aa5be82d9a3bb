"""The result of a time-dependent solve: densities, observables, NetCDF round trip."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from meanfield.errors import bad_value
from meanfield.model import Model
from meanfield.numeric import numeric
from solvers.grid import Grid
from solvers.observables import observe


@dataclass(frozen=True, eq=False)
class Solution:
    """Densities ``rho`` (nt, P, M) at times ``t`` on cell centres ``x``, with observables.

    ``mass``, ``mean``, ``var``, ``m`` and ``balance_residual`` have shape (nt, P). ``info`` holds
    solver diagnostics (method, steps, rejected steps, Newton/sweep counts, wall time...).
    """

    model: Model
    gamma: float
    method: str
    t: np.ndarray
    x: np.ndarray
    rho: np.ndarray
    mass: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray
    edges: np.ndarray
    info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_densities(cls, model: Model, gamma: float, method: str, grid: Grid,
                       t: np.ndarray, rho: np.ndarray, info: Mapping[str, Any] | None = None,
                       nm: Any = None) -> Solution:
        """Build a solution, computing every observable from ``rho`` with one shared routine."""
        t = np.asarray(t, dtype=float)
        rho = np.asarray(rho, dtype=float)
        if rho.shape != (t.size, model.P, grid.cells):
            bad_value("rho", rho.shape, f"shape {(t.size, model.P, grid.cells)} (nt, P, M)")
        obs = observe(nm if nm is not None else numeric(model), grid, rho, t)
        return cls(model=model, gamma=float(gamma), method=method, t=t, x=grid.x.copy(),
                   rho=rho, mass=obs.mass, mean=obs.mean, var=obs.var, m=obs.m,
                   balance_residual=obs.balance_residual, edges=grid.edges.copy(),
                   info=dict(info or {}))

    @property
    def grid(self) -> Grid:
        return Grid(self.edges)

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    @property
    def resolution(self) -> Any:
        """The worst :class:`~solvers.resolution.ResolutionReport` over the saved frames (or None)."""
        from solvers.resolution import report_from_dict

        data = self.info.get("resolution")
        return None if data is None else report_from_dict(data)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (t, population, x), CF metadata (:mod:`solvers.datasets`)."""
        from solvers.datasets import build_dataset

        per_t = ("t", "population")
        data = {
            "rho": (("t", "population", "x"), self.rho),
            "mass": (per_t, self.mass), "mean": (per_t, self.mean), "var": (per_t, self.var),
            "m": (per_t, self.m), "balance_residual": (per_t, self.balance_residual),
            "edges": (("edge",), self.edges),
        }
        coords = {"t": (("t",), self.t), "population": (("population",), list(self.names)),
                  "x": (("x",), self.x)}
        return build_dataset("Solution", data=data, coords=coords, model=self.model,
                             gamma=self.gamma, solver=self.method,
                             options={"method": self.method}, info=self.info,
                             attrs={"method": self.method})

    def save(self, path: str | PathLike[str]) -> None:
        """Write the solution to NetCDF (read back, checked, with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> Solution:
        """The solution of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.io import read_solution

        return read_solution(ds, path)
