r"""One builder and one reader for the datasets of every result type (CF-1.10 metadata).

Every result of :mod:`solvers` (``Solution``, ``StationaryState``, ``Branch``, ``NetworkResult``,
``NetworkEnsemble``, ``Fluctuations``, ``TransientFluctuations``, ``FhnPdeResult``,
``FhnNetworkResult``, ``RescaledSolution``, and the γ = ∞ results ``ConstrainedSolution``,
``EarlyBehaviour``, ``BalanceTrajectory`` of :mod:`solvers.limits_io`) turns into an
``xarray.Dataset`` through :func:`build_dataset` and back through its
``from_xarray(ds, path)`` with a :class:`Reader`. One vocabulary across all of them: ``t``,
``x``, ``rho``, ``mean``, ``var``, ``m``, ``balance_residual`` and the ``info`` attribute.
Every variable and coordinate carries ``long_name``, ``units`` and ``description``; the model is
nondimensional, so units are named after the model's own scales ("time units of the model") and
pure numbers are ``"1"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import numpy as np

CONVENTIONS = "CF-1.10"
MAX_TEXT = 1_000_000  # characters of a text attribute read back
TIME = "time units of the model (nondimensional)"
STATE = "state units of the model (nondimensional)"
STATE2 = "square of the state units of the model"
DENSITY = "1/(state units of the model)"
READOUT = "units of the readout Psi_q of the model (nondimensional)"
FIELD = "units of the coupling field h_p of the model (nondimensional)"

#: name -> (long_name, units, description) shared by every result type
VARIABLES: dict[str, tuple[str, str, str]] = {
    "t": ("time", TIME, "time of each saved frame"),
    "x": ("state (cell centre)", STATE, "midpoints of the finite-volume cells (or histogram "
          "cells) on which rho is given"),
    "edges": ("cell edges", STATE, "the M+1 strictly increasing edges of the M cells: cell i is "
              "[edges[i], edges[i+1]] and x[i] is its midpoint; rho is a cell average on them"),
    "edge": ("edge index", "1", "index of the cell edges"),
    "eigenvalue": ("eigenvalue index", "1", "index of the eigenvalue (nearest the origin first "
                   "when only some were computed)"),
    "agent": ("agent", "1", "index of the agent in its population"),
    "cell": ("cell index", "1", "index of a cell mass, population-major (p·M + i)"),
    "cell2": ("cell index (second)", "1", "second cell index of a covariance matrix"),
    "population": ("population", "1", "names of the populations of the model, in model order"),
    "rho": ("probability density", DENSITY, "rho_p: the density of the states of population p "
            "(cell averages); its integral over x is the mass of the population (1)"),
    "mass": ("mass", "1", "integral of rho_p over the domain (1 up to round-off)"),
    "mean": ("mean state", STATE, "mean of the state over rho_p: int x rho_p dx / mass"),
    "var": ("variance of the state", STATE2, "variance of the state over rho_p"),
    "m": ("coupling moment", READOUT, "m_q = int Psi_q(x) rho_q(x) dx: the readout of population "
          "q that enters every coupling field h_p (docs/mathematics.md §1)"),
    "balance_residual": ("balance residual", FIELD, "int |h_p(x; m)| rho_p dx: distance of "
                         "population p to the balance manifold h_p = 0 (docs/mathematics.md §4)"),
    "gamma": ("coupling strength gamma", "1", "the coupling strength gamma of the model"),
    "error_mean": ("discretisation error of the mean", STATE, "Richardson estimate of the grid "
                   "error of mean (same state on a refined or coarsened grid)"),
    "error_var": ("discretisation error of the variance", STATE2, "Richardson estimate of the "
                  "grid error of var"),
    "eigenvalue_real": ("real part of the eigenvalue", "1/(" + TIME + ")", "eigenvalues of "
                        "the linearised discrete operator at the state (nonlocal term included, "
                        "the P zero modes of mass conservation removed); NaN pads shorter lists"),
    "eigenvalue_imag": ("imaginary part of the eigenvalue", "1/(" + TIME + ")",
                        "imaginary parts of the eigenvalues (see eigenvalue_real)"),
    "eigenvalue_count": ("number of eigenvalues", "1", "eigenvalues computed for the state; "
                         "-1 when the stability was not computed"),
    "residual": ("fixed-point residual", READOUT, "max |m - T(m)| of the self-consistency of "
                 "the state (docs/mathematics.md §3)"),
    "n": ("number of agents", "1", "agents simulated in each population"),
    "final_states": ("final agent states", STATE, "state of every agent at the last step; NaN "
                     "pads the populations with fewer agents"),
    "stable": ("linear stability", "1", "1 stable, 0 unstable, -1 not computed"),
    "A": ("amplitude A", "1", "the amplitude A of the Hopf-Cole / rescaled profile "
          "(docs/mathematics.md §5-§6): the density is A times the normalised profile"),
    "mu": ("centre mu", STATE, "the centre mu of the concentrating profile: the balance point "
           "the density collapses onto as gamma grows (docs/mathematics.md §4-§6)"),
}

VOLT = "voltage units of the FitzHugh-Nagumo model (nondimensional)"
RECOVERY = "recovery-variable units of the FitzHugh-Nagumo model (nondimensional)"
#: the FitzHugh-Nagumo results (docs/mathematics.md §12): two state variables (v, w)
FHN_VARIABLES: dict[str, tuple[str, str, str]] = {
    "rho": ("probability density", f"1/(({VOLT}) x ({RECOVERY}))", "rho_p(t, w, v): the joint "
            "density of (v, w) in population p (cell averages; integral 1)"),
    "mean_v": ("mean voltage", VOLT, "mean of v over population p"),
    "var_v": ("variance of the voltage", f"square of the {VOLT}", "variance of v over p"),
    "mean_w": ("mean recovery variable", RECOVERY, "mean of w over population p"),
    "var_w": ("variance of the recovery variable", f"square of the {RECOVERY}",
              "variance of w over population p"),
    "m": ("coupling moment", "1", "m_q: the mean voltage (electrical coupling) or the mean "
          "synaptic activation S_q(v) (chemical coupling) of population q"),
    "balance_residual": ("balance residual", "1", "<|h_p(v)|>_p: mean distance of population p "
                         "to the balance manifold h_p = 0 of the coupling field"),
    "min_density": ("minimum density", f"1/(({VOLT}) x ({RECOVERY}))",
                    "smallest cell value of rho_p (negative values are scheme undershoots)"),
    "agent": ("agent", "1", "index of the agent"),
    "agent_population": ("population of the agent", "1", "index (model order) of the "
                         "population each agent belongs to"),
    "n": ("number of agents", "1", "agents simulated in each population"),
}


def meta(name: str, extra: Mapping[str, tuple[str, str, str]] | None = None) -> dict[str, str]:
    """The CF attributes of variable ``name`` (``extra`` first, then :data:`VARIABLES`)."""
    entry = (extra or {}).get(name) or VARIABLES.get(name)
    if entry is None:
        raise KeyError(f"no long_name/units/description for the dataset variable {name!r}")
    long_name, units, description = entry
    return {"long_name": long_name, "units": units, "description": description}


def jsonable(value: Any) -> Any:
    """Plain JSON data of ``value`` (arrays to lists, numpy scalars to numbers, others repr)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def build_dataset(result_type: str, *, data: Mapping[str, tuple[tuple[str, ...], Any]],
                  coords: Mapping[str, tuple[tuple[str, ...], Any]], model: Any,
                  gamma: float | None,
                  solver: str, options: Mapping[str, Any] | None = None,
                  info: Mapping[str, Any] | None = None, attrs: Mapping[str, Any] | None = None,
                  extra: Mapping[str, tuple[str, str, str]] | None = None) -> Any:
    """An ``xarray.Dataset`` of ``data`` on ``coords`` (each ``name: (dims, values)``).

    Every variable and coordinate gets ``long_name``, ``units``, ``description`` (from ``extra``
    or :data:`VARIABLES`); the dataset gets ``result_type``, ``Conventions``, the model (JSON
    text, LaTeX where the model has it, its kind), ``gamma``, ``solver``, ``options`` and
    ``info`` (JSON; ``gamma`` omitted when None), ``meanfield_version`` and ``created`` (UTC,
    ISO 8601), then ``attrs``.
    """
    import xarray as xr

    from meanfield import __version__

    variables = {name: (dims, np.asarray(values), meta(name, extra))
                 for name, (dims, values) in data.items()}
    coordinates = {name: (dims, np.asarray(values), meta(name, extra))
                   for name, (dims, values) in coords.items()}
    for dims, values in data.values():  # every dimension indexed (sweeps align on them)
        for dim, size in zip(dims, np.shape(values), strict=True):
            if dim not in coordinates:
                coordinates[dim] = ((dim,), np.arange(size), meta(dim, extra))
    latex = model.latex() if hasattr(model, "latex") else ""
    head = {"result_type": result_type, "Conventions": CONVENTIONS,
            "title": f"meanfield {result_type}" + (
                "" if gamma is None else f" at gamma = {float(gamma):g}"),
            "model": model.to_json(), "model_kind": type(model).__name__,
            "model_latex": latex, "solver": solver,
            "options": json.dumps(jsonable(dict(options or {}))),
            "info": json.dumps(jsonable(dict(info or {}))),
            "meanfield_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    if gamma is not None:  # a branch has gamma as a coordinate instead
        head["gamma"] = float(gamma)
    return xr.Dataset(variables, coords=coordinates, attrs={**head, **(attrs or {})})


class Reader:
    """Checked access to a dataset read back from ``path``: every error is a ``ValueError``
    that names the file and says what is wrong."""

    def __init__(self, ds: Any, path: Any, result_type: str) -> None:
        self.ds, self.path, self.result_type = ds, path, result_type
        found = ds.attrs.get("result_type", result_type)
        if found != result_type:
            self.fail(f"holds a {found!r}, not a {result_type!r}")

    def fail(self, message: str) -> NoReturn:
        raise ValueError(f"result file {self.path}: {message}")

    def text(self, name: str, default: str | None = None) -> str:
        if name not in self.ds.attrs:
            if default is not None:
                return default
            self.fail(f"the attribute {name!r} is missing (not a {self.result_type} file)")
        value = self.ds.attrs[name]
        if not isinstance(value, str):
            self.fail(f"the attribute {name!r} is a {type(value).__name__}, not text")
        if len(value) > MAX_TEXT:
            self.fail(f"the attribute {name!r} has {len(value)} characters (at most {MAX_TEXT})")
        return value

    def json(self, name: str, default: Any = None) -> Any:
        if name not in self.ds.attrs and default is not None:
            return default
        try:
            return json.loads(self.text(name))
        except (ValueError, RecursionError) as err:
            self.fail(f"the attribute {name!r} is not JSON: {str(err)[:200]}")

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.json(name, default={})
        if not isinstance(value, dict):
            self.fail(f"the attribute {name!r} is JSON of a {type(value).__name__}, expected "
                      "an object")
        return value

    def number(self, name: str, *, minimum: float | None = None, integer: bool = False) -> Any:
        value = self.ds.attrs.get(name)
        if isinstance(value, (np.ndarray, np.generic)) and np.size(value) == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(float(value)) or (minimum is not None and value < minimum) \
                or (integer and float(value) != int(value)):
            what = "an integer" if integer else "a finite number"
            bound = "" if minimum is None else f" >= {minimum:g}"
            self.fail(f"the attribute {name!r} is {value!r}, expected {what}{bound}")
        return int(value) if integer else float(value)

    def model(self) -> Any:
        """The model rebuilt from its JSON text (parsed as data, never run); the population
        coordinate, when present, must list the model's populations."""
        from meanfield.model import Model

        text = self.text("model")
        kind = self.ds.attrs.get("model_kind", "Model")
        try:
            model = Model.from_json(text) if kind == "Model" else fhn_model_from_json(text)
        except (TypeError, ValueError, KeyError, RecursionError) as err:
            self.fail(f"the attribute 'model' is not a valid model ({kind}): {str(err)[:300]}")
        if "population" in self.ds.variables:
            pops = [str(p) for p in np.asarray(self.ds.variables["population"].values).ravel()]
            if pops != list(model.names):
                self.fail(f"the populations {pops} differ from those of the model "
                          f"{list(model.names)}")
        return model

    def array(self, name: str, dims: tuple[str, ...], *, shape: tuple[int, ...] | None = None,
              finite: bool = True, dtype: type = float) -> np.ndarray:
        """Variable ``name`` with exactly the dims ``dims`` (and ``shape``), real, finite unless
        ``finite=False`` (NaN padding allowed), as ``dtype``."""
        if name not in self.ds.variables:
            self.fail(f"the variable {name!r} is missing (not a {self.result_type} file)")
        var = self.ds.variables[name]
        if tuple(var.dims) != tuple(dims):
            self.fail(f"{name} has dims {tuple(var.dims)}, expected {tuple(dims)}")
        if var.dtype.kind not in "fiu":
            self.fail(f"{name} has dtype {var.dtype}, expected real numbers")
        if shape is not None and tuple(var.shape) != tuple(shape):
            self.fail(f"{name} has shape {tuple(var.shape)}, expected {tuple(shape)} (dims "
                      f"{tuple(dims)} of the model and grid in the file)")
        values = np.asarray(var.values)
        bad = ~np.isfinite(values.astype(float)) if finite else np.isinf(values.astype(float))
        if np.any(bad):
            self.fail(f"{name} has {int(np.sum(bad))} values that are NaN or infinite")
        return values.astype(dtype)

    def size(self, dim: str, expected: int | None = None, *, minimum: int = 0) -> int:
        count = int(self.ds.sizes.get(dim, 0))
        if (expected is not None and count != expected) or count < minimum:
            want = f"{expected}" if expected is not None else f"at least {minimum}"
            self.fail(f"the dimension {dim!r} has {count} entries, expected {want}")
        return count


def fhn_model_from_json(text: str) -> Any:
    """A :class:`meanfield.fhn.FhnModel` from the JSON of its ``to_json`` (data only)."""
    from meanfield import fhn

    data = json.loads(text)
    if not isinstance(data, dict) or set(data) != {"kind", "populations", "coupling"}:
        raise ValueError("expected the keys kind, populations, coupling")
    pops = tuple(fhn.FhnPopulation(**{k: (v if k == "name" else float(v)) for k, v in p.items()})
                 for p in data["populations"])
    coupling = {k: tuple(tuple(float(x) for x in row) if isinstance(row, list) else float(row)
                         for row in v) for k, v in data["coupling"].items()}
    cls = {"electrical": fhn.ElectricalCoupling, "chemical": fhn.ChemicalCoupling}.get(data["kind"])
    if cls is None:
        raise ValueError(f"unknown coupling kind {data['kind']!r}")
    return fhn.FhnModel(pops, cls(**coupling))
