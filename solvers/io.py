"""Reading result files back: :func:`load`, which treats a file as data and checks all of it.

A result file is NetCDF written by :meth:`solvers.Solution.save`. :func:`load` never runs code
from it: the model is rebuilt from its JSON text by :meth:`meanfield.Model.from_json` (the safe
expression parser, no ``eval``, no pickle), and every array is checked against the model and
the grid stored beside it before a :class:`~solvers.Solution` is made. Every error is a
``ValueError`` that names the file and says what is wrong.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from meanfield.model import Model
from solvers.solution import Solution

#: the variables of a solution file and their dimensions
LAYOUT = {
    "rho": ("t", "population", "x"),
    "mass": ("t", "population"), "mean": ("t", "population"), "var": ("t", "population"),
    "m": ("t", "population"), "balance_residual": ("t", "population"),
    "edges": ("edge",), "t": ("t",), "x": ("x",), "population": ("population",),
}
MAX_TEXT = 1_000_000  # characters of the model and info attributes
RHO_ROUNDOFF = 1e-8  # negative densities allowed down to -RHO_ROUNDOFF * max(rho)


class _Bad(Exception):
    """What is wrong with the file (turned into a ``ValueError`` naming it)."""


def _text_attr(ds: Any, name: str) -> str:
    if name not in ds.attrs:
        raise _Bad(f"the attribute {name!r} is missing (not a result of solvers.Solution.save)")
    value = ds.attrs[name]
    if not isinstance(value, str):
        raise _Bad(f"the attribute {name!r} is a {type(value).__name__}, not text")
    if len(value) > MAX_TEXT:
        raise _Bad(f"the attribute {name!r} has {len(value)} characters (at most {MAX_TEXT})")
    return value


def _array(ds: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A real array of the expected dims and shape, as float64."""
    var = ds.variables[name]
    if var.dtype.kind not in "fiu":
        raise _Bad(f"{name} has dtype {var.dtype}, expected real numbers")
    if tuple(var.shape) != shape:
        raise _Bad(f"{name} has shape {tuple(var.shape)}, expected {shape} "
                   f"(dims {LAYOUT[name]} of the model and grid in the file)")
    values = np.asarray(var.values, dtype=float)
    if not np.all(np.isfinite(values)):
        raise _Bad(f"{name} has {int(np.sum(~np.isfinite(values)))} values that are NaN or "
                   "infinite")
    return values


def _check(ds: Any) -> Solution:
    missing = [name for name in LAYOUT if name not in ds.variables]
    if missing:
        raise _Bad(f"the variables {', '.join(missing)} are missing (not a result of "
                   "solvers.Solution.save)")
    for name, dims in LAYOUT.items():
        if tuple(ds.variables[name].dims) != dims:
            raise _Bad(f"{name} has dims {tuple(ds.variables[name].dims)}, expected {dims}")
    try:
        model = Model.from_json(_text_attr(ds, "model"))
    except (TypeError, ValueError, RecursionError) as err:
        raise _Bad(f"the attribute 'model' is not a valid model: {str(err)[:300]}") from None
    gamma = ds.attrs.get("gamma")
    if isinstance(gamma, (np.ndarray, np.generic)) and np.size(gamma) == 1:
        gamma = gamma.item()
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) \
            or not math.isfinite(float(gamma)) or float(gamma) < 0:
        raise _Bad(f"the attribute 'gamma' is {gamma!r}, expected a finite number >= 0")
    method = _text_attr(ds, "method")
    try:
        info = json.loads(_text_attr(ds, "info")) if "info" in ds.attrs else {}
    except (ValueError, RecursionError) as err:
        raise _Bad(f"the attribute 'info' is not JSON: {str(err)[:200]}") from None
    if not isinstance(info, dict):
        raise _Bad(f"the attribute 'info' is JSON of a {type(info).__name__}, expected an object")

    populations = [str(p) for p in np.asarray(ds.variables["population"].values).ravel()]
    if populations != list(model.names):
        raise _Bad(f"the populations {populations} differ from those of the model "
                   f"{list(model.names)}")
    nt, pops, cells = ds.sizes["t"], model.P, ds.sizes["x"]
    if nt < 1 or cells < 3:
        raise _Bad(f"{nt} times and {cells} cells, expected at least 1 time and 3 cells")
    edges = _array(ds, "edges", (cells + 1,))
    if np.any(np.diff(edges) <= 0):
        raise _Bad("edges are not strictly increasing")
    x = _array(ds, "x", (cells,))
    if not np.allclose(x, (edges[1:] + edges[:-1]) / 2, rtol=1e-12, atol=0):
        raise _Bad("x are not the midpoints of the edges")
    t = _array(ds, "t", (nt,))
    if np.any(np.diff(t) <= 0):
        raise _Bad("the times t are not strictly increasing")
    rho = _array(ds, "rho", (nt, pops, cells))
    if rho.size and rho.min() < -RHO_ROUNDOFF * max(float(np.abs(rho).max()), 1.0):
        raise _Bad(f"rho has negative values (down to {rho.min():.3g})")
    obs = {name: _array(ds, name, (nt, pops))
           for name in ("mass", "mean", "var", "m", "balance_residual")}
    mass = rho @ np.diff(edges)
    if not np.allclose(obs["mass"], mass, rtol=1e-8, atol=1e-12):
        raise _Bad("mass does not match the integral of rho over the cells")
    return Solution(model=model, gamma=float(gamma), method=method, t=t, x=x, rho=rho,
                    edges=edges, info=info, **obs)


def load(path: str | os.PathLike[str]) -> Solution:
    """Read a :class:`~solvers.Solution` written by :meth:`~solvers.Solution.save`.

    Checks every array's dims, shape and dtype against the model and grid stored in the file
    (P populations, M cells, nt times, M + 1 strictly increasing edges, finite values,
    ``rho`` >= 0 up to round-off, ``mass`` the integral of ``rho``); a foreign, truncated or
    empty file, a missing variable or an inconsistent one is a ``ValueError`` naming ``path``.
    """
    import xarray as xr

    if not isinstance(path, (str, os.PathLike)):
        from meanfield.errors import bad_type

        bad_type("path", path, "a file path (str or os.PathLike)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"result file {os.fspath(path)}: no such file")
    try:
        with xr.open_dataset(path, decode_times=False, decode_timedelta=False) as ds:
            return _check(ds)
    except _Bad as err:
        raise ValueError(f"result file {os.fspath(path)}: {err}") from None
    except (ValueError, OSError, KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"result file {os.fspath(path)}: cannot be read as a result of "
                         f"solvers.Solution.save (empty, truncated or not NetCDF?): "
                         f"{type(err).__name__}: {str(err)[:300]}") from None
