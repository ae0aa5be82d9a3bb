r"""Ensembles of network runs over seeds, with Student-t confidence bands.

For ``S`` independent runs (one per seed) and an observable ``y_s(t)``, the band at level
``1 − α`` is ``ȳ(t) ± t_{S−1, 1−α/2} · s(t)/√S`` (``s`` the sample standard deviation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
from scipy import stats

from meanfield.errors import bad_value, check_finite_number, check_int
from meanfield.model import Model

OBSERVABLES = ("m", "mean", "var", "balance_residual")


@dataclass(frozen=True, eq=False)
class NetworkEnsemble:
    """Per-seed observables ``values[name]`` of shape (S, nt, P) at the common times ``t``."""

    model: Model
    gamma: float
    seeds: tuple[int, ...]
    t: np.ndarray
    values: dict[str, np.ndarray]
    confidence: float
    info: dict[str, Any] = field(default_factory=dict)

    def band(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(centre, lower, upper)`` of observable ``name`` (each (nt, P))."""
        if name not in self.values:
            bad_value("name", name, f"one of {sorted(self.values)}")
        data = self.values[name]
        centre = data.mean(axis=0)
        S = data.shape[0]
        if S < 2:
            return centre, centre.copy(), centre.copy()
        half = stats.t.ppf(0.5 + self.confidence / 2, S - 1) * data.std(axis=0, ddof=1) / np.sqrt(S)
        return centre, centre - half, centre + half

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset``: per-seed observables (seed, t, population) and their bands."""
        from solvers.datasets import VARIABLES, build_dataset

        data, extra = {}, {"seed": ("random seed", "1", "seed of each network run")}
        level = f"{100 * self.confidence:g} %"
        for name, values in self.values.items():
            centre, lower, upper = self.band(name)
            long_name, units, description = VARIABLES[name]
            data[name] = (("seed", "t", "population"), values)
            extra[name] = (long_name, units, f"{description}; one row per seed (network run)")
            for suffix, band, what in (("centre", centre, "mean over the seeds"),
                                       ("lower", lower, f"lower end of the {level} Student-t band"),
                                       ("upper", upper, f"upper end of the {level} Student-t band")):
                data[f"{name}_{suffix}"] = (("t", "population"), band)
                extra[f"{name}_{suffix}"] = (f"{long_name}, {suffix}", units, what)
        coords = {"seed": (("seed",), list(self.seeds)), "t": (("t",), self.t),
                  "population": (("population",), list(self.model.names))}
        return build_dataset("NetworkEnsemble", data=data, coords=coords, model=self.model,
                             gamma=self.gamma, solver="network_ensemble",
                             options={"confidence": self.confidence}, info=self.info,
                             attrs={"confidence": self.confidence}, extra=extra)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> NetworkEnsemble:
        """The ensemble of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.datasets import Reader
        from solvers.io import read_times

        r = Reader(ds, path, "NetworkEnsemble")
        model = r.model()
        r.size("population", model.P)
        seeds = r.array("seed", ("seed",), dtype=int)
        if seeds.size < 1 or np.unique(seeds).size != seeds.size or seeds.min() < 0:
            r.fail(f"the seeds {seeds.tolist()} are not distinct integers >= 0")
        confidence = r.number("confidence")
        if not 0 < confidence < 1:
            r.fail(f"the attribute 'confidence' is {confidence}, expected a level in (0, 1)")
        names = [name for name in OBSERVABLES if name in ds.variables]
        if not names:
            r.fail(f"none of the observables {list(OBSERVABLES)} is stored")
        t = read_times(r)
        values = {name: r.array(name, ("seed", "t", "population")) for name in names}
        return cls(model=model, gamma=r.number("gamma", minimum=0),
                   seeds=tuple(int(s) for s in seeds), t=t, values=values,
                   confidence=confidence, info=r.mapping("info"))


def network_ensemble(model: Model, *, seeds: Sequence[int], confidence: float = 0.95,
                     **options: Any) -> NetworkEnsemble:
    """Run :func:`solvers.simulate_network` once per seed (same ``options``) and collect bands."""
    from solvers.network import simulate_network

    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)):
        bad_value("seeds", seeds, "a sequence of distinct integer seeds")
    seed_list = tuple(check_int("seeds", s, minimum=0) for s in seeds)
    if len(seed_list) == 0 or len(set(seed_list)) != len(seed_list):
        bad_value("seeds", seeds, "a non-empty sequence of distinct integer seeds")
    confidence = check_finite_number("confidence", confidence)
    if not 0 < confidence < 1:
        bad_value("confidence", confidence, "a level strictly between 0 and 1")
    if "seed" in options:
        bad_value("seed", options["seed"], "no seed= option: give seeds=[...]")
    runs = [simulate_network(model, seed=s, **options) for s in seed_list]
    values = {name: np.stack([getattr(r, name) for r in runs]) for name in OBSERVABLES}
    info = {"n": list(runs[0].n), "dt": runs[0].dt, "scheme": runs[0].scheme,
            "wall_time": float(sum(r.info["wall_time"] for r in runs))}
    return NetworkEnsemble(model=model, gamma=runs[0].gamma, seeds=seed_list, t=runs[0].t,
                           values=values, confidence=confidence, info=info)
