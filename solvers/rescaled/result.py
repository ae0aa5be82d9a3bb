r"""The result of the zoomed solvers: the densities on their moving windows and their observables."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from meanfield.model import Model


@dataclass(frozen=True, eq=False)
class RescaledSolution:
    """The solution in the zoomed frame ``x = center + eps·y`` and its observables in ``x``.

    ``t`` (nt,); ``center``, ``mean``, ``var``, ``m``, ``mass``, ``balance_residual`` (nt, P);
    ``y_edges`` (nt, P, M+1) the window of each population at each saved time, in
    ``y = (x − center)/eps``; ``rho`` (nt, P, M) the density in ``x`` on those cells (``x_edges``).
    ``info`` holds the counters of :mod:`solvers.stepping` (steps, rejections, Newton work, the
    accepted steps whose densities were limited to stay ≥ 0, ``positivity_clips``, or redone
    with backward Euler, ``positivity_fallbacks``) and the expected relative error of each
    variance from the cells at every saved time (``variance_error`` (nt, P),
    :mod:`solvers.rescaled.smearing`).
    """

    model: Model
    gamma: float
    eps: float
    scheme: str
    t: np.ndarray
    center: np.ndarray
    y_edges: np.ndarray
    rho: np.ndarray
    mass: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def q(self) -> np.ndarray:
        """Deprecated: the density in ``y``, ``eps·rho`` (use ``rho``)."""
        warnings.warn("RescaledSolution.q is deprecated; use rho (the density in x, "
                      "q = eps*rho)", DeprecationWarning, stacklevel=2)
        return self.eps * self.rho

    @property
    def method(self) -> str:
        """Deprecated name of ``scheme``."""
        warnings.warn("RescaledSolution.method is deprecated; use scheme", DeprecationWarning,
                      stacklevel=2)
        return self.scheme

    @property
    def y(self) -> np.ndarray:
        """Cell centres in ``y`` (nt, P, M)."""
        return (self.y_edges[..., 1:] + self.y_edges[..., :-1]) / 2

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    def x_edges(self, index: int = -1) -> np.ndarray:
        """Cell edges in ``x`` (P, M+1) at saved time ``index``."""
        return self.center[index][:, None] + self.eps * self.y_edges[index]

    def density_on(self, edges: np.ndarray, index: int = -1) -> np.ndarray:
        """Cell averages of ``ρ_p`` (P, len(edges)−1) on the x-cells ``edges`` (conservative)."""
        edges = np.asarray(edges, dtype=float)
        out = []
        for p in range(self.model.P):
            xe = self.x_edges(index)[p]
            cumulative = np.concatenate([[0.0], np.cumsum(self.rho[index, p] * np.diff(xe))])
            out.append(np.diff(np.interp(edges, xe, cumulative)) / np.diff(edges))
        return np.array(out)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (t, population, cell), CF metadata (:mod:`solvers.datasets`)."""
        from solvers.datasets import STATE, build_dataset

        per_t = ("t", "population")
        data = {"rho": (("t", "population", "cell"), self.rho),
                "y_edges": (("t", "population", "edge"), self.y_edges),
                "center": (per_t, self.center), "mass": (per_t, self.mass),
                "mean": (per_t, self.mean), "var": (per_t, self.var), "m": (per_t, self.m),
                "balance_residual": (per_t, self.balance_residual)}
        extra = {
            "cell": ("cell index", "1", "index of the cell of each population's moving window"),
            "center": ("window centre", STATE, "centre of the zoomed window: x = center + eps*y "
                       "(it follows the concentrating profile, whose limit is the balance point)"),
            "y_edges": ("rescaled cell edges", "1", "cell edges of each window in the rescaled "
                        "variable y = (x - center)/eps, eps = attribute eps (x edges: "
                        "center + eps*y_edges); rho is given on these cells"),
        }
        return build_dataset("RescaledSolution", data=data, coords={
            "t": (("t",), self.t), "population": (("population",), list(self.names))},
            model=self.model, gamma=self.gamma, solver="solve_rescaled",
            options={"scheme": self.scheme}, info=self.info,
            attrs={"eps": self.eps, "scheme": self.scheme}, extra=extra)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> RescaledSolution:
        """The solution of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.datasets import Reader
        from solvers.io import read_density, read_times

        r = Reader(ds, path, "RescaledSolution")
        model = r.model()
        r.size("population", model.P)
        cells = r.size("cell", minimum=3)
        t = read_times(r)
        eps = r.number("eps")
        if eps <= 0:
            r.fail(f"the attribute 'eps' is {eps}, expected a number > 0")
        shape = (t.size, model.P)
        y_edges = r.array("y_edges", ("t", "population", "edge"), shape=(*shape, cells + 1))
        if np.any(np.diff(y_edges, axis=-1) <= 0):
            r.fail("y_edges are not strictly increasing in every window")
        rho = read_density(r, "rho", ("t", "population", "cell"))
        obs = {name: r.array(name, ("t", "population"))
               for name in ("center", "mass", "mean", "var", "m", "balance_residual")}
        if not np.allclose(obs["mass"], np.sum(rho * eps * np.diff(y_edges, axis=-1), axis=-1),
                           rtol=1e-8, atol=1e-12):
            r.fail("mass does not match the integral of rho over the cells")
        return cls(model=model, gamma=r.number("gamma", minimum=0), eps=eps,
                   scheme=r.text("scheme"), t=t, y_edges=y_edges, rho=rho,
                   info=r.mapping("info"), **obs)
