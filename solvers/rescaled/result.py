r"""The result of the zoomed solvers: the densities on their moving windows and their observables."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
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
    with backward Euler, ``positivity_fallbacks``) and the largest cell Péclet number met
    (``max_peclet``).
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
        """An ``xarray.Dataset`` with dims (t, population, cell) and the model in the attributes."""
        import json

        import xarray as xr

        from meanfield import __version__

        per_t = ("t", "population")
        data = {"rho": (("t", "population", "cell"), self.rho),
                "y_edges": (("t", "population", "edge"), self.y_edges),
                "center": (per_t, self.center), "mass": (per_t, self.mass),
                "mean": (per_t, self.mean), "var": (per_t, self.var), "m": (per_t, self.m),
                "balance_residual": (per_t, self.balance_residual)}
        attrs = {"gamma": self.gamma, "eps": self.eps, "scheme": self.scheme,
                 "model": self.model.to_json(), "meanfield_version": __version__,
                 "info": json.dumps({k: (v if isinstance(v, (int, float, str)) else repr(v))
                                     for k, v in self.info.items()})}
        return xr.Dataset(data, coords={"t": self.t, "population": list(self.names)},
                          attrs=attrs)
