"""A sweep as one dataset whose dimensions are the varied parameters.

:func:`combine` turns per-point datasets into one ``xarray.Dataset``:

- points forming a full grid (every combination of the values of each parameter, as
  :func:`meanfield.studies.sweep.grid_points` makes) get one dimension per parameter, with its
  values, sorted, as a numeric coordinate: a sweep of ``gamma`` and ``model.sigma`` has dims
  ``(gamma, model_sigma, ...)`` and ``ds.sel(gamma=10.0)`` works;
- any other set of points stays along a ``point`` dimension, each parameter a coordinate on it.

Names: a parameter name becomes a valid identifier (``model.sigma`` -> ``model_sigma``, so
``ds.model_sigma`` works); the original name is in the coordinate's ``parameter`` attribute.
A parameter whose values are lists of numbers (one per population, say) becomes an index
dimension ``name`` (0, 1, ...) with the numeric coordinate ``name_value`` of dims
``(name, name_component)``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from meanfield.errors import bad_value
from meanfield.studies.sweepfiles import DIGEST_ATTR, POINT_ATTR


def dimension_name(name: str) -> str:
    """The dataset name of parameter ``name``: non-identifier characters become ``_``."""
    out = re.sub(r"\W", "_", str(name))
    return out if out and not out[0].isdigit() else f"p_{out}"


def _kind(value: Any) -> str | None:
    """``"bool"``, ``"number"``, ``"text"``, ``"vector<n>"`` (a list of n numbers) or ``None``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return f"vector{len(value)}"
    return None


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class _Parameter:
    """One varied parameter: its name in the dataset, its distinct values, their kind."""

    def __init__(self, name: str, values: Sequence[Any]) -> None:
        import numpy as np

        self.name, self.dim = name, dimension_name(name)
        kinds = {_kind(v) for v in values}
        self.kind = kinds.pop() if len(kinds) == 1 else None
        seen: dict[str, Any] = {}
        for v in values:
            seen.setdefault(_text(v), v)
        levels = list(seen.values())
        if self.kind in ("number", "text", "bool"):
            levels.sort()
        self.levels = levels
        self.position = {_text(v): k for k, v in enumerate(levels)}
        self.vector = self.kind is not None and self.kind.startswith("vector")
        if self.vector:
            self.values = np.array(levels, dtype=float)
        elif self.kind is not None:
            self.values = np.array(levels)
        else:  # mixed kinds: their JSON text (the only layout that keeps them all)
            self.values = np.array([_text(v) for v in levels])

    def coordinates(self, along: str, values: Sequence[Any]) -> dict[str, Any]:
        """Coordinates of this parameter along dimension ``along`` with ``values`` on it."""
        import numpy as np

        attrs = {"parameter": self.name, "long_name": f"swept parameter {self.name}"}
        if self.vector:
            component = f"{self.dim}_component"
            coords = {f"{self.dim}_value": ((along, component), np.array(values, dtype=float),
                                            attrs)}
            if along == self.dim:
                coords[self.dim] = (along, np.arange(len(values)), {
                    "parameter": self.name, "long_name": f"index of the values of {self.name}"})
            return coords
        data = np.array(values) if self.kind is not None else np.array([_text(v) for v in values])
        return {self.dim: (along, data, attrs)}


def _strip(ds: Any) -> Any:
    ds = ds.copy()
    for key in (POINT_ATTR, DIGEST_ATTR, "created"):  # creation times differ per point
        ds.attrs.pop(key, None)
    return ds


def combine(points: Sequence[Mapping[str, Any]], datasets: Sequence[Any]) -> Any:
    """One dataset for a sweep: the varied parameters as dimensions when the points form a grid.

    See the module docstring for the layout; per-point datasets are aligned by their own
    coordinates (outer join) and attributes kept where all points agree.
    """
    import numpy as np
    import xarray as xr

    if len(points) != len(datasets):
        bad_value("datasets", len(datasets), f"one dataset per point ({len(points)} points)")
    if not datasets:
        return xr.Dataset()
    stacked = xr.concat([_strip(ds) for ds in datasets], dim="point", join="outer",
                        combine_attrs="drop_conflicts")
    names: list[str] = []
    for p in points:
        names.extend(n for n in p if n not in names)
    params = [_Parameter(n, [p[n] for p in points if n in p]) for n in names]
    taken: dict[str, str] = {}
    for par in params:
        clash = taken.get(par.dim) or (par.dim if par.dim in stacked.variables or par.dim in
                                       stacked.dims else None)
        if clash is not None:
            bad_value(par.name, par.dim, f"a parameter whose dataset name differs from {clash!r} "
                      "(another parameter or a variable of the results)")
        taken[par.dim] = par.name
    shape = tuple(len(par.levels) for par in params)
    complete = all(all(n in p for n in names) for p in points)
    if complete and params and all(par.kind for par in params) and math.prod(shape) == len(points):
        index = [np.ravel_multi_index(tuple(par.position[_text(p[par.name])] for par in params),
                                      shape) for p in points]
        if len(set(index)) == len(points):
            return _grid(stacked, params, shape, np.argsort(index))
    out = stacked
    for par in params:
        values = [p.get(par.name) for p in points]
        if any(v is None for v in values):  # a parameter missing from some points: JSON text
            out = out.assign_coords({par.dim: ("point", np.array([_text(v) for v in values]),
                                               {"parameter": par.name})})
            continue
        out = out.assign_coords(par.coordinates("point", values))
    return out.assign_coords(point=np.arange(len(points)))


def _grid(stacked: Any, params: Sequence[_Parameter], shape: tuple[int, ...],
          order: Any) -> Any:
    """Reshape the ``point`` dimension of ``stacked`` (points in C order after ``order``)."""
    import xarray as xr

    dims = tuple(par.dim for par in params)
    variables, coords = {}, {}
    for name, var in stacked.variables.items():
        if "point" in var.dims:
            rest = tuple(d for d in var.dims if d != "point")
            data = var.transpose("point", *rest).values[order]
            var = xr.Variable(dims + rest, data.reshape(shape + data.shape[1:]), var.attrs)
        (coords if name in stacked.coords else variables)[name] = var
    out = xr.Dataset(variables, coords=coords, attrs=stacked.attrs)
    for par in params:
        out = out.assign_coords(par.coordinates(par.dim, par.levels))
    return out


def select(dataset: Any, point: Mapping[str, Any]) -> Any:
    """The part of a :func:`combine` dataset that belongs to ``point``."""
    import numpy as np

    def matches(name: str, along: str) -> Any:
        dim = dimension_name(name)
        key = f"{dim}_value" if f"{dim}_value" in dataset.coords else dim
        coord = np.asarray(dataset[key].transpose(along, ...).values)
        target = np.asarray(point[name])
        if coord.dtype.kind in "US" and target.dtype.kind not in "US":
            target = np.asarray(_text(point[name]))
        return np.all((coord == target).reshape(coord.shape[0], -1), axis=1)

    if "point" in dataset.dims:
        hit = np.ones(dataset.sizes["point"], dtype=bool)
        for name in point:
            hit &= matches(name, "point")
        found = np.flatnonzero(hit)
    else:
        sel = {}
        for name in point:
            where = np.flatnonzero(matches(name, dimension_name(name)))
            if where.size != 1:
                bad_value("point", dict(point), "a point of this sweep")
            sel[dimension_name(name)] = int(where[0])
        return dataset.isel(sel)
    if found.size != 1:
        bad_value("point", dict(point), "a point of this sweep")
    return dataset.isel(point=int(found[0]))
