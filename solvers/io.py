"""Reading result files back: :func:`load`, which treats a file as data and checks all of it.

A result file is NetCDF written by the ``save`` method of any result type (see
:mod:`solvers.datasets`). :func:`load` never runs code from it: it dispatches on the attribute
``result_type`` to that class's ``from_xarray``, the model is rebuilt from its JSON text (the
safe expression parser, no ``eval``, no pickle), and every array is checked against the model
and the grid stored beside it. Every error is a ``ValueError`` that names the file and says
what is wrong.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from solvers.datasets import MAX_TEXT, Reader

__all__ = ["MAX_TEXT", "RESULT_TYPES", "load", "read_grid", "read_network", "read_solution"]

#: result_type -> (module, class) of every type :func:`load` reads
RESULT_TYPES = {
    "Solution": ("solvers.solution", "Solution"),
    "StationaryState": ("solvers.stationary", "StationaryState"),
    "Branch": ("solvers.continuation", "Branch"),
    "NetworkResult": ("solvers.network", "NetworkResult"),
    "NetworkEnsemble": ("solvers.network_ensemble", "NetworkEnsemble"),
    "Fluctuations": ("solvers.fluctuations", "Fluctuations"),
    "TransientFluctuations": ("solvers.fluctuations", "TransientFluctuations"),
    "FhnPdeResult": ("solvers.fhn.fipy2d", "FhnPdeResult"),
    "FhnNativeResult": ("solvers.fhn.result", "FhnNativeResult"),
    "FhnNetworkResult": ("solvers.fhn.network", "FhnNetworkResult"),
    "RescaledSolution": ("solvers.rescaled", "RescaledSolution"),
    "ConstrainedSolution": ("solvers.constrained", "ConstrainedSolution"),
    "EarlyBehaviour": ("solvers.limits", "EarlyBehaviour"),
    "BalanceTrajectory": ("solvers.limits", "BalanceTrajectory"),
    "BalancePoints": ("meanfield.balance", "BalancePoints"),
}
#: the variables of a solution file and their dimensions
LAYOUT = {
    "rho": ("t", "population", "x"),
    "mass": ("t", "population"), "mean": ("t", "population"), "var": ("t", "population"),
    "m": ("t", "population"), "balance_residual": ("t", "population"),
    "edges": ("edge",), "t": ("t",), "x": ("x",), "population": ("population",),
}
RHO_ROUNDOFF = 1e-8  # negative densities allowed down to -RHO_ROUNDOFF * max(rho)


def read_grid(r: Reader, *, minimum: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, x)``: M + 1 strictly increasing edges and x their midpoints (M >= ``minimum``)."""
    cells = r.size("x", minimum=minimum)
    edges = r.array("edges", ("edge",), shape=(cells + 1,))
    if np.any(np.diff(edges) <= 0):
        r.fail("edges are not strictly increasing")
    x = r.array("x", ("x",))
    if not np.allclose(x, (edges[1:] + edges[:-1]) / 2, rtol=1e-12, atol=0):
        r.fail("x are not the midpoints of the edges")
    return edges, x


def read_density(r: Reader, name: str, dims: tuple[str, ...]) -> np.ndarray:
    """A density variable, >= 0 up to round-off."""
    rho = r.array(name, dims)
    if rho.size and rho.min() < -RHO_ROUNDOFF * max(float(np.abs(rho).max()), 1.0):
        r.fail(f"{name} has negative values (down to {rho.min():.3g})")
    return rho


def read_times(r: Reader) -> np.ndarray:
    r.size("t", minimum=1)
    t = r.array("t", ("t",))
    if np.any(np.diff(t) <= 0):
        r.fail("the times t are not strictly increasing")
    return t


def read_solution(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.Solution` from its dataset (every array checked; see :func:`load`)."""
    from solvers.solution import Solution

    r = Reader(ds, path, "Solution")
    missing = [name for name in LAYOUT if name not in ds.variables]
    if missing:
        r.fail(f"the variables {', '.join(missing)} are missing (not a result of "
               "solvers.Solution.save)")
    model = r.model()
    gamma = r.number("gamma", minimum=0)
    method = r.text("method")
    info = r.mapping("info")
    r.size("population", model.P)
    edges, x = read_grid(r)
    t = read_times(r)
    rho = read_density(r, "rho", LAYOUT["rho"])
    obs = {name: r.array(name, LAYOUT[name])
           for name in ("mass", "mean", "var", "m", "balance_residual")}
    if not np.allclose(obs["mass"], rho @ np.diff(edges), rtol=1e-8, atol=1e-12):
        r.fail("mass does not match the integral of rho over the cells")
    return Solution(model=model, gamma=gamma, method=method, t=t, x=x, rho=rho, edges=edges,
                    info=info, **obs)


def read_network(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.NetworkResult` from its dataset (every array checked)."""
    from solvers.network import NetworkResult

    r = Reader(ds, path, "NetworkResult")
    model = r.model()
    r.size("population", model.P)
    edges, _ = read_grid(r, minimum=1)
    t = read_times(r)
    per_t = ("t", "population")
    fields = {name: r.array(name, per_t) for name in ("m", "mean", "var", "balance_residual")}
    rho = read_density(r, "rho", ("t", "population", "x"))
    n = r.array("n", ("population",), dtype=int)
    final = r.array("final_states", ("population", "agent"), finite=False)
    if np.any(n < 1) or n.max() != final.shape[1] or any(
            np.isnan(final[p, :k]).any() or not np.isnan(final[p, k:]).all()
            for p, k in enumerate(n)):
        r.fail(f"final_states do not hold n = {n.tolist()} agents per population")
    return NetworkResult(
        model=model, gamma=r.number("gamma", minimum=0), n=tuple(int(k) for k in n),
        dt=r.number("dt", minimum=0), scheme=r.text("scheme"),
        seed=r.number("seed", integer=True), t=t, **fields, edges=edges, rho=rho,
        states=tuple(final[p, :k].copy() for p, k in enumerate(n)), info=r.mapping("info"))


def load(path: str | os.PathLike[str]) -> Any:
    """Read any result written by a ``save`` method, as the type that wrote it.

    Dispatches on the attribute ``result_type`` (files without it are read as a
    :class:`~solvers.Solution`) to ``from_xarray``, which checks every array's dims, shape and
    dtype against the model and grid stored in the file (for a solution: P populations, M cells,
    nt times, M + 1 strictly increasing edges, finite values, ``rho`` >= 0 up to round-off,
    ``mass`` the integral of ``rho``); a foreign, truncated or empty file, a missing variable or
    an inconsistent one is a ``ValueError`` naming ``path``.
    """
    import xarray as xr

    if not isinstance(path, (str, os.PathLike)):
        from meanfield.errors import bad_type

        bad_type("path", path, "a file path (str or os.PathLike)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"result file {os.fspath(path)}: no such file")
    try:
        with xr.open_dataset(path, decode_times=False, decode_timedelta=False) as ds:
            kind = ds.attrs.get("result_type", "Solution")
            if kind not in RESULT_TYPES:
                raise ValueError(f"result file {os.fspath(path)}: the result_type {kind!r} is "
                                 f"not one of {sorted(RESULT_TYPES)}")
            module, name = RESULT_TYPES[str(kind)]
            cls = getattr(importlib.import_module(module), name)
            return cls.from_xarray(ds.load(), os.fspath(path))
    except ValueError as err:
        if str(err).startswith("result file "):
            raise
        raise _unreadable(path, err) from None
    except (OSError, KeyError, TypeError, RuntimeError) as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Any, err: Exception) -> ValueError:
    return ValueError(f"result file {os.fspath(path)}: cannot be read as a result of "
                      f"a solvers save method (empty, truncated or not NetCDF?): "
                      f"{type(err).__name__}: {str(err)[:300]}")
